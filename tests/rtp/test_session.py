"""RtpSession without sockets: pacing, markers, reports, loss feedback, malformed input, BYE."""

from __future__ import annotations

import random

import pytest

from rtp import packet, rtcp
from rtp.feedback import LossReport
from rtp.packet import RtpPacket
from rtp.rtcp_xr import XrPacket, burst_report
from rtp.seqnum import ts_diff
from rtp.session import MAX_CATCH_UP, Datagram, RtpSession, SessionConfig


def _cfg(**kw: object) -> SessionConfig:
    base = dict(seed=1, rtcp_min_interval_s=0.5, rtcp_bw_bps=64000.0, initial_seq=65530, initial_ts=0xFFFFF000)
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def test_pacing_timestamps_and_markers() -> None:
    calls: list[tuple[int, int]] = []

    def source(first: int, frames: int) -> bytes | None:
        calls.append((first, frames))
        return None if first in (2, 3) else bytes([first])

    s = RtpSession(_cfg(), source=source)
    s.start(0.0)
    sent: list[RtpPacket] = []
    for t in range(0, 481, 10):
        sent += [packet.parse(d.data) for d in s.poll(float(t)) if not d.rtcp]
    assert calls == [(i, 1) for i in range(7)]  # frames 0..6 due at 0, 80, ..., 480 ms
    assert [p.payload for p in sent] == [b"\x00", b"\x01", b"\x04", b"\x05", b"\x06"]
    assert [p.sequence_number for p in sent] == [65530, 65531, 65532, 65533, 65534]
    assert [p.timestamp for p in sent] == [(0xFFFFF000 + 1920 * i) % (1 << 32) for i in (0, 1, 4, 5, 6)]
    assert [p.marker for p in sent] == [True, False, True, False, False]  # talkspurt starts


def test_several_frames_per_packet_and_catch_up() -> None:
    s = RtpSession(_cfg(frames_per_packet=2), source=lambda first, n: bytes(n))
    s.start(0.0)
    first = [packet.parse(d.data) for d in s.poll(0.0) if not d.rtcp]
    assert len(first) == 1 and first[0].payload == bytes(2)
    assert s.next_deadline_ms() == pytest.approx(160.0)
    late = [packet.parse(d.data) for d in s.poll(5000.0) if not d.rtcp]
    assert len(late) == MAX_CATCH_UP
    assert ts_diff(first[0].timestamp, late[0].timestamp) == 3840
    assert [ts_diff(first[0].timestamp, p.timestamp) for p in late] == [3840 * (i + 1) for i in range(MAX_CATCH_UP)]
    assert s.counters["pacing_resync"] == 1 and s.next_deadline_ms() <= 5160.0


def _run_pair(loss: set[int], delay_ms: float = 20.0, until_ms: int = 8000) -> tuple[RtpSession, RtpSession, list[RtpPacket]]:
    """A sends paced packets to B over an in-memory link dropping the frame indexes in ``loss``."""
    got: list[RtpPacket] = []
    a = RtpSession(_cfg(seed=11), source=lambda first, n: b"A%d" % first)
    b = RtpSession(_cfg(seed=12, ssrc=0xB0B), on_rtp=lambda p, now: got.append(p))
    a.start(0.0)
    b.start(0.0)
    link: list[tuple[float, RtpSession, Datagram]] = []
    frame = 0
    for t in range(0, until_ms, 5):
        now = float(t)
        for d in a.poll(now):
            if not d.rtcp:
                frame += 1
                if frame - 1 in loss:
                    continue
            link.append((now + delay_ms, b, d))
        for d in b.poll(now):
            link.append((now + delay_ms, a, d))
        due = [x for x in link if x[0] <= now]
        link = [x for x in link if x[0] > now]
        for _, dst, d in due:
            (dst.receive_rtcp if d.rtcp else dst.receive_rtp)(d.data, now)
    return a, b, got


def test_probation_packets_keep_their_own_arrival_time() -> None:
    # RFC 3550 A.1 holds a new source's first packet until the next one validates it; the
    # sink must still see when it arrived, or a jitter buffer starts a packet interval late.
    got: list[tuple[int, float]] = []
    a = RtpSession(_cfg(seed=11), source=lambda first, n: b"A%d" % first)
    b = RtpSession(_cfg(seed=12, ssrc=0xB0B), on_rtp=lambda p, now: got.append((p.sequence_number, now)))
    a.start(0.0)
    for t in (0.0, 80.0, 160.0):
        for d in a.poll(t):
            if not d.rtcp:
                b.receive_rtp(d.data, t + 3.0)
    assert got == [(65530, 3.0), (65531, 83.0), (65532, 163.0)]


