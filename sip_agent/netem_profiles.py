"""netem impairment specs: parse, validate, render as `tc` arguments, named profiles.

Theory of operation
-------------------
A :class:`NetemSpec` is one direction's impairment, written in the grammar of
`tc qdisc ... netem` (iproute2): delay with jitter, correlation and
distribution, loss (uniform ``random``, Gilbert-Elliott ``gemodel``, 4-state
``state``), duplication, reordering, corruption, rate limit and queue limit.
:func:`parse_netem` turns a spec string into a frozen spec (``ValueError`` with
the offending word and the accepted forms on bad input); :meth:`NetemSpec.tc_args`
renders it back with every default written out, so the argument list means the
same thing on every iproute2 version. A :class:`Profile` holds one spec per
direction (forward = caller->callee, backward = callee->caller); ``PROFILES`` is
the registry of named ones. This module is pure: no I/O, no pyroute2.

The loss models follow the kernel's ``sch_netem.c`` exactly, so
:meth:`NetemSpec.expected_loss` can state what a measurement should see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Union

from sip_agent.netem_markov import LossExpectation, four_state_expectation, ge_expectation

__all__ = [
    "RandomLoss", "GilbertElliottLoss", "FourStateLoss", "LossModel", "NetemSpec",
    "Profile", "PROFILES", "parse_netem", "resolve_profile", "LossExpectation",
]

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
_TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(us|usec|usecs|ms|msec|msecs|s|sec|secs)$")
_TIME_SCALE_MS = {"us": 1e-3, "usec": 1e-3, "usecs": 1e-3, "ms": 1.0, "msec": 1.0,
                  "msecs": 1.0, "s": 1e3, "sec": 1e3, "secs": 1e3}
_RATE = re.compile(r"^(\d+(?:\.\d*)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
# tc's units: "bit" families are bits per second, "bps" families BYTES per second.
_RATE_SCALE = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9,
               "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9}
_GRAMMAR = (
    "netem [limit PACKETS] [delay TIME [JITTER [CORR%]]] [distribution uniform|normal|pareto|"
    "paretonormal] [loss [random] PCT% [CORR%] | loss gemodel P% [R% [1-H% [1-K%]]] | "
    "loss state P13% [P31% [P32% [P23% [P14%]]]]] [duplicate PCT% [CORR%]] "
    "[reorder PCT% [CORR%] [gap N]] [corrupt PCT% [CORR%]] [rate RATE (e.g. 64kbit)]"
)


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

    def expected(self) -> LossExpectation | None:
        if self.correlation:
            return None  # netem's correlated loss has no simple closed form
        p = self.percent / 100.0
        return LossExpectation(p, 1.0 / (1.0 - p) if p < 1.0 else float("inf"))


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

    def expected(self) -> LossExpectation:
        return ge_expectation(self.p / 100, self.r / 100, self.one_minus_h / 100,
                              self.one_minus_k / 100)


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

    def expected(self) -> LossExpectation:
        return four_state_expectation(self.p13 / 100, self.p31 / 100, self.p32 / 100,
                                      self.p23 / 100, self.p14 / 100)


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

    def expected_loss(self) -> LossExpectation | None:
        """Stationary loss rate and mean loss-burst length of the loss model, if it has one."""
        if self.loss is None:
            return LossExpectation(0.0, 0.0)
        return self.loss.expected()


@dataclass(frozen=True)
class Profile:
    """A named pair of specs: ``forward`` = caller->callee, ``backward`` = callee->caller."""

    name: str
    description: str
    forward: NetemSpec = field(default_factory=NetemSpec)
    backward: NetemSpec = field(default_factory=NetemSpec)


class _Words:
    """Cursor over the spec's words with typed readers that raise clear ValueErrors."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.words = spec.split()
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.words)

    def take(self, what: str) -> str:
        if not self.more():
            raise self.error(f"{what} expected after '{self.words[-1]}'")
        self.i += 1
        return self.words[self.i - 1]

    def error(self, msg: str) -> ValueError:
        return ValueError(f"bad netem spec {self.spec!r}: {msg}. Accepted: {_GRAMMAR}")

    def _next_matches(self, pred: Callable[[str], bool]) -> bool:
        return self.more() and pred(self.words[self.i])

    def percent(self, what: str) -> float:
        word = self.take(what)
        try:
            value = float(word.rstrip("%"))
        except ValueError:
            raise self.error(f"{what} must be a percentage like 5% (got {word!r})") from None
        if not 0.0 <= value <= 100.0:
            raise self.error(f"{what} must lie in 0..100% (got {word!r})")
        return value

    def opt_percent(self, what: str, default: float) -> float:
        if self._next_matches(lambda w: re.fullmatch(r"\d+(\.\d*)?%?|\.\d+%?", w) is not None):
            return self.percent(what)
        return default

    def time_ms(self, what: str) -> float:
        word = self.take(what)
        m = _TIME.match(word)
        if not m:
            raise self.error(f"{what} must be a time with a unit like 20ms or 500us (got {word!r})")
        return float(m.group(1)) * _TIME_SCALE_MS[m.group(2)]

    def opt_time_ms(self, what: str) -> float | None:
        if self._next_matches(lambda w: _TIME.match(w) is not None):
            return self.time_ms(what)
        return None

    def integer(self, what: str) -> int:
        word = self.take(what)
        if not word.isdigit():
            raise self.error(f"{what} must be a whole number (got {word!r})")
        return int(word)


