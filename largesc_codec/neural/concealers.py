"""Token-domain concealment: the Concealer interface, the simple concealers and the registry.

A concealer sees every frame the receiver actually plays (``observe``) and is
asked for tokens when the jitter buffer has only part of a frame or none of it
(``conceal``). It answers in token space plus an output gain, so concealed
frames stay marked and the Mimi decoder always gets one frame per 80 ms.

- ``lm``: the Moshi language-model concealer (lm_concealer.py); needs an LM.
- ``repeat``: partial frames play the codebooks that arrived; lost frames
  repeat the last frame's tokens, fading out (-6 dB a frame after two frames)
  so a long burst ends in silence instead of a buzzing loop.
- ``none``: partial frames play what arrived; lost frames are silent.

``CONCEALERS`` is the one registry of names: every ``--plc`` choice list is
``PLC_CHOICES`` and every concealer is built by ``build_concealer``. This
module imports neither torch nor moshi (the LM concealer is imported when one
is built), so command lines can read the choices cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CONCEALERS", "PLC_CHOICES", "Concealer", "ConcealerEntry", "Concealment", "RepeatConcealer",
           "SilenceConcealer", "build_concealer", "check_concealer", "uses_lm"]

FULL_GAIN_FRAMES = 2
FADE_PER_FRAME = 0.5


@dataclass(frozen=True)
class Concealment:
    """Tokens to decode for a frame and the gain for its decoded PCM."""

    tokens: tuple[int, ...]
    gain: float = 1.0


class Concealer(Protocol):
    """What the receiver asks of a concealer (``LargeSCReceiver`` calls every method directly).

    ``observe`` and ``conceal`` every concealer writes. The other members have
    no-op bodies here: a concealer without such state subclasses ``Concealer``
    and inherits them; ``LMConcealer`` and ``BatchedStream`` write all of them.
    (The no-ops say ``return None``: an empty body would make them abstract.)
    """

    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        """Frame ``index`` was played with these true tokens (leading codebooks)."""
        ...

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        """Tokens for frame ``index``: keep ``known`` (leading codebooks, maybe empty),
        fill up to ``codebooks`` codebooks."""
        ...

    def observe_late(self, index: int, tokens: tuple[int, ...]) -> bool:
        """A copy of an already played frame arrived late. True if the concealer's state now holds it."""
        return False

    def reset(self, next_index: int = 0) -> None:
        """Forget the stream (new SSRC, timestamp jump); the next frame is ``next_index``."""
        return None

    def prepare(self, index: int | None = None, known: Sequence[int] = ()) -> None:
        """Work ahead for the next frame, off the deadline path (called after each pull that played).

        ``known``: the leading codebooks of frame ``index`` the jitter buffer
        already holds (none: ``index`` None), to predict only the rest.
        """
        return None

    def close(self) -> None:
        """Release what the concealer holds (an LM leaves streaming mode); it is not used afterwards."""
        return None

    @property
    def timings_ms(self) -> Mapping[str, Sequence[float]]:
        """Recent durations (ms) of the concealer's stages by name; empty for concealers that do no work."""
        return {}


class RepeatConcealer(Concealer):
    """Repeat the last played frame with a fade; keep known codebooks as they are."""

    def __init__(self) -> None:
        self._last: tuple[int, ...] | None = None
        self._run = 0

    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        self._last = tokens
        self._run = 0

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        if known:
            self._last = known + (self._last or ())[len(known) :]
            self._run = 0
            return Concealment(known)
        self._run += 1
        if self._last is None:
            return Concealment((0,), gain=0.0)
        gain = 1.0 if self._run <= FULL_GAIN_FRAMES else FADE_PER_FRAME ** (self._run - FULL_GAIN_FRAMES)
        return Concealment(self._last[:codebooks], gain=gain if gain > 1e-3 else 0.0)


class SilenceConcealer(Concealer):
    """No concealment: play the codebooks that arrived, silence for lost frames."""

    def __init__(self) -> None:
        self._last: tuple[int, ...] = (0,)

    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        self._last = tokens

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        if known:
            return Concealment(known)
        # The decoder still runs (its streaming state must advance), output muted.
        return Concealment(self._last[:codebooks], gain=0.0)


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
