"""Parse and validate tc-netem spec strings into :class:`sip_agent.lab.netem_spec.NetemSpec`.

Theory of operation
-------------------
The grammar is iproute2's ``tc ... netem`` (the subset in ``GRAMMAR``). A
cursor over the words reads keywords and their typed arguments; optional
arguments (jitter, correlations, model parameters) are taken when the next
word looks like one. Defaults are tc's own. Every problem is a ``ValueError``
quoting the spec, naming the offending word and listing the accepted forms;
cross-field rules that tc or the kernel enforce are checked here, before any
tc runs. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Callable

from sip_agent.lab.netem_spec import DISTRIBUTIONS, FourStateLoss, GilbertElliottLoss, LossModel, NetemSpec, RandomLoss

__all__ = ["parse_netem", "GRAMMAR"]

_TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(us|usec|usecs|ms|msec|msecs|s|sec|secs)$")
_TIME_SCALE_MS = {"us": 1e-3, "usec": 1e-3, "usecs": 1e-3, "ms": 1.0, "msec": 1.0,
                  "msecs": 1.0, "s": 1e3, "sec": 1e3, "secs": 1e3}
_RATE = re.compile(r"^(\d+(?:\.\d*)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
# tc's units: "bit" families are bits per second, "bps" families BYTES per second.
_RATE_SCALE = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9,
               "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9}
GRAMMAR = (
    "netem [limit PACKETS] [delay TIME [JITTER [CORR%]]] [distribution uniform|normal|pareto|"
    "paretonormal] [loss [random] PCT% [CORR%] | loss gemodel P% [R% [1-H% [1-K%]]] | "
    "loss state P13% [P31% [P32% [P23% [P14%]]]]] [duplicate PCT% [CORR%]] "
    "[reorder PCT% [CORR%] [gap N]] [corrupt PCT% [CORR%]] [rate RATE (e.g. 64kbit)]"
)


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
        return ValueError(f"bad netem spec {self.spec!r}: {msg}. Accepted: {GRAMMAR}")

    def next_is(self, pred: Callable[[str], bool]) -> bool:
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
        if self.next_is(lambda w: re.fullmatch(r"\d+(\.\d*)?%?|\.\d+%?", w) is not None):
            return self.percent(what)
        return default

    def time_ms(self, what: str) -> float:
        word = self.take(what)
        m = _TIME.match(word)
        if not m:
            raise self.error(f"{what} must be a time with a unit like 20ms or 500us (got {word!r})")
        return float(m.group(1)) * _TIME_SCALE_MS[m.group(2)]

    def opt_time_ms(self, what: str) -> float | None:
        if self.next_is(lambda w: _TIME.match(w) is not None):
            return self.time_ms(what)
        return None

    def integer(self, what: str) -> int:
        word = self.take(what)
        if not word.isdigit():
            raise self.error(f"{what} must be a whole number (got {word!r})")
        return int(word)


def _parse_loss(w: _Words) -> LossModel:
    if w.next_is(lambda s: s == "gemodel"):
        w.take("gemodel")
        p = w.percent("loss gemodel p")
        return GilbertElliottLoss(p, w.opt_percent("gemodel r", 100.0),
                                  w.opt_percent("gemodel 1-h", 100.0),
                                  w.opt_percent("gemodel 1-k", 0.0))
    if w.next_is(lambda s: s == "state"):
        w.take("state")
        p13 = w.percent("loss state p13")
        # Defaults as in iproute2's q_netem.c: p31 = 1 - p13, p32 = 0, p23 = 1, p14 = 0.
        loss = FourStateLoss(p13, w.opt_percent("state p31", 100.0 - p13),
                             w.opt_percent("state p32", 0.0), w.opt_percent("state p23", 100.0),
                             w.opt_percent("state p14", 0.0))
        if loss.p13 + loss.p14 > 100.0 or loss.p31 + loss.p32 > 100.0:
            raise w.error("4-state probabilities out of one state must sum to at most 100%")
        return loss
    if w.next_is(lambda s: s == "random"):
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
