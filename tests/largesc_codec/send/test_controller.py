"""AdaptiveController: silence vs speech, budget, redundancy vs loss and burstiness, VAD, smoothing."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from largesc_codec.send.controller import (
    HANGOVER_FRAMES,
    AdaptiveController,
    bits_per_second,
    plan_speech,
    smooth_loss,
    token_bits_per_second,
)
from largesc_codec.send.features import FrameFeatures, frame_features
from largesc_codec.types import Decision, LossReport, RedundancySpec
from largesc_codec.wire.payload import payload_size

SPEECH = FrameFeatures(energy_db=-20.0, zcr=0.05, flatness=0.05, periodicity=0.8, voiced=True)
FRICATIVE = FrameFeatures(energy_db=-30.0, zcr=0.4, flatness=0.5, periodicity=0.2, voiced=False)
QUIET = FrameFeatures(energy_db=-70.0, zcr=0.5, flatness=0.6, periodicity=0.1, voiced=False)


def noise(db: float) -> FrameFeatures:
    return FrameFeatures(energy_db=db, zcr=0.5, flatness=0.55, periodicity=0.15, voiced=False)


def blocks_of(c: int, red: tuple[RedundancySpec, ...]) -> list[tuple[int, int]]:
    return [(0, c)] + [(s.distance, s.codebooks) for s in red]


def red_bytes(c: int, red: tuple[RedundancySpec, ...]) -> int:
    return payload_size(blocks_of(c, red)) - payload_size([(0, c)])


def warm(ctl: AdaptiveController, loss: LossReport | None, frames: int = 300) -> Decision:
    """Run speech frames with a steady report until the smoothed loss has settled."""
    d = ctl.decide(SPEECH, loss)
    for _ in range(frames):
        d = ctl.decide(SPEECH, loss)
    return d


# ---- construction --------------------------------------------------------------------------


def test_bits_per_second_uses_the_payload_format() -> None:
    assert bits_per_second(Decision(1)) == 300.0  # 1 ToC byte + 2 bytes of one 11-bit token
    assert bits_per_second(Decision(4)) == 700.0  # 550 bit/s of tokens + ToC + padding
    d = Decision(8, (RedundancySpec(1, 2), RedundancySpec(3, 1)))
    assert bits_per_second(d) == payload_size([(0, 8), (1, 2), (3, 1)]) * 100
    with pytest.raises(ValueError):
        bits_per_second((8, ()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_bps=137.5), "one codebook a frame"),
        (dict(max_bps=299.9), "raise max_bps to >= 300"),
        (dict(max_bps=float("nan")), "finite"),
        (dict(max_codebooks=0), "max_codebooks"),
        (dict(max_codebooks=33), "max_codebooks"),
        (dict(max_codebooks=8, min_speech_codebooks=9), "min_speech_codebooks"),
        (dict(min_speech_codebooks=0), "min_speech_codebooks"),
        (dict(max_redundancy_distance=-1), "max_redundancy_distance"),
        (dict(max_redundancy_distance=9), "max_redundancy_distance"),
        (dict(max_codebooks=8.0), "must be an int"),
        (dict(min_speech_codebooks=True), "must be an int"),
    ],
)
def test_bad_configuration_raises(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaptiveController(**kwargs)  # type: ignore[arg-type]


def test_low_budget_allowed_with_fewer_speech_codebooks() -> None:
    ctl = AdaptiveController(max_bps=400.0, min_speech_codebooks=2)
    d = warm(ctl, None)
    assert d.codebooks == 2 and bits_per_second(d) <= 400.0


@pytest.mark.parametrize("max_bps, speech_codebooks", [(300.0, 1), (550.0, 2), (699.9, 3), (700.0, 4)])
def test_a_budget_below_the_speech_floor_codes_speech_with_what_fits(max_bps: float, speech_codebooks: int) -> None:
    """Issue 15: the budget caps every payload byte; 4 codebooks and their ToC need 700 bit/s."""
    ctl = AdaptiveController(max_bps=max_bps)
    assert ctl.min_speech_codebooks == speech_codebooks
    for loss in (None, LossReport(0.2, 2.0)):
        d = warm(ctl, loss)
        assert d.speech and d.codebooks >= speech_codebooks and bits_per_second(d) <= max_bps


@pytest.mark.parametrize(
    "loss",
    [LossReport(1.5, 1.0), LossReport(-0.1, 1.0), LossReport(float("nan"), 1.0), LossReport(0.1, -1.0),
     LossReport(0.1, float("inf")), (0.1, 1.0)],
)
def test_bad_loss_report_raises(loss: object) -> None:
    with pytest.raises(ValueError, match="LossReport"):
        AdaptiveController().decide(SPEECH, loss)  # type: ignore[arg-type]


def test_bad_features_raise() -> None:
    with pytest.raises(ValueError, match="FrameFeatures"):
        AdaptiveController().decide(np.zeros(1920, np.float32), None)  # type: ignore[arg-type]


# ---- silence and speech --------------------------------------------------------------------


def test_silence_is_cheap_and_speech_is_not() -> None:
    ctl = AdaptiveController()
    speech = warm(ctl, LossReport(0.1, 1.0))
    for _ in range(HANGOVER_FRAMES):
        ctl.decide(QUIET, LossReport(0.1, 1.0))
    silence = ctl.decide(QUIET, LossReport(0.1, 1.0))
    assert silence == Decision(1, (), False, silence.reason) and "silence" in silence.reason
    assert speech.speech and speech.codebooks >= 4 and speech.redundancy
    assert bits_per_second(silence) == 300.0
    assert bits_per_second(speech) >= 4 * bits_per_second(silence)


@pytest.mark.parametrize("loss", [None, LossReport(0.0, 1.0), LossReport(0.004, 3.0)])
def test_no_redundancy_at_zero_or_negligible_loss(loss: LossReport | None) -> None:
    for max_bps, cb in [(2062.5, 8), (4000.0, 8), (4000.0, 32), (1000.0, 8)]:
        d = warm(AdaptiveController(max_bps=max_bps, max_codebooks=cb), loss)
        assert d.redundancy == ()
        # all the budget to primary codebooks: one more would not fit (or the cap is reached)
        assert d.codebooks == cb or bits_per_second(Decision(d.codebooks + 1)) > max_bps


def test_budget_and_invariants_hold_over_a_grid() -> None:
    rng = random.Random(0)
    cases = [(bps, cb, 4, dist, loss, burst)
             for bps in (550.0, 700.0, 701.0, 999.0, 1400.0, 2062.5, 4000.0)
             for cb in (4, 8, 32) for dist in (0, 1, 3)
             for loss in (0.0, 0.01, 0.1, 0.3, 0.6, 1.0) for burst in (1.0, 2.5, 8.0)]
    cases += [(rng.uniform(550, 4000), rng.randint(4, 32), rng.randint(1, 4), rng.randint(0, 8),
               rng.random(), rng.uniform(0, 12)) for _ in range(150)]
    for bps, cb, lo, dist, loss, burst in cases:
        c, red = plan_speech(bps, cb, lo, dist, loss, burst)
        assert payload_size(blocks_of(c, red)) * 100 <= bps, (bps, cb, dist, loss, burst, c, red)
        floor = max(k for k in range(1, lo + 1) if payload_size([(0, k)]) * 100 <= bps)
        assert floor <= c <= cb
        ds = [s.distance for s in red]
        assert ds == sorted(set(ds)) and all(1 <= d <= dist for d in ds)
        assert all(1 <= s.codebooks <= c for s in red)
        if loss < 0.005:
            assert red == ()


def test_budget_holds_through_decide_with_noisy_inputs() -> None:
    rng = random.Random(1)
    for max_bps in (550.0, 1234.5, 2062.5, 3300.0):
        ctl = AdaptiveController(max_bps=max_bps, max_codebooks=16, max_redundancy_distance=4)
        for _ in range(300):
            f = rng.choice([SPEECH, FRICATIVE, QUIET, noise(rng.uniform(-80, -10))])
            loss = None if rng.random() < 0.1 else LossReport(rng.random() * 0.6, rng.uniform(0, 10))
            d = ctl.decide(f, loss)
            assert bits_per_second(d) <= max_bps and token_bits_per_second(d) < bits_per_second(d)
            assert d.codebooks >= (min(4, ctl.min_speech_codebooks) if d.speech else 1) and d.reason


# ---- redundancy versus loss and burstiness -------------------------------------------------

LOSSES = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


@pytest.mark.parametrize("max_bps, cb", [(1000.0, 8), (1400.0, 8), (2062.5, 16), (3000.0, 16)])
@pytest.mark.parametrize("burst", [1.0, 2.0, 4.0])
def test_protection_grows_with_loss(max_bps: float, cb: int, burst: float) -> None:
    plans = [plan_speech(max_bps, cb, 4, 3, loss, burst) for loss in LOSSES]
    primaries = [c for c, _ in plans]
    assert primaries == sorted(primaries, reverse=True)  # primary codebooks only ever traded away
    assert plans[0][1] == ()
    low, high = plans[LOSSES.index(0.02)], plans[LOSSES.index(0.4)]
    assert red_bytes(*high) > 0 and red_bytes(*high) >= red_bytes(*low)
    assert high[0] <= low[0]


def test_default_budget_spends_every_spare_byte_on_copies_once_loss_is_seen() -> None:
    """The header's claim: the default 20 bytes a packet hold 8 codebooks + a 5-codebook copy at light loss."""
    for loss in (0.005, 0.01, 0.05):
        c, red = plan_speech(2062.5, 8, 4, 3, loss, 1.0)
        assert c == 8 and sum(s.codebooks for s in red) == 5, (loss, c, red)
        assert payload_size(blocks_of(c, red)) == 20
    for loss in (0.1, 0.2, 0.3, 0.5):
        c, red = plan_speech(2062.5, 8, 4, 3, loss, 1.0)
        assert red and max(s.codebooks for s in red) < 8 and payload_size(blocks_of(c, red)) <= 20


