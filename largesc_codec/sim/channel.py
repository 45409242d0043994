"""Seeded in-process packet-loss models and loss statistics (sans-IO).

Models draw one fate per packet from their own ``random.Random(seed)``, so a
(spec, seed) pair always gives the same loss pattern; no clock, no I/O.

* ``UniformLoss(p)``: every packet is lost independently with probability p.
  Loss rate p, mean loss burst 1 / (1 - p).
* ``GilbertElliott(p, r, bad_loss, good_loss)``: the two-state model of Linux
  netem's ``loss gemodel p [r [1-h [1-k]]]``, with the same four numbers in the
  same order: p = P(good -> bad), r = P(bad -> good), ``bad_loss`` = 1-h = loss
  probability in the bad state, ``good_loss`` = 1-k = loss probability in the good
  state. Defaults as in tc: r = 1 - p, bad_loss = 1, good_loss = 0 (with only p
  this is uniform loss p). Per packet, as the kernel does (sch_netem.c,
  ``loss_gilb_ell``): start in the good state; draw the state transition, then
  decide the loss with the probability of the state the packet was sent in.

* ``LossGen(p)`` (``largesc_codec.sim.lossgen``): Opus 1.5's lossgen, a GRU
  trained on real call traces, one step per packet at target rate p. Measured
  over 20 000 packets (3 seeds): 5 / 10 / 20 % targets give 5.7-6.0 /
  10.4-10.7 / 20.3-20.8 % loss, mean bursts of 1.6-2.0 packets (uniform at the
  same rates: 1.05-1.25; the GE rows: 2 / 4 / 8) but a heavy tail that neither
  has: 95 % of bursts are at most 3-6 packets, the longest 29-85. It needs the
  1.5.2 build (``make setup``); the other models are pure Python.

Spec strings (``parse_channel``), for command lines and profiles:

    none                  no loss
    uniform:P             e.g. uniform:0.1 or uniform:10%
    ge:P[,R[,1-H[,1-K]]]  e.g. ge:0.05,0.5 or ge:5%,50%,100%,0
    lossgen:P             e.g. lossgen:0.1 or lossgen:10%

Each number is a fraction in 0..1, or a percentage with a ``%`` suffix. A bare
number above 1 is refused (ambiguous: 10 could mean 10 % or nonsense).

``LossStats`` turns a sequence of lost/received flags into a ``LossReport``
(fraction lost and mean burst length), optionally over an exponential window so
it tracks a changing channel; the receiver feeds it from RTP sequence gaps.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from largesc_codec.types import LossReport

if TYPE_CHECKING:
    from largesc_codec.sim.lossgen import LossGen

USAGE = (
    "channel spec: 'none', 'uniform:P', 'ge:P[,R[,1-H[,1-K]]]' (netem gemodel order: "
    "P = P(good->bad), R = P(bad->good), 1-H = loss in bad state, 1-K = loss in good state) "
    "or 'lossgen:P' (Opus 1.5's loss generator learned from real call traces, target loss P); "
    "each number a fraction 0..1 or a percentage like 10%; e.g. uniform:0.1, ge:0.05,0.5, lossgen:10%"
)


@runtime_checkable
class LossModel(Protocol):
    """What the sender loop and the evaluation need from a loss model."""

    @property
    def expected_loss_rate(self) -> float: ...

    @property
    def expected_mean_burst(self) -> float: ...

    def lost(self) -> bool: ...


def _probability(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a probability in 0..1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in 0..1, got {value!r}")
    return float(value)


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


class _Model(ABC):
    """Shared helpers of the loss models."""

    @abstractmethod
    def lost(self) -> bool:
        """Draw the next packet's fate: True = lost."""

    def losses(self, n: int) -> NDArray[Any]:
        """The next ``n`` packets' fates -> bool array of shape (n,), True = lost."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        return np.fromiter((self.lost() for _ in range(int(n))), dtype=bool, count=int(n))


class NoLoss(_Model):
    """A perfect channel (spec ``none``)."""

    expected_loss_rate = 0.0
    expected_mean_burst = 1.0
    spec = "none"

    def lost(self) -> bool:
        return False


class UniformLoss(_Model):
    """Independent loss with probability ``p`` per packet (Bernoulli)."""

    def __init__(self, p: float, seed: int = 0) -> None:
        self.p = _probability(p, "uniform loss p")
        self.seed = _seed(seed)
        self._rng = random.Random(self.seed)

    @property
    def spec(self) -> str:
        return f"uniform:{self.p:g}"

    @property
    def expected_loss_rate(self) -> float:
        return self.p

    @property
    def expected_mean_burst(self) -> float:
        """1 / (1 - p) packets; 1.0 when nothing is lost (LossReport's convention), inf if all are."""
        if self.p == 0.0:
            return 1.0
        return math.inf if self.p == 1.0 else 1.0 / (1.0 - self.p)

    def lost(self) -> bool:
        return self._rng.random() < self.p

    def __repr__(self) -> str:
        return f"UniformLoss(p={self.p:g}, seed={self.seed})"


class GilbertElliott(_Model):
    """Two-state Markov loss in netem's ``gemodel`` convention (see the module header).

    Args:
        p: P(good -> bad) per packet.
        r: P(bad -> good) per packet; None = 1 - p (tc's default).
        bad_loss: netem's 1-h, loss probability in the bad state (default 1).
        good_loss: netem's 1-k, loss probability in the good state (default 0).
        seed: seed of this model's own random generator.
    """

    def __init__(self, p: float, r: float | None = None, bad_loss: float = 1.0, good_loss: float = 0.0,
                 seed: int = 0) -> None:
        self.p = _probability(p, "gemodel p (good->bad)")
        self.r = 1.0 - self.p if r is None else _probability(r, "gemodel r (bad->good)")
        self.bad_loss = _probability(bad_loss, "gemodel 1-h (loss in bad state)")
        self.good_loss = _probability(good_loss, "gemodel 1-k (loss in good state)")
        self.seed = _seed(seed)
        self._rng = random.Random(self.seed)
        self.bad = False  # netem starts in the good state

    @property
    def spec(self) -> str:
        return f"ge:{self.p:g},{self.r:g},{self.bad_loss:g},{self.good_loss:g}"

    @property
    def _pi_bad(self) -> float:
        if self.p == 0.0:
            return 0.0  # starts good and never leaves
        return self.p / (self.p + self.r)  # r == 0 gives 1: bad is absorbing

    @property
    def expected_loss_rate(self) -> float:
        """Stationary loss rate: pi_good * (1-k) + pi_bad * (1-h), pi_bad = p / (p + r)."""
        pb = self._pi_bad
        return (1.0 - pb) * self.good_loss + pb * self.bad_loss

    @property
    def expected_mean_burst(self) -> float:
        """Stationary mean run length of consecutive losses, in packets.

        P(lost) / P(received then lost), both over consecutive packet pairs of the
        stationary chain; 1/r for the simple Gilbert model (bad_loss 1, good_loss 0).
        1.0 when nothing is lost, inf when a loss run never ends.
        """
        loss = self.expected_loss_rate
        if loss == 0.0:
            return 1.0
        pb = self._pi_bad
        pi = (1.0 - pb, pb)
        e = (self.good_loss, self.bad_loss)
        trans = ((1.0 - self.p, self.p), (self.r, 1.0 - self.r))
        starts = sum(pi[a] * (1.0 - e[a]) * trans[a][b] * e[b] for a in (0, 1) for b in (0, 1))
        return math.inf if starts == 0.0 else loss / starts

    def lost(self) -> bool:
        rnd = self._rng.random
        if self.bad:
            if rnd() < self.r:
                self.bad = False
            return rnd() < self.bad_loss
        if rnd() < self.p:
            self.bad = True
        return rnd() < self.good_loss

    def __repr__(self) -> str:
        return (f"GilbertElliott(p={self.p:g}, r={self.r:g}, bad_loss={self.bad_loss:g}, "
                f"good_loss={self.good_loss:g}, seed={self.seed})")


def _number(text: str, spec: str) -> float:
    t = text.strip()
    percent = t.endswith("%")
    try:
        value = float(t[:-1] if percent else t)
    except ValueError:
        raise ValueError(f"bad number {text!r} in channel spec {spec!r}; {USAGE}") from None
    if not math.isfinite(value):
        raise ValueError(f"bad number {text!r} in channel spec {spec!r}; {USAGE}")
    if percent:
        value /= 100.0
    elif value > 1.0:
        raise ValueError(
            f"{text!r} in channel spec {spec!r} is above 1: write a fraction (0.1) or a percentage (10%); {USAGE}"
        )
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} in channel spec {spec!r} is outside 0..1 (0%..100%); {USAGE}")
    return value


