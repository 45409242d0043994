"""Loss profiles of the evaluation and the bridge to ``largesc_codec.sim.channel``.

A :class:`LossProfile` is a channel spec string understood by
``largesc_codec.sim.channel.parse_channel`` plus the numbers reports need
(stationary loss rate, mean burst length in packets). Channels themselves are
the seeded models of ``largesc_codec.sim.channel``, so every condition (Opus,
LargeSC) draws its losses from the same code.

Gilbert-Elliott (netem ``gemodel`` order, here with loss only in the bad
state): p = P(good -> bad), r = P(bad -> good). Stationary loss = p / (p + r); mean burst = 1 / r
packets. For a target loss L and mean burst B: r = 1 / B, p = r * L / (1 - L).
The default GE profiles all have 10 % stationary loss with mean bursts of 2, 4
and 8 packets, so they compare with ``uniform:0.1`` (mean burst 1 / 0.9 = 1.11).

``lossgen:P`` is Opus 1.5's loss generator learned from real call traces
(``largesc_codec.sim.lossgen``; needs the set-up's libopus 1.5.2 build):
``lossgen_losses()`` gives the 5 / 10 / 20 % rows. They are not in
``default_losses`` (each profile adds a run per condition, clip and seed, and
the paper table adds them itself); pass ``--loss lossgen:0.1`` to get one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

UNIFORM_RATES = (0.0, 0.05, 0.10, 0.20, 0.30, 0.40)
GE_BURSTS = (2, 4, 8)
GE_LOSS = 0.10
LOSSGEN_RATES = (0.05, 0.10, 0.20)


@dataclass(frozen=True)
class LossProfile:
    """``spec`` for parse_channel; ``family`` "uniform", "ge" or "lossgen"; rates per packet."""

    spec: str
    family: str
    loss_rate: float
    mean_burst: float

    @property
    def label(self) -> str:
        if self.family == "ge":
            return f"GE {100 * self.loss_rate:g}% burst {self.mean_burst:g}"
        if self.family == "lossgen":
            return f"lossgen {100 * self.loss_rate:g}%"
        return f"uniform {100 * self.loss_rate:g}%"


def uniform(rate: float) -> LossProfile:
    """Independent loss with probability ``rate`` per packet."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"uniform loss rate {rate} must be in [0, 1)")
    burst = 1.0 / (1.0 - rate)
    return LossProfile(f"uniform:{rate:g}", "uniform", rate, burst)


def gilbert_elliott(loss_rate: float, mean_burst: float) -> LossProfile:
    """GE profile with the given stationary loss and mean burst length (packets)."""
    if not 0.0 < loss_rate < 1.0 or mean_burst < 1.0:
        raise ValueError(f"GE needs 0 < loss < 1 and mean burst >= 1, got {loss_rate}, {mean_burst}")
    r = 1.0 / mean_burst
    p = r * loss_rate / (1.0 - loss_rate)
    if p > 1.0:
        raise ValueError(f"GE loss {loss_rate} with burst {mean_burst} needs p = {p:.3f} > 1")
    return LossProfile(f"ge:{p:.6g},{r:.6g}", "ge", loss_rate, mean_burst)


def default_losses() -> list[LossProfile]:
    """uniform 0/5/10/20/30/40 % and GE 10 % with mean bursts of 2, 4, 8 packets."""
    return [uniform(r) for r in UNIFORM_RATES] + [gilbert_elliott(GE_LOSS, b) for b in GE_BURSTS]


def lossgen(rate: float) -> LossProfile:
    """lossgen (real-trace) loss at target ``rate``; OSError if the 1.5.2 build is missing."""
    return parse_profile(f"lossgen:{rate:g}")


def lossgen_losses() -> list[LossProfile]:
    """lossgen at 5, 10 and 20 % (OSError if the 1.5.2 build is missing)."""
    return [lossgen(r) for r in LOSSGEN_RATES]


def parse_profile(text: str) -> LossProfile:
    """Any ``largesc_codec.sim.channel.parse_channel`` spec -> LossProfile.

    Loss rate and mean burst are the model's own stationary values
    (``expected_loss_rate``, ``expected_mean_burst``); ``none`` is uniform 0.
    """
    from largesc_codec.sim.lossgen import LossGen  # the class only: no library loads here

    model = _channel_module().parse_channel(text, seed=0)
    family = ("ge" if isinstance(model, _channel_module().GilbertElliott)
              else "lossgen" if isinstance(model, LossGen) else "uniform")
    return LossProfile(text, family, float(model.expected_loss_rate), float(model.expected_mean_burst))


def _channel_module() -> Any:
    from largesc_codec.sim import channel  # pure and light; imported on first use only

    return channel


def make_channel(profile: LossProfile | str, seed: int) -> Any:
    """A fresh seeded loss model (``largesc_codec.sim.channel``) for ``profile`` or a spec string.

    The model has ``lost()`` (next packet's fate, True = dropped), ``losses(n)``
    (bool array (n,)) and ``expected_loss_rate`` / ``expected_mean_burst``.
    """
    spec = profile.spec if isinstance(profile, LossProfile) else profile
    return _channel_module().parse_channel(spec, seed=seed)


def channel_losses(channel: Any, n_packets: int) -> npt.NDArray[np.bool_]:
    """Next ``n_packets`` decisions of any object with ``lost()`` -> bool (n_packets,)."""
    return np.array([bool(channel.lost()) for _ in range(n_packets)], dtype=bool)


def channel_loss_rate(channel: Any) -> float:
    """Nominal (stationary) loss rate per packet of a ``largesc_codec.sim.channel`` model."""
    if not isinstance(channel, _channel_module().LossModel):
        raise TypeError(f"{type(channel).__name__} is not a loss model (no expected_loss_rate): pass one "
                        "from largesc_codec.sim.channel.parse_channel")
    return float(channel.expected_loss_rate)