def test_tight_budget_trades_primary_codebooks_for_protection() -> None:
    c_clean, red_clean = plan_speech(1100.0, 8, 4, 3, 0.02, 1.0)  # 11 bytes: 1 ToC + 7 tokens
    c_lossy, red_lossy = plan_speech(1100.0, 8, 4, 3, 0.4, 1.0)
    assert red_clean == () and c_clean == 7
    assert c_lossy < c_clean and red_lossy and red_lossy[0].codebooks >= 1


@pytest.mark.parametrize("max_bps, cb", [(1400.0, 8), (2062.5, 8), (2062.5, 16), (3000.0, 8), (4000.0, 16)])
@pytest.mark.parametrize("loss", [0.1, 0.2, 0.3])
def test_bursty_loss_moves_copies_farther(max_bps: float, cb: int, loss: float) -> None:
    def mean_distance(burst: float) -> float | None:
        _, red = plan_speech(max_bps, cb, 4, 3, loss, burst)
        n = sum(s.codebooks for s in red)
        return sum(s.distance * s.codebooks for s in red) / n if n else None

    independent = mean_distance(1.0)
    assert independent is not None
    bursty = [d for d in (mean_distance(b) for b in (2.0, 4.0, 8.0)) if d is not None]
    # Copies inside a burst die with their primary: they move out, or (long bursts on a tight
    # budget) are dropped for primary codebooks; they never move closer.
    assert all(d >= independent for d in bursty)
    assert not bursty or max(bursty) > independent


