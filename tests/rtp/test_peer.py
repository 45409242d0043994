"""Media only from the peer: the address filter and the session's source table (issue 14, defects 1, 3, 4)."""

from __future__ import annotations

from rtp import packet, rtcp
from rtp.config import SessionConfig
from rtp.packet import RtpPacket
from rtp.peer import PeerFilter, Verdict
from rtp.session import RtpSession
from rtp.sources import MAX_SOURCES

PEER, PEER_RTCP, STRANGER = ("192.0.2.1", 40000), ("192.0.2.1", 40001), ("198.51.100.9", 40000)


def test_only_the_negotiated_addresses_are_admitted() -> None:
    f = PeerFilter(PEER, PEER_RTCP)
    assert f.admit(PEER, rtcp=False) is Verdict.ADMIT and f.admit(PEER_RTCP, rtcp=True) is Verdict.ADMIT
    assert f.admit(STRANGER, rtcp=False) is Verdict.REFUSED_SOURCE
    assert f.admit(("192.0.2.1", 40002), rtcp=False) is Verdict.REFUSED_SOURCE  # same host, other port
    assert f.admit(PEER, rtcp=True) is Verdict.REFUSED_SOURCE  # RTCP from the RTP port: not where SDP said


def test_latching_happens_once_on_the_first_datagram() -> None:
    nat = ("203.0.113.5", 61000)
    f = PeerFilter(PEER, PEER_RTCP, latch=True)
    assert f.admit(nat, rtcp=False) is Verdict.ADMIT and f.rtp == nat
    assert f.admit(STRANGER, rtcp=False) is Verdict.REFUSED_SOURCE and f.rtp == nat  # no second latch
    assert f.admit(PEER, rtcp=False) is Verdict.REFUSED_SOURCE


def _rtp(ssrc: int, seq: int) -> bytes:
    return packet.serialize(RtpPacket(96, seq, seq * 1920, ssrc, b"x"))


def test_forged_reports_from_another_ssrc_do_not_steer_the_sender() -> None:
    reports = []
    s = RtpSession(SessionConfig(seed=1, ssrc=0xA11CE, trust_first_source=True), on_loss_report=reports.append)
    s.receive_rtp(_rtp(0xB0B, 1), 0.0)  # the peer's stream makes 0xB0B the active source
    forged = rtcp.serialize_compound([rtcp.ReceiverReport(0xE71, (rtcp.ReportBlock(0xA11CE, 200, 5000, 9, 0, 0, 0),))])
    s.receive_rtcp(forged, 10.0)
    assert reports == [] and s.counters["rtcp_refused_report"] == 1
    real = rtcp.serialize_compound([rtcp.ReceiverReport(0xB0B, (rtcp.ReportBlock(0xA11CE, 26, 10, 9, 0, 0, 0),))])
    s.receive_rtcp(real, 20.0)
    assert len(reports) == 1 and abs(reports[0].fraction_lost - 26 / 256) < 1e-9


def test_sources_and_cnames_are_capped_and_the_active_source_is_never_evicted() -> None:
    s = RtpSession(SessionConfig(seed=1, trust_first_source=True))
    s.receive_rtp(_rtp(1, 1), 0.0)
    for ssrc in range(2, 100_002):  # 100,000 SSRCs by SDES and RTP
        s.receive_rtcp(rtcp.serialize_compound([rtcp.ReceiverReport(ssrc, ()),
                                                rtcp.Sdes((rtcp.SdesChunk(ssrc, ((rtcp.SDES_CNAME, "x" * 200),)),))]),
                       1.0)
        if ssrc % 1000 == 0:
            s.receive_rtp(_rtp(ssrc, 1), 2.0)
    assert len(s.sources) <= MAX_SOURCES and len(s.cnames) <= MAX_SOURCES
    assert s.active == 1 and 1 in s.sources
