"""RTCP interval (RFC 3550 A.7) and the transmission timer with reconsideration."""

from __future__ import annotations

import random
import statistics

import pytest

from rtp.interval import COMPENSATION, RtcpScheduler, reduced_min_interval_s, rtcp_interval


class _Half(random.Random):
    """random() == 0.5: the randomisation factor becomes exactly 1."""

    def random(self) -> float:
        return 0.5


def test_deterministic_part() -> None:
    half = _Half()
    # two members, one sender: no split, minimum 5 s wins
    assert rtcp_interval(2, 1, 1000.0, True, 100.0, False, half) == pytest.approx(5.0 / COMPENSATION)
    assert rtcp_interval(2, 1, 1000.0, True, 100.0, True, half) == pytest.approx(2.5 / COMPENSATION)
    # ten members, two senders: senders share 25 %, receivers 75 %
    assert rtcp_interval(10, 2, 100.0, True, 200.0, False, half) == pytest.approx(200 * 2 / 25.0 / COMPENSATION)
    assert rtcp_interval(10, 2, 100.0, False, 200.0, False, half) == pytest.approx(200 * 8 / 75.0 / COMPENSATION)
    # a reduced minimum lets a high-bandwidth session report faster
    assert rtcp_interval(2, 1, 1e6, True, 100.0, False, half, min_interval_s=0.36) == pytest.approx(0.36 / COMPENSATION)
    assert reduced_min_interval_s(2000.0) == pytest.approx(180.0)


def test_randomisation_spread_seeded() -> None:
    rng = random.Random(7)
    base = 5.0 / COMPENSATION
    samples = [rtcp_interval(2, 1, 1000.0, True, 100.0, False, rng) for _ in range(4000)]
    assert min(samples) >= 0.5 * base and max(samples) <= 1.5 * base
    assert statistics.mean(samples) == pytest.approx(base, rel=0.02)
    assert min(samples) < 0.55 * base and max(samples) > 1.45 * base


def test_scheduler_first_report_and_rearm() -> None:
    sched = RtcpScheduler(rtcp_bw_bps=8000.0, rng=_Half(), min_interval_s=5.0)
    sched.start(0.0, members=2)
    first = sched.next_ms
    assert first == pytest.approx(2500 / COMPENSATION)  # initial: half the minimum
    assert not sched.due(first - 1, 2, 1, True)
    assert sched.due(first, 2, 1, True)
    sched.sent(first, 100, 2, 1, True)
    assert not sched.initial
    assert sched.avg_rtcp_size == pytest.approx(128 + (128 - 128) / 16)
    assert sched.next_ms == pytest.approx(first + 5000 / COMPENSATION)


def test_scheduler_randomised_reports_stay_within_bounds() -> None:
    sched = RtcpScheduler(rtcp_bw_bps=8000.0, rng=random.Random(1), min_interval_s=5.0)
    sched.start(0.0, members=2)
    sent_at = []
    for t in range(0, 120_000, 10):
        if sched.due(float(t), 2, 1, True):
            sched.sent(float(t), 100, 2, 1, True)
            sent_at.append(t)
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert 0.5 * 2500 / COMPENSATION - 10 <= sent_at[0] <= 1.5 * 2500 / COMPENSATION + 10
    assert min(gaps) >= 0.5 * 5000 / COMPENSATION - 10 and max(gaps) <= 1.5 * 5000 / COMPENSATION + 20
    assert 4000 / COMPENSATION < statistics.mean(gaps) < 6000 / COMPENSATION


def test_forward_reconsideration_postpones_when_group_grew() -> None:
    # tiny RTCP bandwidth: the interval is bandwidth-bound, so more members mean a later report
    sched = RtcpScheduler(rtcp_bw_bps=800.0, rng=_Half(), min_interval_s=0.0)
    sched.start(0.0, members=2)
    t = sched.next_ms
    assert not sched.due(t, 50, 0, False)
    assert sched.next_ms > 10 * t


def test_reverse_reconsideration_after_bye() -> None:
    sched = RtcpScheduler(rtcp_bw_bps=800.0, rng=_Half(), min_interval_s=0.0)
    sched.start(0.0, members=40)
    before = sched.next_ms
    sched.members_left(1000.0, 10)
    assert sched.next_ms == pytest.approx(1000.0 + 0.25 * (before - 1000.0))
    assert sched.tp == pytest.approx(1000.0 - 0.25 * 1000.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        rtcp_interval(2, 1, 0.0, True, 100.0, False, random.Random(0))
    with pytest.raises(ValueError):
        RtcpScheduler(0.0, random.Random(0))