def parse_channel(spec: str, seed: int = 0) -> NoLoss | UniformLoss | GilbertElliott | LossGen:
    """Build a seeded loss model from a spec string (grammar in the module header).

    Raises:
        ValueError: with the usage text, for anything but a well-formed spec.
    """
    if not isinstance(spec, str):
        raise ValueError(f"channel spec must be a string, got {type(spec).__name__}; {USAGE}")
    name, sep, args = spec.strip().partition(":")
    name = name.strip().lower()
    if name == "none" and not sep:
        return NoLoss()
    values = [_number(v, spec) for v in args.split(",")] if args.strip() else []
    if name == "uniform" and len(values) == 1:
        return UniformLoss(values[0], seed)
    if name in ("ge", "gemodel") and 1 <= len(values) <= 4:
        # tc's defaults for what is left out: r = 1 - p, 1-h = 1, 1-k = 0
        r = values[1] if len(values) > 1 else None
        bad = values[2] if len(values) > 2 else 1.0
        good = values[3] if len(values) > 3 else 0.0
        return GilbertElliott(values[0], r, bad, good, seed)
    if name == "lossgen" and len(values) == 1:
        from largesc_codec.sim.lossgen import LossGen  # loads the 1.5.2 build: only when asked for

        return LossGen(values[0], _seed(seed))
    raise ValueError(f"bad channel spec {spec!r}; {USAGE}")


