"""Pure tests: netem spec parsing/rendering, profiles, loss-model expectations, probe analysis."""

from __future__ import annotations

import math
import random

import pytest

from sip_agent.lab.markov import (
    four_state_chain,
    four_state_expectation,
    ge_chain,
    ge_expectation,
    loss_fraction_sd,
    mean_burst_sd,
    stationary,
)
from sip_agent.lab.probe import Arrival, analyze
from sip_agent.lab.profiles import (
    PROFILES,
    FourStateLoss,
    GilbertElliottLoss,
    NetemSpec,
    RandomLoss,
    parse_netem,
    resolve_profile,
)
from tests.sip_agent.lab.conftest import gilbert_bounds, loss_bounds


def test_full_spec_round_trips_through_tc_args() -> None:
    spec = parse_netem("netem limit 50 delay 40ms 10ms 25% distribution pareto loss 5% 25% "
                       "duplicate 1 reorder 2% gap 5 corrupt 0.1% rate 1mbps")
    assert spec.tc_args() == [
        "limit", "50", "delay", "40ms", "10ms", "25%", "distribution", "pareto",
        "loss", "random", "5%", "25%", "duplicate", "1%", "0%", "reorder", "2%", "0%", "gap", "5",
        "corrupt", "0.1%", "0%", "rate", "8000000bit"]
    assert parse_netem(" ".join(spec.tc_args())) == spec


@pytest.mark.parametrize("text, expected", [
    ("loss gemodel 5%", GilbertElliottLoss(5.0, 100.0, 100.0, 0.0)),
    ("loss gemodel 5% 40% 90% 1%", GilbertElliottLoss(5.0, 40.0, 90.0, 1.0)),
    ("loss state 2%", FourStateLoss(2.0, 98.0, 0.0, 100.0, 0.0)),
    ("loss state 1% 30% 10% 40% 0.5%", FourStateLoss(1.0, 30.0, 10.0, 40.0, 0.5)),
    ("drop 3", RandomLoss(3.0)),
])
def test_loss_models_take_tc_defaults(text: str, expected: object) -> None:
    assert parse_netem(text).loss == expected


@pytest.mark.parametrize("text", ["delay 500us", "delay 0.5ms", "delay .5msec"])
def test_time_units(text: str) -> None:
    assert parse_netem(text).delay_ms == pytest.approx(0.5)


