"""Token-domain concealment: the Concealer interface and the simple concealers (registry: ``plc``).

A concealer sees every frame the receiver actually plays (``observe``) and is
asked for tokens when the jitter buffer has only part of a frame or none of it
(``conceal``). It answers in token space plus an output gain, so concealed
frames stay marked and the Mimi decoder always gets one frame per 80 ms.

- ``lm``: the Moshi language-model concealer (lm_concealer.py); needs an LM.
- ``repeat``: partial frames play the codebooks that arrived; lost frames
  repeat the last frame's tokens, fading out (-6 dB a frame after two frames)
  so a long burst ends in silence instead of a buzzing loop.
- ``none``: partial frames play what arrived; lost frames are silent.

The registry of names (``--plc`` choices, building by name) is ``plc.py``.
This module imports neither torch nor moshi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Concealer", "Concealment", "RepeatConcealer", "SilenceConcealer"]

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