def test_a_trusted_first_source_plays_at_once_and_later_ones_serve_probation() -> None:
    got: list[tuple[int, int, float]] = []
    b = RtpSession(_cfg(seed=12, ssrc=0xB0B, trust_first_source=True),
                   on_rtp=lambda p, now: got.append((p.ssrc, p.sequence_number, now)))

    def rtp(ssrc: int, seq: int, now: float) -> None:
        b.receive_rtp(packet.serialize(RtpPacket(96, seq, seq * 1920, ssrc, b"x")), now)

    rtp(0xA, 100, 0.0)
    assert got == [(0xA, 100, 0.0)]  # the peer's first SSRC: delivered on its first packet
    rtp(0xC, 500, 10.0)
    assert got == [(0xA, 100, 0.0)]  # a second SSRC is held on probation ...
    rtp(0xC, 501, 90.0)
    assert got == [(0xA, 100, 0.0)] and b.counters["rtp_refused_ssrc"] == 1  # ... and, valid, waits: 0xA is live
    rtp(0xC, 502, 390.0)
    assert len(got) == 1 and b.active == 0xA  # 0xA quiet for 390 ms, under source_quiet_ms
    rtp(0xC, 503, 400.0)
    assert got[1:] == [(0xC, 503, 400.0)] and b.active == 0xC and b.counters["ssrc_changed"] == 1
    rtp(0xA, 101, 480.0)
    assert got[-1][0] == 0xC and b.counters["rtp_refused_ssrc"] == 3  # the old one, back, does not take it again
    untrusted: list[int] = []
    c = RtpSession(_cfg(seed=13), on_rtp=lambda p, now: untrusted.append(p.sequence_number))
    c.receive_rtp(packet.serialize(RtpPacket(96, 7, 0, 0xA, b"x")), 0.0)
    assert untrusted == []  # without trust the first source serves probation too


def test_loss_feedback_reaches_the_sender() -> None:
    rng = random.Random(5)
    loss, bad = set(), False
    for i in range(2, 100):
        bad = rng.random() < (0.5 if bad else 0.1)
        if bad:
            loss.add(i)
    a, b, got = _run_pair(loss)
    a2, _, _ = _run_pair(loss)
    assert a.peer_loss_report == a2.peer_loss_report  # seeded: repeatable
    # every packet that crossed the link was delivered (probation packet included), in order
    assert [p.payload for p in got] == [b"A%d" % i for i in range(100) if i not in loss]
    assert a.peer_loss_report is not None and b.counters["rtcp_received"] >= 3
    st = b.sources[a.ssrc]
    assert st.cumulative_lost == len(loss)
    assert a.rtt_ms is not None and a.rtt_ms == pytest.approx(40.0, abs=6.0)
    assert b.rtt_ms is None  # B sends no SR, so nobody echoes an LSR to it
    assert b.cnames[a.ssrc] == a.config.cname


def test_peer_report_uses_xr_bursts() -> None:
    a = RtpSession(_cfg(seed=3, ssrc=1))
    seen: list[LossReport] = []
    a.on_loss_report = seen.append
    flags = (True, False, False, True, True, False, True, True)
    from rtp.rtcp_xr import LossRleBlock

    compound = rtcp.serialize_compound(
        [rtcp.ReceiverReport(2, (rtcp.ReportBlock(1, fraction_lost=96),)), XrPacket(2, (LossRleBlock.of(1, 100, flags),))]
    )
    a.receive_rtcp(compound, 10.0)
    assert seen == [burst_report(flags)] and a.peer_loss_report == LossReport(3 / 8, 1.5)
    # RR only: fraction from the RR, burst length kept from the last XR
    a.receive_rtcp(rtcp.serialize_compound([rtcp.ReceiverReport(2, (rtcp.ReportBlock(1, fraction_lost=128),))]), 20.0)
    assert a.peer_loss_report == LossReport(0.5, 1.5)


def test_malformed_input_is_counted_and_dropped() -> None:
    got: list[RtpPacket] = []
    s = RtpSession(_cfg(min_sequential=0), on_rtp=lambda p, now: got.append(p))
    s.start(0.0)
    for junk in (b"", b"\x80", b"\x40" + bytes(20), b"\xa0" + bytes(11)):
        s.receive_rtp(junk, 1.0)
    for junk in (b"\x80\xc8", b"\x81\xca\x00\x00", bytes([0x80, 201, 0, 9])):
        s.receive_rtcp(junk, 1.0)
    assert s.counters["rtp_malformed"] == 4 and s.counters["rtcp_malformed"] == 3
    s.receive_rtp(packet.serialize(RtpPacket(96, 7, 0, 42, b"ok")), 2.0)
    assert [p.payload for p in got] == [b"ok"]
    s.receive_rtp(packet.serialize(RtpPacket(96, 8, 0, s.ssrc, b"mine")), 3.0)
    assert s.counters["rtp_own_ssrc"] == 1


def test_rtcp_mux_demultiplexing_and_bye() -> None:
    got: list[RtpPacket] = []
    byes: list[int] = []
    s = RtpSession(_cfg(min_sequential=0), on_rtp=lambda p, now: got.append(p), on_bye=byes.append)
    s.start(0.0)
    s.receive(packet.serialize(RtpPacket(96, 1, 0, 42, b"x")), 1.0)
    assert 42 in s.sources
    other = RtpSession(_cfg(seed=9, ssrc=42))
    s.receive(other.bye(5.0, "bye").data, 5.0)
    assert byes == [42] and 42 not in s.sources and s.counters["rtcp_received"] == 1
    assert [p.payload for p in got] == [b"x"]


def test_sender_report_after_sending_receiver_report_otherwise() -> None:
    quiet = RtpSession(_cfg())
    quiet.start(0.0)
    out = [d for t in range(0, 3000, 10) for d in quiet.poll(float(t)) if d.rtcp]
    assert out and isinstance(rtcp.parse_compound(out[0].data)[0], rtcp.ReceiverReport)
    talker = RtpSession(_cfg(), source=lambda f, n: b"z")
    talker.start(0.0)
    out = [d for t in range(0, 3000, 10) for d in talker.poll(float(t)) if d.rtcp]
    sr = rtcp.parse_compound(out[0].data)[0]
    assert isinstance(sr, rtcp.SenderReport) and sr.packet_count >= 1 and sr.octet_count == sr.packet_count