class LossStats:
    """Loss fraction and mean burst length from per-packet lost/received flags.

    Args:
        window: None = all packets since the start count equally; a number n >= 1 =
            exponential forgetting with a time constant of n packets (each update
            scales the past by 1 - 1/n), so the report follows a changing channel.

    ``report()`` gives ``LossReport(fraction_lost, mean_burst)`` with mean_burst =
    lost packets / loss runs (1.0 when nothing was lost, LossReport's default).
    """

    def __init__(self, window: float | None = None) -> None:
        if window is not None and not (isinstance(window, (int, float)) and math.isfinite(window) and window >= 1):
            raise ValueError(f"window must be None or a number of packets >= 1, got {window!r}")
        self.window = window
        self._keep = 1.0 if window is None else 1.0 - 1.0 / window
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self.packets = 0.0  # (weighted) packets seen
        self.lost = 0.0  # (weighted) packets lost
        self.runs = 0.0  # (weighted) loss runs started
        self._prev_lost = False

    def update(self, lost: bool) -> None:
        """Record one packet in sequence order: True = lost, False = received."""
        if not isinstance(lost, (bool, np.bool_)):
            raise ValueError(f"update() takes a bool (True = lost), got {type(lost).__name__} {lost!r}")
        k = self._keep
        self.packets = self.packets * k + 1.0
        self.lost = self.lost * k + (1.0 if lost else 0.0)
        self.runs = self.runs * k + (1.0 if lost and not self._prev_lost else 0.0)
        self._prev_lost = bool(lost)

    def update_run(self, lost: bool, count: int) -> None:
        """Record ``count`` consecutive packets with the same fate (e.g. a sequence-number gap)."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        for _ in range(int(count)):
            self.update(lost)

    def report(self) -> LossReport:
        """Current estimate; LossReport(0.0, 1.0) before any packet."""
        if self.packets == 0.0 or self.lost == 0.0:
            return LossReport(0.0, 1.0)
        return LossReport(self.lost / self.packets, max(1.0, self.lost / self.runs))
