"""Receiver statistics (RFC 3550 A.1, A.3, A.8) against seeded traces and a hand-computed case."""

from __future__ import annotations

import random

import pytest

from rtp import rtcp
from rtp.rtcp_xr import burst_report
from rtp.stats import SourceStats


def test_jitter_by_hand_rfc3550_a8() -> None:
    # clock 8000: timestamps 0,160,320,480; arrivals 0,20,45,60 ms = 0,160,360,480 ticks
    # transit 0,0,40,0 -> |D| = 0,40,40 -> J = 0, 2.5, 2.5 + (40 - 2.5)/16 = 4.84375
    s = SourceStats(1, 8000, min_sequential=0)
    for seq, (ts, ms) in enumerate([(0, 0.0), (160, 20.0), (320, 45.0), (480, 60.0)]):
        assert s.update(seq, ts, ms)
    assert s.jitter == pytest.approx(4.84375)
    assert s.make_report(60.0).block.jitter == 4


def test_probation_then_valid() -> None:
    s = SourceStats(1, 24000)  # MIN_SEQUENTIAL = 2
    assert not s.update(100, 0, 0.0)
    assert not s.update(105, 0, 1.0)  # out of sequence: probation restarts
    assert not s.update(200, 0, 2.0)
    assert s.update(201, 1920, 82.0)
    assert s.valid and s.base_seq == 201 and s.received == 1


def _trace(seed: int, n: int = 400, start_seq: int = 65400) -> list[tuple[int, int, int, float]]:
    """(extended seq, wire seq, timestamp, arrival ms): bursty loss, adjacent swaps, jittered arrival."""
    rng = random.Random(seed)
    out, bad = [], False
    for i in range(n):
        bad = rng.random() < (0.6 if bad else 0.05)  # Gilbert-like bursts
        if i >= 2 and bad:
            continue
        ext = start_seq + i
        out.append((ext, ext % 65536, (4000000000 + 1920 * i) % (1 << 32), 80.0 * i + rng.uniform(0, 30)))
    for k in range(3, len(out) - 1, 17):  # reorder: swap neighbours (arrival order)
        out[k], out[k + 1] = out[k + 1], out[k]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_statistics_against_seeded_trace(seed: int) -> None:
    trace = _trace(seed)
    s = SourceStats(0xABC, 24000)
    half = len(trace) // 2
    for ext, seq, ts, ms in trace[:half]:
        s.update(seq, ts, ms)
    first = s.make_report(trace[half - 1][3])
    for ext, seq, ts, ms in trace[half:]:
        s.update(seq, ts, ms)
    second = s.make_report(trace[-1][3])

    base = trace[1][0]  # probation: the second packet is the first counted
    counted = [e for e, *_ in trace[1:]]
    ext_max = max(counted)
    expected, received = ext_max - base + 1, len(counted)
    assert second.block.cumulative_lost == expected - received
    assert second.block.highest_seq == ext_max  # includes the wrap cycle
    assert ext_max > 65535

    # A.3 fraction of the second interval
    e1 = max(e for e, *_ in trace[1:half]) - base + 1
    r1 = half - 1
    lost2, exp2 = (expected - e1) - (received - r1), expected - e1
    assert lost2 > 0 and second.block.fraction_lost == (lost2 * 256) // exp2
    assert first.block.fraction_lost == ((e1 - r1) * 256) // e1

    # the XR maps cover [base, ext_max] exactly once, reorder across the edge counts as lost there
    assert first.rle is not None and second.rle is not None
    assert first.rle.begin_seq == base % 65536
    assert second.rle.begin_seq == (base + len(first.rle.received)) % 65536
    flags = first.rle.received + second.rle.received
    assert len(flags) == expected
    edge = base + len(first.rle.received)
    arrived = {e for e, *_ in trace[1:half] if e < edge} | {e for e, *_ in trace[half:] if e >= edge}
    assert flags == tuple(base + i in arrived for i in range(expected))
    assert second.loss == burst_report(second.rle.received)
    assert second.loss is not None and second.loss.mean_burst >= 1.0


def test_duplicates_make_cumulative_lost_negative_and_restart() -> None:
    s = SourceStats(1, 24000, min_sequential=0)
    for seq in (10, 11, 11, 12, 12):
        assert s.update(seq, seq * 1920, seq * 80.0)
    assert s.make_report(1000.0).block.cumulative_lost == -2
    # a jump of 10000 is "bad" until the next packet follows it: then the source restarted
    assert not s.update(10012, 0, 1100.0)
    assert s.update(10013, 1920, 1180.0)
    assert s.base_seq == 10013 and s.received == 1 and s.cumulative_lost == 0


def test_lsr_dlsr_from_last_sender_report() -> None:
    s = SourceStats(1, 24000, min_sequential=0)
    s.update(1, 0, 0.0)
    ntp = rtcp.ntp_from_unix_ms(1_700_000_000_000.0)
    s.on_sender_report(ntp, 1000.0)
    block = s.make_report(1500.0).block
    assert block.lsr == rtcp.ntp_compact(ntp)
    assert block.dlsr == 32768  # 0.5 s in 1/65536 s
    assert s.make_report(1600.0).rle is None  # nothing new since the last report
