"""netem impairment specs: one direction's impairment as data, rendered as `tc` arguments.

Theory of operation
-------------------
A :class:`NetemSpec` is one direction's impairment in the terms of
`tc qdisc ... netem` (iproute2): delay with jitter, correlation and
distribution, loss (uniform ``random``, Gilbert-Elliott ``gemodel``, 4-state
``state``), duplication, reordering, corruption, rate limit and queue limit.
:meth:`NetemSpec.tc_args` renders it with every default written out, so the
argument list means the same thing on every iproute2 version; the default
instance is a clean link, for which the lab installs no qdisc. The loss models
follow the kernel's ``sch_netem.c``, so :meth:`NetemSpec.expected_loss` states
what a measurement should see (:mod:`sip_agent.lab.markov`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from sip_agent.lab.markov import (
    Chain,
    LossExpectation,
    expectation,
    four_state_chain,
    ge_chain,
    loss_fraction_sd,
    mean_burst_sd,
)

__all__ = ["RandomLoss", "GilbertElliottLoss", "FourStateLoss", "LossModel", "NetemSpec",
           "LossExpectation", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")


def _fmt(x: float) -> str:
    """Plain decimal (never exponent notation, which older tc may reject)."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _pct(x: float) -> str:
    return _fmt(x) + "%"


@dataclass(frozen=True)
class RandomLoss:
    """Independent (uniform) loss: each packet lost with ``percent`` %."""

    percent: float
    correlation: float = 0.0

    def tc_args(self) -> list[str]:
        return ["loss", "random", _pct(self.percent), _pct(self.correlation)]

    def chain(self) -> Chain | None:
        if self.correlation:
            return None  # netem's correlated loss is not a Markov chain on a few states
        return [[1.0]], [self.percent / 100.0]


@dataclass(frozen=True)
class GilbertElliottLoss:
    """Gilbert-Elliott: p = P(good->bad), r = P(bad->good), loss 1-h in bad, 1-k in good (all %)."""

    p: float
    r: float = 100.0
    one_minus_h: float = 100.0
    one_minus_k: float = 0.0

    def tc_args(self) -> list[str]:
        return ["loss", "gemodel", _pct(self.p), _pct(self.r), _pct(self.one_minus_h),
                _pct(self.one_minus_k)]

    def chain(self) -> Chain | None:
        return ge_chain(self.p / 100, self.r / 100, self.one_minus_h / 100, self.one_minus_k / 100)


@dataclass(frozen=True)
class FourStateLoss:
    """netem's 4-state Markov loss (Salsano et al.): transition probabilities in %."""

    p13: float
    p31: float
    p32: float = 0.0
    p23: float = 100.0
    p14: float = 0.0

    def tc_args(self) -> list[str]:
        return ["loss", "state"] + [_pct(v) for v in (self.p13, self.p31, self.p32, self.p23,
                                                      self.p14)]

    def chain(self) -> Chain | None:
        return four_state_chain(self.p13 / 100, self.p31 / 100, self.p32 / 100, self.p23 / 100,
                                self.p14 / 100)


LossModel = Union[RandomLoss, GilbertElliottLoss, FourStateLoss]


@dataclass(frozen=True)
class NetemSpec:
    """One direction's netem impairment; the default instance is a clean link."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    delay_correlation: float = 0.0
    distribution: str | None = None
    loss: LossModel | None = None
    duplicate: float = 0.0
    duplicate_correlation: float = 0.0
    reorder: float = 0.0
    reorder_correlation: float = 0.0
    gap: int = 0
    corrupt: float = 0.0
    corrupt_correlation: float = 0.0
    rate_bps: int | None = None
    limit: int | None = None

    def is_clean(self) -> bool:
        """True when the spec impairs nothing (the lab then installs no qdisc at all)."""
        lossless = self.loss is None or (isinstance(self.loss, RandomLoss) and not self.loss.percent)
        return (lossless and not (self.delay_ms or self.jitter_ms or self.duplicate
                                  or self.reorder or self.corrupt) and self.rate_bps is None)

    def tc_args(self) -> list[str]:
        """Arguments after ``tc qdisc replace dev X root netem`` (empty for a clean spec)."""
        if self.is_clean():
            return []
        args: list[str] = []
        if self.limit is not None:
            args += ["limit", str(self.limit)]
        if self.delay_ms or self.jitter_ms:
            args += ["delay", _fmt(self.delay_ms) + "ms"]
            if self.jitter_ms:
                args += [_fmt(self.jitter_ms) + "ms", _pct(self.delay_correlation)]
                if self.distribution:
                    args += ["distribution", self.distribution]
        if self.loss is not None:
            args += self.loss.tc_args()
        if self.duplicate:
            args += ["duplicate", _pct(self.duplicate), _pct(self.duplicate_correlation)]
        if self.reorder:
            args += ["reorder", _pct(self.reorder), _pct(self.reorder_correlation)]
            if self.gap:
                args += ["gap", str(self.gap)]
        if self.corrupt:
            args += ["corrupt", _pct(self.corrupt), _pct(self.corrupt_correlation)]
        if self.rate_bps is not None:
            args += ["rate", f"{self.rate_bps}bit"]
        return args

    def __str__(self) -> str:
        return " ".join(self.tc_args()) or "clean (no qdisc)"

    def loss_chain(self) -> Chain | None:
        """The loss model as a Markov chain (None for correlated uniform loss)."""
        return ([[1.0]], [0.0]) if self.loss is None else self.loss.chain()

    def expected_loss(self) -> LossExpectation | None:
        """Stationary loss rate and mean loss-burst length of the loss model, if it has one."""
        chain = self.loss_chain()
        return None if chain is None else expectation(chain)

    def loss_fraction_sd(self, packets: int) -> float | None:
        """Standard deviation of the loss fraction a train of ``packets`` should show."""
        chain = self.loss_chain()
        return None if chain is None else loss_fraction_sd(chain, packets)

    def mean_burst_sd(self, packets: int) -> float | None:
        """Standard deviation of the mean loss-burst length a train of ``packets`` should show."""
        chain = self.loss_chain()
        return None if chain is None else mean_burst_sd(chain, packets)
