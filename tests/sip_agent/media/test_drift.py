"""DriftController against a simulated sound card whose clock is off by a known amount.

The simulation is the card's real arithmetic: a card block every 20 ms of
*its* clock, an engine tick every 80 ms of the machine's; the card's blocks
are resampled with the ratio the controller trims. Without the controller
the pipe grows by the drift; with it the level returns to its set-point and
the correction settles at the drift.
"""

from __future__ import annotations

import pytest

from sip_agent.media.drift import LIMIT, CardClock, DriftController, engine_level, simulate

RATE = 24_000


def _run(ppm: float, seconds: float, control: bool, speaker: bool = False) -> tuple[list[float], DriftController]:
    return simulate(ppm, seconds, control, speaker)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


@pytest.mark.parametrize("speaker", [False, True], ids=["mic", "speaker"])
@pytest.mark.parametrize("ppm", [-500.0, 150.0, 1000.0])
def test_the_level_holds_and_the_correction_learns_the_drift(ppm: float, speaker: bool) -> None:
    free, _ = _run(ppm, 600, control=False, speaker=speaker)
    held, ctl = _run(ppm, 600, control=True, speaker=speaker)
    drift_ms = 1000 * (_mean(free[-500:]) - _mean(free[:500])) / RATE
    sign = -1 if speaker else 1  # a fast card fills the microphone pipe and drains the speaker pipe
    assert abs(drift_ms - sign * ppm * 600 / 1000) <= 20  # uncontrolled: 60 ms per 100 ppm in 10 min (+- one block)
    # Controlled: the last minute's mean level within 1 ms of the first seconds', and c = the drift.
    assert ctl.setpoint_s is not None
    assert abs(_mean(held[-3000:]) / RATE - ctl.setpoint_s) < 0.001
    assert abs(ctl.correction * 1e6 - sign * ppm) < 0.05 * abs(ppm) + 5


def test_no_drift_no_correction_and_the_limit_holds() -> None:
    _, ctl = _run(0.0, 120, control=True)
    assert abs(ctl.correction) < 1e-5  # 10 ppm: the 20 ms steps of the sawtooth's phase
    _, ctl = _run(20_000.0, 120, control=True)  # a broken card: 2 %
    assert ctl.correction == pytest.approx(LIMIT)


def test_restart_keeps_what_the_integral_learnt_and_settles_a_new_setpoint() -> None:
    ctl = DriftController(RATE)
    for _ in range(200):
        ctl.update(2400, 0.02)
    for _ in range(20_000):
        ctl.update(2640, 0.02)  # 10 ms above the set-point: the integral grows
    learnt = ctl.ki * ctl._integral
    assert learnt > 0
    ctl.restart()
    assert ctl.setpoint_s is None and ctl.update(100, 0.02, 1e-4) == pytest.approx(1e-4 + learnt)


def test_feedback_alone_still_holds_the_level() -> None:
    """Without the card's rate (feed-forward 0), the PI law alone brings the level back."""
    ctl = DriftController(RATE)
    level, t_card, t_engine = 2880.0, 0, 0
    seen_levels = []
    while t_card < 900e9:
        t_card += round(20e6 / 1.0003)  # 300 ppm fast
        while t_engine + 80_000_000 <= t_card:
            t_engine += 80_000_000
            level -= 1920
        seen = engine_level(int(level), (t_card - t_engine) / 1e9, 1920, RATE, engine_takes=True)
        seen_levels.append(seen)
        level += 480 * (1 - ctl.update(seen, 0.020))
    assert ctl.setpoint_s is not None and abs(_mean(seen_levels[-3000:]) / RATE - ctl.setpoint_s) < 0.002
    assert abs(ctl.correction * 1e6 - 300) < 30


def test_card_clock_measures_the_rate_and_ignores_the_first_second() -> None:
    clock = CardClock(48_000)
    t = 0.0
    clock.observe(960, t)
    for _ in range(20):  # a stalled start: 20 blocks at once, 0.4 s late
        clock.observe(960, 0.4)
    t = 0.4
    while t < 60:
        t += 0.020 / 1.0005  # then 500 ppm fast
        clock.observe(960, t)
    assert abs(clock.drift * 1e6 - 500) < 5


@pytest.mark.parametrize("speaker", [False, True], ids=["mic", "speaker"])
def test_a_jittery_engine_still_holds_the_level(speaker: bool) -> None:
    """Engine ticks up to 15 ms late (a busy thread): the level stays within 5 ms of its set-point."""
    held, ctl = simulate(200.0, 600, True, speaker, jitter_ms=15.0, seed=1)
    assert ctl.setpoint_s is not None
    last_minute = held[-3000:]
    assert abs(_mean(last_minute) / RATE - ctl.setpoint_s) < 0.005
    assert abs(abs(ctl.correction) * 1e6 - 200) < 60
