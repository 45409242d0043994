"""Registry of the baseline conditions: Opus 1.3.1, Opus 1.5.2 (deep PLC / NoLACE, DRED), Codec 2.

``BASELINES`` maps each condition name to a factory, in table order, so a
caller can list names without loading any codec; ``select_baselines`` builds
the named ones (fnmatch patterns allowed), ``available_baselines`` every one
whose library is present here (1.3.1 always; 1.5.2 after ``make setup``;
Codec 2 with pycodec2). Families: ``opus`` (1.3.1, the old table's rows),
``opus15``, ``codec2``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Callable, Sequence

from largesc_codec.evaluation.codec2_baseline import CODEC2_MODES, Codec2Codec
from largesc_codec.evaluation.condition import Condition
from largesc_codec.evaluation.opus15_baseline import DRED_BITRATES, DRED_MS, OPUS15_BITRATES, Opus15Codec
from largesc_codec.evaluation.opus_baseline import OPUS_BITRATES, OpusCodec

Factory = Callable[[], Condition]


def _opus13(b: int) -> Factory:
    return lambda: Condition(f"opus13-{b // 1000}k", OpusCodec(b), "opus", float(b))


def _opus15(b: int) -> Factory:
    return lambda: Condition(f"opus15-{b // 1000}k", Opus15Codec(b), "opus15", float(b))


def _dred(b: int) -> Factory:
    return lambda: Condition(f"opus15-dred-{b // 1000}k", Opus15Codec(b, dred_ms=DRED_MS), "opus15", float(b))


def _codec2(mode: str) -> Factory:
    bps = 700.0 if mode == "700c" else float(mode)
    return lambda: Condition(f"codec2-{mode}", Codec2Codec(mode), "codec2", bps)


BASELINES: dict[str, Factory] = {
    **{f"opus13-{b // 1000}k": _opus13(b) for b in OPUS_BITRATES},
    **{f"opus15-{b // 1000}k": _opus15(b) for b in OPUS15_BITRATES},
    **{f"opus15-dred-{b // 1000}k": _dred(b) for b in DRED_BITRATES},
    **{f"codec2-{m}": _codec2(m) for m in CODEC2_MODES},
}


def select_baselines(names: Sequence[str]) -> list[Condition]:
    """The conditions whose names match ``names`` (exact or fnmatch patterns), in table order.

    Raises ValueError for a name or pattern that matches nothing; OSError /
    ImportError if a matched codec's library is missing (the message says how to get it).
    """
    for pattern in names:
        if not any(fnmatchcase(n, pattern) for n in BASELINES):
            raise ValueError(f"no baseline matches {pattern!r}: choose from {', '.join(BASELINES)}")
    return [make() for n, make in BASELINES.items() if any(fnmatchcase(n, p) for p in names)]


def available_baselines() -> list[Condition]:
    """Every baseline whose codec loads here (skipping Opus 1.5.2 or Codec 2 where missing)."""
    from largesc_codec.evaluation.libopus15 import available as opus15_available

    out = select_baselines(["opus13-*"])
    if opus15_available():
        out += select_baselines(["opus15-*"])
    try:
        out += select_baselines(["codec2-*"])
    except ImportError:
        pass  # pycodec2 not installed
    return out
