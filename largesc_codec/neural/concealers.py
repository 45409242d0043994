"""Token-domain concealment: the registry and the simple concealers.

A concealer sees every frame the receiver actually plays (``observe``) and is
asked for tokens when the jitter buffer has only part of a frame or none of it
(``conceal``). It answers in token space plus an output gain, so concealed
frames stay marked and the Mimi decoder always gets one frame per 80 ms.

- ``repeat``: partial frames play the codebooks that arrived; lost frames
  repeat the last frame's tokens, fading out (-6 dB a frame after two frames)
  so a long burst ends in silence instead of a buzzing loop.
- ``none``: partial frames play what arrived; lost frames are silent.
- ``lm``: the Moshi language-model concealer (lm_concealer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

FULL_GAIN_FRAMES = 2
FADE_PER_FRAME = 0.5


@dataclass(frozen=True)
class Concealment:
    """Tokens to decode for a frame and the gain for its decoded PCM."""

    tokens: tuple[int, ...]
    gain: float = 1.0


class Concealer(Protocol):
    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        """A frame with these true tokens was played (or arrived late: update state)."""

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        """Tokens for frame ``index``: keep ``known`` (leading codebooks, maybe empty),
        fill up to ``codebooks`` codebooks."""


class RepeatConcealer:
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


class SilenceConcealer:
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


CONCEALERS: dict[str, Callable[..., Concealer]] = {
    "repeat": RepeatConcealer,
    "none": SilenceConcealer,
}
