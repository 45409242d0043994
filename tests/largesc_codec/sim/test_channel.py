"""Loss models: measured statistics match the closed forms, seeding, netem semantics, spec parsing.

Statistical bounds (n = 200 000 packets, 5 sigma, so a correct model fails with
probability < 1e-6 for a given seed; the seeds are fixed anyway):

* Loss fraction. With the state chain s_n (stationary pi, second eigenvalue
  lam = 1 - p - r) and per-state loss probability e_s, the loss indicator is
  e(s_n) + independent noise, so
      n Var(mean) = sum_s pi_s e_s (1 - e_s) + (e_B - e_G)^2 pi_B pi_G (1 + lam) / (1 - lam).
  Uniform loss is the case lam = 0.
* Mean burst. For uniform loss and the simple Gilbert model (loss exactly in the
  bad state) the runs of losses are i.i.d. geometric: with end probability q
  (1 - p uniform, r Gilbert) a run has mean 1/q and variance (1 - q) / q^2, and
  about n * P(run start) runs are seen. For the general model (losses in both
  states) runs are not independent, so the bound comes from 20 batch means.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from largesc_codec.sim.channel import GilbertElliott, LossStats, NoLoss, UniformLoss, parse_channel
from largesc_codec.types import LossReport

N = 200_000
SIGMAS = 5.0


def runs(flags: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in ``flags``."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


def loss_sigma(model: UniformLoss | GilbertElliott, n: int) -> float:
    if isinstance(model, UniformLoss):
        return math.sqrt(model.p * (1 - model.p) / n)
    pb = model.p / (model.p + model.r)
    pi, e = (1 - pb, pb), (model.good_loss, model.bad_loss)
    lam = 1 - model.p - model.r
    var = sum(pi[s] * e[s] * (1 - e[s]) for s in (0, 1))
    var += (e[1] - e[0]) ** 2 * pb * (1 - pb) * (1 + lam) / (1 - lam)
    return math.sqrt(var / n)


@pytest.mark.parametrize(
    "spec",
    ["uniform:0.1", "uniform:0.3", "uniform:2%", "ge:0.0278,0.25", "ge:0.05,0.5", "ge:0.0123457,0.125", "ge:0.1"],
)
def test_measured_rate_and_burst_match_closed_form(spec: str) -> None:
    model = parse_channel(spec, seed=11)
    assert not isinstance(model, NoLoss)
    flags = model.losses(N)
    assert abs(flags.mean() - model.expected_loss_rate) < SIGMAS * loss_sigma(model, N)
    q = 1 - model.p if isinstance(model, UniformLoss) else model.r  # run end probability
    lengths = runs(flags)
    n_runs_expected = N * model.expected_loss_rate / model.expected_mean_burst
    assert abs(len(lengths) - n_runs_expected) < 0.05 * n_runs_expected + 50
    burst_sigma = math.sqrt((1 - q) / q**2 / len(lengths))
    assert abs(lengths.mean() - model.expected_mean_burst) < SIGMAS * burst_sigma
    report = LossStats()
    for f in flags[:20_000]:
        report.update(bool(f))
    r = report.report()
    assert r.fraction_lost == pytest.approx(flags[:20_000].mean())
    assert r.mean_burst == pytest.approx(runs(flags[:20_000]).mean())


@pytest.mark.parametrize("spec", ["ge:5%,50%,80%,1%", "ge:0.02,0.2,0.6,0.05"])
def test_general_gilbert_elliott_matches_closed_form(spec: str) -> None:
    model = parse_channel(spec, seed=5)
    assert isinstance(model, GilbertElliott)
    flags = model.losses(N)
    assert abs(flags.mean() - model.expected_loss_rate) < SIGMAS * loss_sigma(model, N)
    batches = flags.reshape(20, -1)
    means = np.array([runs(b).mean() for b in batches])
    overall = runs(flags).mean()
    assert abs(overall - model.expected_mean_burst) < SIGMAS * means.std(ddof=1) / math.sqrt(20) + 0.01


def test_closed_forms() -> None:
    assert UniformLoss(0.2).expected_mean_burst == pytest.approx(1.25)
    ge = GilbertElliott(0.05, 0.5)
    assert ge.expected_loss_rate == pytest.approx(1 / 11)
    assert ge.expected_mean_burst == pytest.approx(2.0)
    general = GilbertElliott(0.05, 0.5, bad_loss=0.8, good_loss=0.01)
    assert general.expected_loss_rate == pytest.approx(10 / 11 * 0.01 + 1 / 11 * 0.8)
    # tc's default r = 1 - p makes the chain memoryless: uniform loss p.
    assert GilbertElliott(0.1).expected_mean_burst == pytest.approx(UniformLoss(0.1).expected_mean_burst)
    assert UniformLoss(0.0).expected_mean_burst == 1.0 and UniformLoss(1.0).expected_mean_burst == math.inf
    assert GilbertElliott(0.0, 0.5).expected_loss_rate == 0.0
    assert GilbertElliott(0.1, 0.0).expected_loss_rate == 1.0


def test_netem_order_transition_then_loss_of_the_old_state() -> None:
    # p = r = 1 flips the state every packet. netem starts good, draws the transition,
    # then decides the loss with the state the packet was sent in: received, lost, ...
    flags = GilbertElliott(1.0, 1.0, bad_loss=1.0, good_loss=0.0, seed=3).losses(10)
    assert flags.tolist() == [False, True] * 5


def test_degenerate_models() -> None:
    assert not UniformLoss(0.0, seed=1).losses(1000).any()
    assert UniformLoss(1.0, seed=1).losses(1000).all()
    assert not GilbertElliott(0.0, 0.3, seed=1).losses(1000).any()
    flags = GilbertElliott(0.5, 0.0, seed=1).losses(1000)  # bad state absorbs
    assert flags[20:].all()
    assert not NoLoss().losses(100).any()


@pytest.mark.parametrize("spec", ["uniform:0.2", "ge:0.05,0.3", "ge:0.05,0.3,0.9,0.02"])
def test_same_seed_same_pattern_other_seed_other_pattern(spec: str) -> None:
    a = parse_channel(spec, seed=7).losses(5000)
    b = parse_channel(spec, seed=7).losses(5000)
    c = parse_channel(spec, seed=8).losses(5000)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "spec, kind, params",
    [
        ("uniform:0.1", UniformLoss, (0.1,)),
        ("uniform:10%", UniformLoss, (0.1,)),
        (" Uniform : 0.25 ", UniformLoss, (0.25,)),
        ("uniform:0", UniformLoss, (0.0,)),
        ("uniform:100%", UniformLoss, (1.0,)),
        ("ge:0.05,0.5", GilbertElliott, (0.05, 0.5, 1.0, 0.0)),
        ("ge:5%,50%", GilbertElliott, (0.05, 0.5, 1.0, 0.0)),
        ("ge:0.1", GilbertElliott, (0.1, 0.9, 1.0, 0.0)),
        ("ge:0.05,0.5,0.8", GilbertElliott, (0.05, 0.5, 0.8, 0.0)),
        ("ge:5%,50%,80%,1%", GilbertElliott, (0.05, 0.5, 0.8, 0.01)),
        ("gemodel:0.01,0.3,1,0", GilbertElliott, (0.01, 0.3, 1.0, 0.0)),
        ("none", NoLoss, ()),
    ],
)
def test_parse_valid_specs(spec: str, kind: type, params: tuple[float, ...]) -> None:
    model = parse_channel(spec, seed=1)
    assert type(model) is kind
    if isinstance(model, UniformLoss):
        assert model.p == pytest.approx(params[0])
    elif isinstance(model, GilbertElliott):
        got = (model.p, model.r, model.bad_loss, model.good_loss)
        assert got == pytest.approx(params)
        assert parse_channel(model.spec).expected_loss_rate == pytest.approx(model.expected_loss_rate)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "bad channel spec"),
        ("uniform", "bad channel spec"),
        ("uniform:", "bad channel spec"),
        ("uniform:abc", "bad number"),
        ("uniform:10", "above 1"),
        ("uniform:150%", "outside 0..1"),
        ("uniform:-0.1", "outside 0..1"),
        ("uniform:nan", "bad number"),
        ("uniform:inf", "bad number"),
        ("uniform:0.1,0.2", "bad channel spec"),
        ("ge:", "bad channel spec"),
        ("ge:0.1,0.2,0.3,0.4,0.5", "bad channel spec"),
        ("ge:0.1,,0.5", "bad number"),
        ("gauss:0.1", "bad channel spec"),
        ("none:0.1", "bad channel spec"),
    ],
)
def test_parse_malformed_specs(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        parse_channel(spec)
    msg = str(info.value)
    assert "uniform:P" in msg and "ge:P" in msg  # the usage text tells what to write


@pytest.mark.parametrize(
    "make",
    [
        lambda: parse_channel(0.1),  # type: ignore[arg-type]
        lambda: UniformLoss(1.5),
        lambda: UniformLoss(float("nan")),
        lambda: UniformLoss(0.1, seed="x"),  # type: ignore[arg-type]
        lambda: GilbertElliott(0.1, -0.2),
        lambda: GilbertElliott(0.1, 0.5, bad_loss=2.0),
        lambda: UniformLoss(0.1).losses(-1),
        lambda: LossStats(window=0.5),
        lambda: LossStats().update(1),  # type: ignore[arg-type]
        lambda: LossStats().update_run(True, -2),
    ],
)
def test_bad_arguments_raise(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_loss_stats_exact_small_sequence() -> None:
    stats = LossStats()
    assert stats.report() == LossReport(0.0, 1.0)
    for lost in [False, True, True, False, True, False, False]:
        stats.update(lost)
    assert stats.report() == LossReport(pytest.approx(3 / 7), pytest.approx(1.5))  # type: ignore[arg-type]
    stats.update_run(True, 4)  # a gap of four: one more run of four
    assert stats.report().fraction_lost == pytest.approx(7 / 11)
    assert stats.report().mean_burst == pytest.approx(7 / 3)
    stats.reset()
    stats.update_run(False, 10)
    assert stats.report() == LossReport(0.0, 1.0)


def test_loss_stats_window_tracks_a_change() -> None:
    quiet, lossy = UniformLoss(0.0, seed=1), GilbertElliott(0.0278, 0.25, seed=2)  # then 10 %, bursts of 4
    windowed, total = LossStats(window=500), LossStats()
    for model in (quiet, lossy):
        for lost in model.losses(4000):
            windowed.update(bool(lost))
            total.update(bool(lost))
    assert total.report().fraction_lost == pytest.approx(0.05, abs=0.02)  # diluted by the quiet half
    assert windowed.report().fraction_lost == pytest.approx(0.10, abs=0.04)
    assert windowed.report().mean_burst == pytest.approx(4.0, abs=1.5)
