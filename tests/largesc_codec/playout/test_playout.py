"""Playout decisions and the NetEQ-style delay estimator (relative delay, 95th percentile, forgetting)."""

from __future__ import annotations

import random

import pytest

from largesc_codec.playout.decision import PlayoutDecision, PlayoutKind
from largesc_codec.playout.delay import DelayEstimator
from largesc_codec.playout.stream import AdmissionStatus, RestartCause, StreamTracker
from largesc_codec.types import FrameSource, TokenFrame

FRAME = 80.0


def _feed(est: DelayEstimator, delays: list[float], transit: float = 500.0, first: int = 0) -> None:
    """Packet i (frame first + i) arrives at its nominal time plus transit plus delays[i]."""
    for i, d in enumerate(delays):
        f = first + i
        est.update(f * FRAME + transit + d, f)


def test_decision_knows_its_codebooks_and_whether_it_plays() -> None:
    d = PlayoutDecision(PlayoutKind.PARTIAL, 7, (1, 2, 3))
    assert d.codebooks == 3 and d.plays
    assert not PlayoutDecision(PlayoutKind.WAIT, 0).plays
    assert PlayoutDecision(PlayoutKind.CONCEAL, 8).codebooks == 0


def test_each_playing_kind_labels_its_frame_once() -> None:
    labels = {k: PlayoutDecision(k, 0).source for k in PlayoutKind if k is not PlayoutKind.WAIT}
    assert labels == {PlayoutKind.NORMAL: FrameSource.PRIMARY, PlayoutKind.RECOVERED: FrameSource.RECOVERED,
                      PlayoutKind.PARTIAL: FrameSource.PARTIAL, PlayoutKind.CONCEAL: FrameSource.CONCEALED,
                      PlayoutKind.COMFORT: FrameSource.COMFORT}
    assert [s.value for s in FrameSource] == ["primary", "recovered", "partial", "concealed", "comfort"]
    assert [s for s in FrameSource if s.received] == [FrameSource.PRIMARY, FrameSource.RECOVERED,
                                                      FrameSource.PARTIAL]
    with pytest.raises(ValueError, match="WAIT decision plays no frame"):
        _ = PlayoutDecision(PlayoutKind.WAIT, 0).source


def test_the_stream_tracker_names_its_verdict_and_the_restart_cause() -> None:
    def no_dev(now_ms: float, frame: int) -> float:
        return 0.0

    def far(now_ms: float, frame: int) -> float:  # a transit far off the base: a possible jump
        return 5000.0

    tracker = StreamTracker(jump_ms=1000.0)
    first = tracker.admit(1, 10, 0, 0.0, [TokenFrame(0, (1,))], (), no_dev)
    assert (first.status, first.restart) == (AdmissionStatus.ADMITTED, None)
    assert tracker.admit(1, 10, 0, 1.0, [TokenFrame(0, (1,))], (), no_dev).status is AdmissionStatus.DUPLICATE
    new = tracker.admit(2, 500, 0, 80.0, [TokenFrame(0, (1,))], (), no_dev)
    assert (new.status, new.restart) == (AdmissionStatus.ADMITTED, RestartCause.SSRC)
    assert tracker.admit(1, 11, 1920, 90.0, [TokenFrame(0, (1,))], (), no_dev).status is AdmissionStatus.STALE
    held = tracker.admit(2, 501, 100 * 1920, 160.0, [TokenFrame(0, (1,))], (), far)
    assert (held.status, held.restart) == (AdmissionStatus.HELD, None)
    jump = tracker.admit(2, 502, 101 * 1920, 240.0, [TokenFrame(0, (1,))], (), far)
    assert (jump.status, jump.restart, len(jump.packets)) == (AdmissionStatus.ADMITTED, RestartCause.JUMP, 2)


def test_prior_target_before_measurements_then_forgotten() -> None:
    est = DelayEstimator(initial_delay_ms=80.0)
    assert est.base_ms is None and est.target_ms() == 90.0  # upper edge of the 80..90 ms bucket
    assert est.current_ms(1000.0, 3) == 0.0  # no base yet
    _feed(est, [0.0] * 40)
    assert est.target_ms() == 10.0  # steady network: only the first bucket remains


def test_relative_delay_is_measured_from_the_fastest_recent_packet() -> None:
    est = DelayEstimator()
    assert est.update(0 * FRAME + 530.0, 0) == 0.0
    assert est.update(1 * FRAME + 560.0, 1) == 30.0  # 30 ms slower than packet 0
    assert est.update(2 * FRAME + 510.0, 2) == 0.0  # the new fastest
    assert est.base_ms == 510.0
    assert est.deviation(3 * FRAME + 640.0, 3) == 130.0
    assert est.current_ms(10 * FRAME + 600.0, 10) == 90.0


def test_base_follows_a_window_of_packets_not_time() -> None:
    est = DelayEstimator(history_packets=4)
    _feed(est, [0.0, 50.0, 50.0, 50.0])
    assert est.base_ms == 500.0
    _feed(est, [50.0], first=4)  # packet 0 leaves the window of 4
    assert est.base_ms == 550.0
    est.update(1e6, 5)  # a long silence keeps the base: only packets push old ones out
    assert est.base_ms == 550.0


def test_target_is_the_95th_percentile_of_seeded_uniform_jitter() -> None:
    rng = random.Random(5)
    est = DelayEstimator(max_delay_ms=1000.0, forget=0.995)
    _feed(est, [rng.uniform(0.0, 200.0) for _ in range(2000)])
    # 95 % of uniform(0, 200) lie below 190 ms; bucket edges add at most 10 ms.
    assert 180.0 <= est.target_ms() <= 210.0


def test_target_grows_fast_and_shrinks_back_with_forgetting() -> None:
    rng = random.Random(11)
    est = DelayEstimator()
    _feed(est, [rng.uniform(0.0, 5.0) for _ in range(60)])
    calm = est.target_ms()
    assert calm <= 10.0
    _feed(est, [rng.uniform(0.0, 250.0) for _ in range(20)], first=60)
    assert est.target_ms() >= 150.0
    grown_after = 0
    for i in range(80, 200):
        est.update(i * FRAME + 500.0 + rng.uniform(0.0, 5.0), i)
        if est.target_ms() <= 20.0 and not grown_after:
            grown_after = i - 80
    assert 0 < grown_after <= 80  # back to calm within ~6 s of packets at 80 ms


def test_target_is_clamped_to_min_and_max() -> None:
    est = DelayEstimator(min_delay_ms=40.0, max_delay_ms=300.0)
    _feed(est, [0.0] * 50)
    assert est.target_ms() == 40.0
    _feed(est, [900.0 * (i % 2) for i in range(100)], first=50)
    assert est.jitter_ms() > 300.0 and est.target_ms() == 300.0


def test_reset_base_keeps_the_jitter_histogram() -> None:
    est = DelayEstimator()
    _feed(est, [0.0, 200.0] * 30)
    before = est.target_ms()
    est.reset_base()
    assert est.base_ms is None and est.target_ms() == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_delay_ms": -1.0},
        {"min_delay_ms": 100.0, "max_delay_ms": 50.0},
        {"quantile": 1.0},
        {"forget": 1.0},
        {"bucket_ms": 0.0},
        {"history_packets": 0},
        {"initial_delay_ms": float("nan")},
    ],
)
def test_invalid_settings_raise_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DelayEstimator(**kwargs)  # type: ignore[arg-type]
