"""lossgen (Opus 1.5's learned real-trace loss) as a channel: rates, bursts, seeds, specs."""

from __future__ import annotations

import numpy as np
import pytest

from largesc_codec.sim.channel import LossModel, LossStats, UniformLoss, parse_channel
from largesc_codec.sim.lossgen import LossGen

PACKETS = 20_000


def _stats(x: np.ndarray) -> tuple[float, float]:
    st = LossStats()
    for v in x:
        st.update(bool(v))
    r = st.report()
    return r.fraction_lost, r.mean_burst


@pytest.mark.parametrize("target", [0.05, 0.10, 0.20])
def test_loss_rate_and_bursts_match_the_target(target: float) -> None:
    # Measured 5.7-6.0 / 10.4-10.7 / 20.3-20.8 % over seeds 0-2: within 1.5 points of the target.
    for seed in (0, 1, 2):
        rate, burst = _stats(parse_channel(f"lossgen:{target:g}", seed=seed).losses(PACKETS))
        assert abs(rate - target) <= 0.015, (target, seed, rate)
        # Clustered like real traces: longer bursts than uniform loss at the same rate.
        uniform_burst = _stats(UniformLoss(target, seed).losses(PACKETS))[1]
        assert 1.4 <= burst <= 2.5 and burst > uniform_burst + 0.3, (target, seed, burst, uniform_burst)


def test_seeded_and_repeatable() -> None:
    a = parse_channel("lossgen:10%", seed=4).losses(3000)
    b = parse_channel("lossgen:0.1", seed=4).losses(3000)
    c = parse_channel("lossgen:0.1", seed=5).losses(3000)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_model_interface_and_spec() -> None:
    m = parse_channel("lossgen:0.2", seed=1)
    assert isinstance(m, LossGen) and isinstance(m, LossModel)
    assert m.expected_loss_rate == 0.2 and 1.0 < m.expected_mean_burst < 3.0
    assert parse_channel(m.spec).expected_loss_rate == 0.2
    assert not parse_channel("lossgen:0", seed=1).losses(500).any()


@pytest.mark.parametrize("spec", ["lossgen", "lossgen:", "lossgen:2", "lossgen:0.1,0.2", "lossgen:-5%"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_channel(spec)


def test_eval_profiles_know_lossgen() -> None:
    from largesc_codec.evaluation.losses import lossgen_losses, parse_profile

    prof = parse_profile("lossgen:10%")
    assert prof.family == "lossgen" and prof.loss_rate == pytest.approx(0.1) and prof.label == "lossgen 10%"
    assert [p.spec for p in lossgen_losses()] == ["lossgen:0.05", "lossgen:0.1", "lossgen:0.2"]


def test_finetune_regimes_accept_lossgen() -> None:
    from largesc_codec.train.data import check_regime, loss_mask

    check_regime("lossgen:0.2")  # `largesc finetune --channel lossgen:0.2`
    mask = loss_mask(2000, "lossgen:0.2", seed=0)
    assert mask.shape == (2000,) and 0.1 < mask.mean() < 0.3