def test_default_controller_uniform_vs_bursty() -> None:
    uniform = warm(AdaptiveController(), LossReport(0.1, 1.11))
    bursty = warm(AdaptiveController(), LossReport(0.1, 4.0))
    # Independent loss: the nearest copy is worth most; bursts of 4 kill near copies.
    assert 1 in [s.distance for s in uniform.redundancy]
    assert [s.distance for s in bursty.redundancy] == [3]
    assert "copies" in bursty.reason and "burst 4" in bursty.reason


def test_min_speech_codebooks_respected_under_heavy_loss() -> None:
    for min_cb in (2, 4, 6):
        ctl = AdaptiveController(max_bps=1000.0, max_codebooks=8, min_speech_codebooks=min_cb)
        d = warm(ctl, LossReport(0.6, 2.0))
        assert d.speech and d.codebooks >= min_cb
        assert bits_per_second(d) <= 1000.0


def test_no_redundancy_when_distance_zero() -> None:
    d = warm(AdaptiveController(max_redundancy_distance=0), LossReport(0.3, 2.0))
    assert d.redundancy == () and d.codebooks == 8


# ---- voice activity ------------------------------------------------------------------------


def test_hangover_keeps_word_ends() -> None:
    ctl = AdaptiveController()
    for _ in range(20):
        ctl.decide(noise(-55.0), None)
    assert ctl.decide(SPEECH, None).speech
    tail = [ctl.decide(noise(-55.0), None) for _ in range(HANGOVER_FRAMES + 2)]
    assert all(d.speech and "hangover" in d.reason for d in tail[:HANGOVER_FRAMES])
    assert not any(d.speech for d in tail[HANGOVER_FRAMES:])


