"""`largesc lab` analysis, pure: frame parsing, seeded traces, counters, bounds."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest

from sip_agent.lab.analysis import agreement, configured, direction_report, netem_counters
from sip_agent.lab.capture import RtcpSeen, RtpSeen, parse_frame
from sip_agent.lab.frames import frame_accounting, frames_per_packet
from sip_agent.lab.netem_parse import parse_netem
from tests.sip_agent.lab.conftest import gilbert_bounds

BURSTY = "loss gemodel 10% 40%"  # Gilbert: 20 % loss in bursts of 2.5 packets on average


def _frame(udp_payload: bytes, *, proto: int = 17, frag: int = 0, ethertype: int = 0x0800) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(udp_payload), 1, frag, 64, proto, 0,
                     socket.inet_aton("10.201.1.2"), socket.inet_aton("10.201.2.2"))
    udp = struct.pack("!HHHH", 40000, 50000, 8 + len(udp_payload), 0)
    return b"\x02" * 12 + struct.pack("!H", ethertype) + ip + udp + udp_payload


def _rtp(seq: int, ts: int = 0, pt: int = 96, ssrc: int = 7, payload: bytes = b"x" * 20) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, ts, ssrc) + payload


def test_parse_frame_keeps_rtp_and_skips_sip_rtcp_fragments_and_non_ip() -> None:
    seen = parse_frame(_frame(_rtp(65535, 1920)), "caller", True, 5)
    assert isinstance(seen, RtpSeen) and (seen.seq, seen.timestamp, seen.ssrc, seen.payload_type) == (65535, 1920, 7, 96)
    assert (seen.src, seen.dst, seen.sport, seen.dport) == ("10.201.1.2", "10.201.2.2", 40000, 50000)
    assert seen.ip_bytes == 20 + 8 + 12 + 20 and seen.payload_bytes == 20 and seen.outgoing
    block = struct.pack("!IB3sIIII", 9, 0, (3).to_bytes(3, "big"), (1 << 16) | 42, 0, 0, 0)
    rr = parse_frame(_frame(struct.pack("!BBHI", 0x81, 201, 7, 7) + block), "callee", True, 6)
    assert isinstance(rr, RtcpSeen) and rr.blocks == ((9, (1 << 16) | 42, 3),) and rr.outgoing
    for frame in (_frame(b"INVITE sip:lab@10.201.2.2 SIP/2.0\r\n"), _frame(b"SIP/2.0 200 OK\r\n\r\n"),
                  _frame(struct.pack("!BBHI", 0x81, 201, 7, 7)), _frame(_rtp(1), proto=6),
                  _frame(_rtp(1), frag=0x2000), _frame(_rtp(1), ethertype=0x86DD), _frame(b"\x80\x60")):
        assert parse_frame(frame, "callee", False, 0) is None


def _trace(count: int, lost: set[int], first_seq: int = 65_500, delay_ns: int = 3_000_000,
           ) -> list[RtpSeen]:
    """A sender's 80 ms packets and the receiver's copies of those not in ``lost``."""
    out = []
    for i in range(count):
        seq, ts, t = (first_seq + i) % 65536, (1000 + 1920 * i) % (1 << 32), 10**12 + i * 80_000_000
        common = dict(src="10.201.1.2", dst="10.201.2.2", sport=40000, dport=50000, ssrc=9, payload_type=96,
                      seq=seq, timestamp=ts, ip_bytes=60, payload_bytes=20)
        out.append(RtpSeen(side="caller", outgoing=True, t_ns=t, **common))  # type: ignore[arg-type]
        if i not in lost:
            out.append(RtpSeen(side="callee", outgoing=False, t_ns=t + delay_ns, **common))  # type: ignore[arg-type]
    return out


def test_direction_report_counts_loss_bursts_delay_and_rates_across_the_wrap() -> None:
    lost = {10, 11, 12, 40, 100, 101, 199}  # bursts 3, 1, 2, 1 -> mean 1.75
    spec = parse_netem(BURSTY)
    trace = _trace(200, lost)
    # The receiving agent opened its port at index 3 (probation: 3, 4 -> counts from 4) and
    # stopped after 198; its last RTCP report names 198 as its highest sequence number.
    media = {"packets_received": 195 - 6, "packets_lost": 6}
    last_rr = RtcpSeen("callee", True, 2 * 10**12, "10.201.2.2", "10.201.1.2",
                       ((9, (1 << 16) | ((65_500 + 198) % 65536), 6),))
    rep = direction_report([*trace, last_rr], "caller", "callee", spec, 96, 24000, media)
    obs = rep["observed"]
    assert (obs["sent"], obs["lost"], obs["bursts"], obs["max_burst"]) == (200, 7, 4, 3)
    assert obs["mean_burst"] == pytest.approx(1.75) and obs["delay_mean_ms"] == pytest.approx(3.0)
    assert obs["reordered"] == obs["duplicates"] == obs["unmatched_arrivals"] == 0
    assert rep["bitrate"]["payload_bps"] == pytest.approx(2000.0)  # 20 bytes every 80 ms
    assert rep["bitrate"]["wire_bps"] == pytest.approx(6000.0)
    agree = rep["agreement"]
    assert agree["agrees"] and agree["anchored"] and agree["window"] == [4, 198]
    assert agree["rtcp_cumulative_lost"] == 6 and agree["arrived_before_window"] == 4
    # a BYE-only last RTCP packet (no block): the end is what arrived before it left
    bye = RtcpSeen("callee", True, trace[-1].t_ns - 40_000_000, "10.201.2.2", "10.201.1.2", ())
    timed = direction_report([*trace, bye], "caller", "callee", spec, 96, 24000, media)["agreement"]
    assert timed["anchored"] and timed["window"] == [4, 198] and timed["rtcp_cumulative_lost"] is None
    assert rep["configured"]["loss_rate"] == pytest.approx(0.2) and rep["within_bounds"]["loss"]
    # without the report only a window that fits can be found, and it is not pinned
    loose = direction_report(trace, "caller", "callee", spec, 96, 24000, media)["agreement"]
    assert loose["agrees"] and not loose["anchored"]


def _agreement(arrived: list[int], got: int, lost: int, ends: list[int]) -> dict[str, Any]:
    out = agreement(arrived, {"packets_received": got, "packets_lost": lost}, ends)
    assert out is not None
    return out


def test_agreement_rejects_counters_that_disagree_with_the_capture() -> None:
    arrived = [i for i in range(100) if i not in {20, 21, 50}]
    assert _agreement(arrived, 96, 3, [99])["anchored"]  # window 1..99
    assert not _agreement(arrived, 96, 2, [99])["agrees"]  # a loss missed
    assert not _agreement(arrived, 96, 4, [99])["agrees"]  # one too many
    assert not _agreement(arrived, 95, 4, [99])["agrees"]  # wrong split
    wrong_end = _agreement(arrived, 96, 3, [60])
    assert wrong_end["agrees"] and not wrong_end["anchored"]  # counts fit elsewhere, not at its end
    assert agreement([], None) is None


def _media(primary: int, recovered: int, partial: int, concealed: int, skipped: int = 0,
           buffer_ms: float = 100.0) -> dict[str, Any]:
    return {"frames_recovered": recovered, "frames_concealed": concealed,
            "extra": {"frames_primary": primary, "frames_partial": partial, "frames_comfort": 0,
                      "jitter_buffer_skipped": skipped, "jitter_buffer_ms": buffer_ms}}


def _frames(stamps: dict[int, int], arrived: set[int], media: dict[str, Any]) -> dict[str, Any]:
    out = frame_accounting(stamps, arrived, [2, 99], media)
    assert out is not None
    return out


def test_frame_accounting_counts_network_loss_and_frames_the_sender_skipped() -> None:
    # 100 one-frame packets; the sender skipped 3 frames after packet 49 (timestamp gap);
    # the agent's window is packets 2..99, frames 2..102: 101 frames, 95 arrived, 6 missing
    stamps = {i: 1920 * (i + (3 if i >= 50 else 0)) for i in range(100)}
    arrived = set(range(100)) - {10, 11, 70}
    ok = _frames(stamps, arrived, _media(95, 1, 1, 4))
    assert (ok["span"], ok["missing"], ok["not_sent_by_sender"], ok["frames_per_packet"]) == (101, 6, 3, 1)
    assert ok["consistent"] and ok["unplayed_at_most"] == 3  # 100 ms buffered -> 2 frames, + 1
    assert _frames(stamps, arrived, _media(95, 0, 0, 3))["consistent"]  # 3 may still be buffered
    assert not _frames(stamps, arrived, _media(95, 0, 0, 2))["consistent"]  # a missing frame unaccounted
    assert _frames(stamps, arrived, _media(95, 0, 0, 2, skipped=1))["consistent"]  # ... unless skipped
    assert not _frames(stamps, arrived, _media(98, 0, 0, 6))["consistent"]  # primary > what arrived
    assert frame_accounting(stamps, arrived, [2, 99], {"packets_received": 5}) is None  # raw engine
    assert frames_per_packet({0: 0, 1: 3840, 2: 7680}) == 2


def test_configured_bounds_match_the_closed_form_gilbert_bounds() -> None:
    spec = parse_netem(BURSTY)
    conf = configured(spec, 3000)
    (lo, hi), (blo, bhi) = gilbert_bounds(0.10, 0.40, 3000)
    assert conf["loss_bounds"] == pytest.approx([lo, hi], rel=1e-6)
    assert conf["mean_burst_bounds"] == pytest.approx([blo, bhi], rel=0.1)  # delta method vs geometric
    assert configured(parse_netem("clean"), 100)["loss_bounds"] == [0.0, 0.0]


def test_netem_counters_read_tc_statistics() -> None:
    text = ("[forward]\nqdisc netem 8001: root refcnt 2 limit 1000 loss gemodel p 10% r 40%\n"
            " Sent 179018 bytes 1691 pkt (dropped 394, overlimits 0 requeues 0) \n"
            "[backward] qdisc noqueue 0: root refcnt 2\n Sent 0 bytes 0 pkt (dropped 0, overlimits 0)\n")
    assert netem_counters(text) == {"forward": {"sent": 1691, "dropped": 394},
                                    "backward": {"sent": 0, "dropped": 0}}
