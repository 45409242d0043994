"""The one registry of concealers: ``--plc`` names, what each needs, and building one by name.

``CONCEALERS`` maps a name to how it is built; every ``--plc`` choice list is
``PLC_CHOICES`` and every concealer is built by ``build_concealer``. This
module imports neither torch nor moshi (the LM concealer is imported when one
is built), so command lines read the choices cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from largesc_codec.neural.concealers import Concealer, RepeatConcealer, SilenceConcealer

__all__ = ["CONCEALERS", "PLC_CHOICES", "ConcealerEntry", "build_concealer", "check_concealer", "uses_lm"]


LMSource = Callable[[], Any]  # yields a moshi LMModel in eval mode that the concealer will own
Adapter = Callable[[Any], Any]  # LM in, tuned LM out (a LoRA adapter merged in: train.finetune.load_adapter)


def _lm_concealer(lm: Any) -> Concealer:
    from largesc_codec.neural.lm_concealer import LMConcealer

    return LMConcealer(lm)


@dataclass(frozen=True)
class ConcealerEntry:
    """One registered concealer: ``build(lm)`` makes it; ``lm`` is None unless ``uses_lm``."""

    build: Callable[[Any], Concealer]
    uses_lm: bool = False


CONCEALERS: dict[str, ConcealerEntry] = {
    "lm": ConcealerEntry(_lm_concealer, uses_lm=True),
    "repeat": ConcealerEntry(lambda lm: RepeatConcealer()),
    "none": ConcealerEntry(lambda lm: SilenceConcealer()),
}
PLC_CHOICES: tuple[str, ...] = tuple(CONCEALERS)  # the --plc choices, in this order ("lm" is the default)


def uses_lm(name: str) -> bool:
    """Whether concealer ``name`` needs an LM (ValueError for an unknown name)."""
    return _entry(name).uses_lm


def check_concealer(name: str, adapter: bool = False) -> None:
    """ValueError naming the fix unless ``name`` is registered and, with an ``adapter``, uses an LM."""
    if not uses_lm(name) and adapter:
        raise ValueError("--adapter only applies with --plc lm (the adapter tunes the LM concealer)")


def build_concealer(name: str, lm: LMSource | None = None, adapter: Adapter | None = None) -> Concealer:
    """The concealer registered as ``name``.

    ``lm`` is called only when the concealer needs an LM (``uses_lm``) and is
    then required; ``adapter`` tunes that LM first and applies only to those.
    ValueError names the problem: an unknown name, a missing LM, an adapter
    for a concealer without one (``check_concealer``).
    """
    check_concealer(name, adapter is not None)
    entry = _entry(name)
    if not entry.uses_lm:
        return entry.build(None)
    if lm is None:
        raise ValueError(f"the {name} concealer needs a language model: give lm (e.g. models.load_lm)")
    model = lm()
    return entry.build(model if adapter is None else adapter(model))


def _entry(name: str) -> ConcealerEntry:
    entry = CONCEALERS.get(name)
    if entry is None:
        raise ValueError(f"--plc {name}: choose one of {', '.join(PLC_CHOICES)}")
    return entry
