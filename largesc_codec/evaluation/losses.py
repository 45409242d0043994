"""Loss profiles of the evaluation and the bridge to ``largesc_codec.channel``.

A :class:`LossProfile` is a channel spec string understood by
``largesc_codec.channel.parse_channel`` plus the numbers reports need
(stationary loss rate, mean burst length in packets).

Gilbert-Elliott (two-state Markov, loss only in the bad state): p = P(good ->
bad), r = P(bad -> good). Stationary loss = p / (p + r); mean burst = 1 / r
packets. For a target loss L and mean burst B: r = 1 / B, p = r * L / (1 - L).
The default GE profiles all have 10 % stationary loss with mean bursts of 2, 4
and 8 packets, so they compare with ``uniform:0.1`` (mean burst 1 / 0.9 = 1.11).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

UNIFORM_RATES = (0.0, 0.05, 0.10, 0.20, 0.30, 0.40)
GE_BURSTS = (2, 4, 8)
GE_LOSS = 0.10


@dataclass(frozen=True)
class LossProfile:
    """``spec`` for parse_channel; ``family`` "uniform" or "ge"; rates per packet."""

    spec: str
    family: str
    loss_rate: float
    mean_burst: float

    @property
    def label(self) -> str:
        if self.family == "ge":
            return f"GE {100 * self.loss_rate:g}% burst {self.mean_burst:g}"
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


def parse_profile(text: str) -> LossProfile:
    """``uniform:0.1`` or ``ge:p,r`` (loss only in the bad state) -> LossProfile."""
    family, _, args = text.partition(":")
    try:
        values = [float(v) for v in args.split(",")] if args else []
    except ValueError:
        values = []
    if family == "uniform" and len(values) == 1:
        return uniform(values[0])
    if family == "ge" and len(values) == 2 and values[1] > 0:
        p, r = values
        return LossProfile(text, "ge", p / (p + r), 1.0 / r)
    raise ValueError(f"bad loss profile {text!r}: use 'uniform:RATE' or 'ge:P,R' (e.g. ge:0.0278,0.25)")


def _channel_module() -> Any:
    try:
        return importlib.import_module("largesc_codec.channel")
    except ImportError as exc:
        raise ImportError("largesc_codec.channel (the seeded loss models) is missing "
                          "from this installation") from exc


class EvalChannel:
    """A seeded loss model plus the profile it was built from; what codec callables get.

    ``lost()`` draws the next packet's fate (True = dropped) from the
    ``largesc_codec.channel`` model; ``profile`` (spec, nominal loss rate, mean
    burst) is there for senders that are told the expected loss, as Opus is.
    """

    def __init__(self, profile: LossProfile, seed: int) -> None:
        self.profile = profile
        self.seed = seed
        self.model = _channel_module().parse_channel(profile.spec, seed=seed)

    @property
    def loss_rate(self) -> float:
        return self.profile.loss_rate

    def lost(self) -> bool:
        return bool(self.model.lost())

    def losses(self, n_packets: int) -> np.ndarray:
        """The next ``n_packets`` decisions -> bool array (n_packets,), True = lost."""
        return np.array([self.lost() for _ in range(n_packets)], dtype=bool)


def make_channel(profile: LossProfile | str, seed: int) -> EvalChannel:
    """A fresh seeded channel for ``profile`` (a LossProfile or its spec string)."""
    return EvalChannel(parse_profile(profile) if isinstance(profile, str) else profile, seed)


def channel_losses(channel: Any, n_packets: int) -> np.ndarray:
    """Next ``n_packets`` decisions of any object with ``lost()`` -> bool (n_packets,)."""
    return np.array([bool(channel.lost()) for _ in range(n_packets)], dtype=bool)


def channel_loss_rate(channel: Any) -> float:
    """Nominal loss rate of an :class:`EvalChannel` (or anything with ``loss_rate``)."""
    rate = getattr(channel, "loss_rate", None)
    if rate is None:
        raise TypeError(f"{type(channel).__name__} has no loss_rate: pass an EvalChannel "
                        "(largesc_codec.evaluation.losses.make_channel)")
    rate = float(rate)
    return 0.0 if math.isnan(rate) else rate