@pytest.mark.parametrize("bad, words", [
    ("delay 10", "unit"),
    ("loss 120%", "0..100"),
    ("loss gemodel", "expected after"),
    ("reorder 5%", "needs a delay"),
    ("frobnicate 1", "unknown keyword 'frobnicate'"),
    ("delay 10ms delay 5ms", "given twice"),
    ("rate 5", "64kbit"),
    ("distribution normal", "jitter"),
    ("delay 10ms 2ms distribution lognormal", "unknown distribution"),
    ("loss state 60% 10% 10% 10% 50%", "sum"),
    ("gap 3", "reorder"),
])
def test_bad_specs_raise_clear_value_errors(bad: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_netem(bad)
    assert words in str(info.value) and "Accepted:" in str(info.value)


def test_clean_specs_install_nothing() -> None:
    for text in ("", "clean", "netem", "loss 0%"):
        assert parse_netem(text).is_clean() and parse_netem(text).tc_args() == []
    assert str(NetemSpec()) == "clean (no qdisc)"


def test_profiles_resolve_by_name_or_raw_spec() -> None:
    assert set(PROFILES) >= {"clean", "wifi-bursty", "cellular-edge", "satellite",
                             "lossy-uniform-10"}
    assert resolve_profile("satellite").forward.delay_ms == 300.0
    custom = resolve_profile("delay 20ms loss 1%")
    assert custom.forward == custom.backward and custom.forward.delay_ms == 20.0
    with pytest.raises(ValueError, match="named profile"):
        resolve_profile("wifi-bursti")
    for profile in PROFILES.values():  # every registered profile renders and re-parses
        assert parse_netem(" ".join(profile.forward.tc_args())) == profile.forward


def test_stationary_distribution_solves_a_chain() -> None:
    pi = stationary([[0.9, 0.1], [0.5, 0.5]])
    assert pi == pytest.approx([5 / 6, 1 / 6])


def _simulate_ge(p: float, r: float, h1: float, k1: float, n: int, rng: random.Random) -> list[bool]:
    """The kernel's loss_gilb_ell(): move with one draw, lose by the old state with another."""
    bad, lost = False, []
    for _ in range(n):
        move = rng.random() < (r if bad else p)
        lost.append(rng.random() < (h1 if bad else k1))
        bad = bad != move
    return lost


def _simulate_4state(p13: float, p31: float, p32: float, p23: float, p14: float, n: int,
                     rng: random.Random) -> list[bool]:
    """The kernel's loss_4state(): one draw picks the next state; states 3 and 4 lose."""
    state, lost = 1, []
    for _ in range(n):
        u = rng.random()
        if state == 1:
            state = 4 if u < p14 else 3 if u < p14 + p13 else 1
        elif state == 2:
            state = 3 if u < p23 else 2
        elif state == 3:
            state = 2 if u < p32 else 1 if u < p32 + p31 else 3
        else:
            state = 1
        lost.append(state in (3, 4))
    return lost


def _stats(lost: list[bool]) -> tuple[float, float]:
    starts = sum(1 for a, b in zip([False] + lost, lost) if b and not a)
    return sum(lost) / len(lost), sum(lost) / starts


def test_markov_expectations_match_seeded_simulation_of_the_kernel_chains() -> None:
    rng = random.Random(7)
    want = ge_expectation(0.02, 0.4, 0.8, 0.002)
    rate, burst = _stats(_simulate_ge(0.02, 0.4, 0.8, 0.002, 300_000, rng))
    assert rate == pytest.approx(want.loss_rate, rel=0.05)
    assert burst == pytest.approx(want.mean_burst, rel=0.05)
    want = four_state_expectation(0.01, 0.3, 0.1, 0.4, 0.005)
    rate, burst = _stats(_simulate_4state(0.01, 0.3, 0.1, 0.4, 0.005, 300_000, rng))
    assert rate == pytest.approx(want.loss_rate, rel=0.05)
    assert burst == pytest.approx(want.mean_burst, rel=0.05)


def test_simple_gilbert_and_uniform_have_textbook_figures() -> None:
    ge = parse_netem("loss gemodel 5% 40%").expected_loss()
    assert ge is not None and ge.loss_rate == pytest.approx(0.05 / 0.45)
    assert ge.mean_burst == pytest.approx(2.5)
    uni = parse_netem("loss 10%").expected_loss()
    assert uni is not None and uni.mean_burst == pytest.approx(1 / 0.9)
    assert parse_netem("loss 10% 50%").expected_loss() is None  # correlated: no closed form


def test_generic_spread_equals_the_gilbert_closed_form() -> None:
    for text, p, r in (("loss gemodel 5% 40%", 0.05, 0.40), ("loss 10%", 0.10, 0.90)):
        generic = loss_bounds(parse_netem(text), 6000)
        closed = gilbert_bounds(p, r, 6000)
        for (a, b), (c, d) in zip(generic, closed):
            assert a == pytest.approx(c, rel=1e-6) and b == pytest.approx(d, rel=1e-6)


@pytest.mark.parametrize("chain, simulate", [
    (ge_chain(0.02, 0.4, 0.8, 0.002),
     lambda rng, n: _simulate_ge(0.02, 0.4, 0.8, 0.002, n, rng)),
    (four_state_chain(0.01, 0.3, 0.1, 0.4, 0.005),
     lambda rng, n: _simulate_4state(0.01, 0.3, 0.1, 0.4, 0.005, n, rng)),
])
def test_derived_spreads_match_seeded_replicates(chain: object, simulate: object) -> None:
    """The normal-limit sd of loss fraction and mean burst vs 200 simulated trains of 4000."""
    rng = random.Random(11)
    runs = [_stats(simulate(rng, 4000)) for _ in range(200)]  # type: ignore[operator]

    def sd(values: list[float]) -> float:
        m = sum(values) / len(values)
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))

    # 200 replicates estimate an sd to about +-5 % (1 sigma); allow 20 %.
    assert sd([r[0] for r in runs]) == pytest.approx(loss_fraction_sd(chain, 4000), rel=0.2)  # type: ignore[arg-type]
    assert sd([r[1] for r in runs]) == pytest.approx(mean_burst_sd(chain, 4000), rel=0.2)  # type: ignore[arg-type]


def test_analyze_counts_bursts_duplicates_reordering_and_delay() -> None:
    ms = 1_000_000
    # seq 2,3 lost (one burst of 2), seq 6 lost at the end; seq 5 arrives before 4; 1 twice.
    order = [0, 1, 1, 5, 4]
    arrivals = [Arrival(s, s * 10 * ms, s * 10 * ms + (20 + s) * ms, intact=(s != 4))
                for s in order]
    res = analyze(7, arrivals)
    assert (res.sent, res.received, res.lost) == (7, 4, 3)
    assert (res.bursts, res.max_burst) == (2, 2) and res.mean_burst == pytest.approx(1.5)
    assert (res.duplicates, res.reordered, res.corrupted) == (1, 1, 1)
    assert res.delay_min_ms == pytest.approx(20.0)
    assert res.delay_mean_ms == pytest.approx((20 + 21 + 25 + 24) / 4)
    assert res.span_ms == pytest.approx(50 + 25)  # seq 0 sent at 0, seq 5 arrived at 75 ms
    with pytest.raises(ValueError, match="outside the train"):
        analyze(3, [Arrival(3, 0, 1)])
