"""The frames a jitter buffer holds: best copy per frame, played frames, late copies.

The arrival side of ``JitterBuffer`` (buffer.py) hands every copy of a frame
(primary or redundant, absolute frame index) to a ``FrameStore``:

* Each frame keeps its best copy: a primary always beats a redundant copy,
  otherwise more codebooks win. The copy remembers how many codebooks its
  packet's primaries carry, so a redundant copy that long counts as RECOVERED.
* Copies for frames at or behind the playout cursor are late. If one knows
  more codebooks than were played, it is queued once for ``take_late()`` (the
  concealer may update its state) and never played.
* ``heard`` tells whether a frame already gave the delay estimator its one
  sample (the first copy of each frame counts, later copies do not).

Everything is bounded: ``late_history`` played frames and late copies, the
last ``HEARD_FRAMES`` sampled frame indices, and ``MAX_SLOTS`` held frames (a
sender outpacing playout, or a stalled consumer, evicts the frame held
longest: ``evicted``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from largesc_codec.types import MAX_CODEBOOKS, TokenFrame

HEARD_FRAMES = 1024  # frame indices remembered as sampled by the delay estimator
MAX_SLOTS = 1024  # frames held ahead of playout: 82 s, far beyond any jitter buffer's target


@dataclass(frozen=True)
class Slot:
    """The best copy of one frame held so far."""

    tokens: tuple[int, ...]
    primary: bool
    full: int  # codebooks its packet's primaries carry: a copy this long is RECOVERED


class FrameStore:
    """Best copies of future frames, memory of played ones (see the module doc)."""

    def __init__(self, late_history: int) -> None:
        self.late_history = late_history
        self.slots: dict[int, Slot] = {}
        self._played: dict[int, int] = {}  # recently played index -> codebooks known then
        self._late: deque[TokenFrame] = deque(maxlen=late_history)
        self._heard: set[int] = set()
        self._heard_order: deque[int] = deque()
        self.late_frames = 0  # late copies queued for take_late() so far
        self.evicted = 0  # held frames given up to stay within MAX_SLOTS

    def clear(self) -> None:
        """Forget everything (a stream restart); the counter stays."""
        self.slots.clear()
        self._played.clear()
        self._late.clear()
        self._heard.clear()
        self._heard_order.clear()

    def hear(self, index: int) -> bool:
        """Mark frame ``index`` as sampled; True the first time (it gives the estimator a sample)."""
        if index in self._heard:
            return False
        self._heard.add(index)
        self._heard_order.append(index)
        if len(self._heard_order) > HEARD_FRAMES:
            self._heard.discard(self._heard_order.popleft())
        return True

    def offer(self, index: int, tokens: tuple[int, ...], primary: bool, full: int, cursor: int | None) -> int:
        """Keep this copy if it beats the held one; 1 if it did. ``cursor``: next frame to play (None: not playing)."""
        if cursor is not None and index < cursor:
            known = self._played.get(index)
            if known is not None and len(tokens) > known:
                self._played[index] = len(tokens)  # hand each improvement out once
                self._late.append(TokenFrame(index, tokens))
                self.late_frames += 1
            return 0
        old = self.slots.get(index)
        if old is None and len(self.slots) >= MAX_SLOTS:
            del self.slots[next(iter(self.slots))]  # held longest (dicts keep insertion order)
            self.evicted += 1
        if old is None or (primary and not old.primary) or (
                primary == old.primary and len(tokens) > len(old.tokens)):
            self.slots[index] = Slot(tokens, primary, full)
            return 1
        return 0

    def played(self, index: int, slot: Slot | None, final: bool) -> None:
        """Frame ``index`` was played from ``slot`` (None: concealed); ``final``: late copies cannot help."""
        self._played[index] = MAX_CODEBOOKS if final else (len(slot.tokens) if slot is not None else 0)
        if len(self._played) > self.late_history:
            for i in [i for i in self._played if i <= index - self.late_history]:
                del self._played[i]
        self.drop_below(index + 1)

    def drop_below(self, index: int) -> int:
        """Drop held copies of frames before ``index``; returns how many."""
        old = [i for i in self.slots if i < index]
        for i in old:
            del self.slots[i]
        return len(old)

    def take_late(self) -> list[TokenFrame]:
        """Late copies (absolute indices) that knew more than was played; clears them."""
        out = list(self._late)
        self._late.clear()
        return out