def _parse_loss(w: _Words) -> LossModel:
    if w._next_matches(lambda s: s == "gemodel"):
        w.take("gemodel")
        p = w.percent("loss gemodel p")
        return GilbertElliottLoss(p, w.opt_percent("gemodel r", 100.0),
                                  w.opt_percent("gemodel 1-h", 100.0),
                                  w.opt_percent("gemodel 1-k", 0.0))
    if w._next_matches(lambda s: s == "state"):
        w.take("state")
        p13 = w.percent("loss state p13")
        # Defaults as in iproute2's q_netem.c: p31 = 1 - p13, p32 = 0, p23 = 1, p14 = 0.
        loss = FourStateLoss(p13, w.opt_percent("state p31", 100.0 - p13),
                             w.opt_percent("state p32", 0.0), w.opt_percent("state p23", 100.0),
                             w.opt_percent("state p14", 0.0))
        if loss.p13 + loss.p14 > 100.0 or loss.p31 + loss.p32 > 100.0:
            raise w.error("4-state probabilities out of one state must sum to at most 100%")
        return loss
    if w._next_matches(lambda s: s == "random"):
        w.take("random")
    pct = w.percent("loss percentage")
    return RandomLoss(pct, w.opt_percent("loss correlation", 0.0))


def parse_netem(spec: str) -> NetemSpec:
    """Parse a tc-netem spec ("delay 40ms 10ms loss gemodel 5% 40%", "" or "clean" = none)."""
    w = _Words(spec.strip())
    if w.words[:1] == ["netem"]:
        w.i = 1
    if w.words[w.i:] == ["clean"]:
        return NetemSpec()
    kw: dict[str, object] = {}
    seen: set[str] = set()
    while w.more():
        word = w.take("keyword")
        word = "loss" if word == "drop" else word  # tc accepts both spellings
        if word in seen:
            raise w.error(f"'{word}' given twice")
        seen.add(word)
        if word == "delay":
            kw["delay_ms"] = w.time_ms("delay")
            jitter = w.opt_time_ms("jitter")
            if jitter is not None:
                kw["jitter_ms"] = jitter
                kw["delay_correlation"] = w.opt_percent("delay correlation", 0.0)
        elif word == "distribution":
            dist = w.take("distribution name")
            if dist not in DISTRIBUTIONS:
                raise w.error(f"unknown distribution {dist!r}")
            kw["distribution"] = dist
        elif word == "loss":
            kw["loss"] = _parse_loss(w)
        elif word in ("duplicate", "reorder", "corrupt"):
            kw[word] = w.percent(word)
            kw[f"{word}_correlation"] = w.opt_percent(f"{word} correlation", 0.0)
        elif word == "gap":
            kw["gap"] = w.integer("gap")
        elif word == "rate":
            rate = w.take("rate")
            m = _RATE.match(rate.lower())
            if not m or float(m.group(1)) <= 0:
                raise w.error(f"rate must be positive with a unit like 64kbit (got {rate!r})")
            kw["rate_bps"] = int(float(m.group(1)) * _RATE_SCALE[m.group(2)])
        elif word == "limit":
            kw["limit"] = w.integer("limit")
        else:
            raise w.error(f"unknown keyword {word!r}")
    return _checked(NetemSpec(**kw), w)  # type: ignore[arg-type]


def _checked(spec: NetemSpec, w: _Words) -> NetemSpec:
    """Cross-field rules that tc itself enforces, reported before tc ever runs."""
    if spec.distribution and not spec.jitter_ms:
        raise w.error("distribution needs a delay with jitter (delay 40ms 10ms distribution normal)")
    if spec.reorder and not spec.delay_ms:
        raise w.error("reorder needs a delay (netem reorders by sending some packets at once)")
    if spec.gap and not spec.reorder:
        raise w.error("gap only makes sense with reorder")
    if spec.limit is not None and spec.limit < 1:
        raise w.error("limit must be at least 1 packet")
    return spec


def _symmetric(name: str, description: str, spec: str) -> Profile:
    parsed = parse_netem(spec)
    return Profile(name, description, parsed, parsed)


# Registry of named profiles; parameters are documented in docs/impairment-lab.md.
PROFILES: dict[str, Profile] = {p.name: p for p in (
    _symmetric("clean", "no impairment (no qdisc installed)", ""),
    _symmetric("lossy-uniform-10", "10% independent loss, nothing else", "loss random 10%"),
    _symmetric("wifi-bursty", "busy Wi-Fi: short delay, jittery, bursty loss from interference",
               "delay 4ms 3ms 25% distribution normal loss gemodel 2% 40% 80% 0.2%"),
    _symmetric("cellular-edge", "cell edge: long jittery delay, bursty loss (handover, fading), "
               "narrow link", "delay 80ms 20ms 25% distribution normal "
               "loss gemodel 3% 25% 70% 0.5% rate 256kbit"),
    _symmetric("satellite", "geostationary hop: 300 ms one way, little jitter, rare loss bursts",
               "delay 300ms 5ms 25% distribution normal loss gemodel 0.5% 30% 90% 0.1%"),
    _symmetric("congested-4state", "congested path (netem 4-state model): loss bursts and "
               "isolated losses, some reordering", "delay 30ms 8ms loss state 1% 30% 10% 40% 0.5% "
               "reorder 1%"),
)}


def resolve_profile(profile: str | Profile) -> Profile:
    """A named profile, or a raw netem spec applied to both directions (ValueError otherwise)."""
    if isinstance(profile, Profile):
        return profile
    if profile in PROFILES:
        return PROFILES[profile]
    try:
        return _symmetric(profile, "custom netem spec", profile)
    except ValueError as exc:
        raise ValueError(f"{exc}\nOr use a named profile: {', '.join(PROFILES)}") from None