def test_noise_floor_adapts_to_a_louder_room() -> None:
    ctl = AdaptiveController()
    decisions = [ctl.decide(noise(-40.0), None) for _ in range(60)]
    assert not any(d.speech for d in decisions[-20:])  # learnt within a few seconds
    assert ctl.vad.floor_db == pytest.approx(-40.0, abs=1.0)
    assert ctl.decide(noise(-25.0), None).speech  # 15 dB above the room: speech
    assert ctl.decide(SPEECH, None).speech


def test_long_voiced_speech_does_not_raise_the_floor_much() -> None:
    ctl = AdaptiveController()
    for _ in range(10):
        ctl.decide(noise(-60.0), None)
    decisions = [ctl.decide(SPEECH, None) for _ in range(125)]  # 10 s without a pause
    assert all(d.speech for d in decisions)
    assert ctl.vad.floor_db < -50.0


def test_voicing_cue_lowers_the_margin() -> None:
    ctl = AdaptiveController()
    for _ in range(30):
        ctl.decide(noise(-50.0), None)
    weak_voiced = FrameFeatures(-44.0, 0.05, 0.05, 0.8, True)  # 6 dB above the floor
    weak_noise = noise(-44.0)
    assert ctl.decide(weak_voiced, None).speech
    fresh = AdaptiveController()
    for _ in range(30):
        fresh.decide(noise(-50.0), None)
    assert not fresh.decide(weak_noise, None).speech


def test_vad_on_real_speech(speech_file: Path) -> None:
    import av

    with av.open(str(speech_file)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=24_000)
        pcm = np.concatenate([o.to_ndarray()[0] for frame in container.decode(audio=0)
                              for o in resampler.resample(frame)]).astype(np.float32)
    rng = np.random.default_rng(0)
    pause = np.zeros(24_000 * 3, np.float32)
    x = np.concatenate([pause, pcm, pause])
    x += rng.normal(0, 10 ** (-50 / 20), x.size).astype(np.float32)  # a quiet room at -50 dBFS
    ctl = AdaptiveController()
    speech = np.array([ctl.decide(frame_features(x[i : i + 1920]), None).speech
                       for i in range(0, x.size - 1919, 1920)])
    lead, clip = len(pause) // 1920, len(pcm) // 1920
    assert speech[lead // 2 : lead].mean() == 0.0  # the room is learnt within 1.5 s
    assert speech[lead : lead + clip].mean() > 0.8
    assert speech[lead + clip + HANGOVER_FRAMES + 2 :].mean() == 0.0


# ---- loss smoothing and purity -------------------------------------------------------------


def test_smoothing_attacks_fast_and_releases_slowly() -> None:
    state = LossReport(0.0, 1.0)
    for _ in range(10):
        state = smooth_loss(state, LossReport(0.2, 3.0))
    assert state.fraction_lost > 0.19
    for _ in range(5):
        state = smooth_loss(state, LossReport(0.0, 1.0))
    assert state.fraction_lost > 0.15  # one good report does not drop protection
    for _ in range(300):
        state = smooth_loss(state, None)
    assert state.fraction_lost < 0.001 and state.mean_burst == pytest.approx(1.0, abs=0.01)


def test_one_noisy_report_does_not_flip_the_plan() -> None:
    ctl = AdaptiveController()
    steady = warm(ctl, LossReport(0.1, 1.1))
    spike = ctl.decide(SPEECH, LossReport(0.9, 1.1))
    assert spike.codebooks >= steady.codebooks - 1


def test_decisions_are_reproducible() -> None:
    rng = random.Random(4)
    inputs = [(rng.choice([SPEECH, FRICATIVE, QUIET]), LossReport(rng.random() * 0.4, rng.uniform(1, 6)))
              for _ in range(200)]
    a, b = AdaptiveController(), AdaptiveController()
    assert [a.decide(f, r) for f, r in inputs] == [b.decide(f, r) for f, r in inputs]
    a.reset()
    fresh = AdaptiveController()
    assert [a.decide(f, r) for f, r in inputs[:50]] == [fresh.decide(f, r) for f, r in inputs[:50]]
