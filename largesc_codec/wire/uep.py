"""UEP packetizer / depacketizer: token frames <-> LargeSC payload bytes.

Theory of operation (sender): the Packetizer turns the frames of one packet
(one frame at ptime 80 ms, several consecutive ones at 160, 240, ... ms) and the
controller's decisions into a payload. Primary frame i carries its first
``decisions[i].codebooks`` codebooks. In-band unequal error protection comes
from the decision of the packet's FIRST frame: each ``RedundancySpec(d, k)``
repeats the first k codebooks of the frame d frames before that first frame.
To do that the Packetizer remembers the frames it has sent, as encoded, for
the last ``max_distance`` frame indices (a bounded history: older frames are
forgotten). A spec whose frame is not in the history (before the stream start,
or a frame never sent, e.g. during DTX) is skipped; if the payload's 16-block
limit is reached, the farthest redundancy is left out first.

Receiver: ``depacketize`` parses a payload into TokenFrames with absolute frame
indices, split into primary frames and redundant copies. Combining copies across
packets (a primary always wins; otherwise the copy with more codebooks) is the
jitter buffer's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from largesc_codec.types import Decision, TokenFrame
from largesc_codec.wire.payload import MAX_BLOCKS, MAX_DISTANCE, Block, Payload, pack, unpack


@dataclass(frozen=True)
class Unpacked:
    """A parsed payload: ``primary`` in frame order, ``redundant`` by ascending distance."""

    primary: list[TokenFrame]
    redundant: list[TokenFrame]


class Packetizer:
    """Build payloads from token frames and decisions, keeping a bounded send history.

    Args:
        max_distance: the farthest redundancy distance (frames) decisions may ask
            for, 1..255 (the receiver's SDP ``maxred``); also the history length.
    """

    def __init__(self, max_distance: int = 3) -> None:
        if not 1 <= max_distance <= MAX_DISTANCE:
            raise ValueError(f"max_distance must be 1..{MAX_DISTANCE}, got {max_distance}")
        self.max_distance = max_distance
        self._history: dict[int, TokenFrame] = {}
        self._last: int | None = None

    def reset(self) -> None:
        """Forget the history (a new stream; frame indices may start over)."""
        self._history.clear()
        self._last = None

    @property
    def history(self) -> tuple[int, ...]:
        """Frame indices currently remembered, ascending."""
        return tuple(sorted(self._history))

    def build(self, frames: Sequence[TokenFrame], decisions: Sequence[Decision]) -> Payload:
        """The Payload for ``frames`` (consecutive indices) sent with ``decisions``; updates the history."""
        self._check(frames, decisions)
        primary: list[tuple[int, ...]] = []
        for n, (f, dec) in enumerate(zip(frames, decisions)):
            if dec.codebooks < 1:
                raise ValueError(f"decision {n} asks for {dec.codebooks} codebooks; need at least 1")
            primary.append(f.tokens[: dec.codebooks])
        room = MAX_BLOCKS - len(primary)
        redundant: list[Block] = []
        seen: set[int] = set()
        for spec in sorted(decisions[0].redundancy, key=lambda s: s.distance):
            if not 1 <= spec.distance <= self.max_distance:
                raise ValueError(
                    f"redundancy distance {spec.distance} is outside 1..{self.max_distance} (max_distance)"
                )
            if spec.codebooks < 1:
                raise ValueError(f"redundancy at distance {spec.distance} asks for {spec.codebooks} codebooks")
            if spec.distance in seen:
                raise ValueError(f"decision repeats redundancy distance {spec.distance}")
            seen.add(spec.distance)
            old = self._history.get(frames[0].index - spec.distance)
            if old is not None and len(redundant) < room:
                redundant.append(Block(spec.distance, old.tokens[: spec.codebooks]))
        payload = Payload(tuple(primary), tuple(redundant))
        self._remember(frames)
        return payload

    def packetize(self, frames: Sequence[TokenFrame], decisions: Sequence[Decision]) -> bytes:
        """Payload bytes for ``frames`` (the first one is the RTP timestamp's frame)."""
        return pack(self.build(frames, decisions))

    def _check(self, frames: Sequence[TokenFrame], decisions: Sequence[Decision]) -> None:
        if not frames:
            raise ValueError("packetize needs at least one frame")
        if len(frames) != len(decisions):
            raise ValueError(f"{len(frames)} frames but {len(decisions)} decisions: need one decision per frame")
        if len(frames) > MAX_BLOCKS:
            raise ValueError(f"{len(frames)} frames exceed {MAX_BLOCKS} per payload (ptime too long)")
        first = frames[0].index
        for n, f in enumerate(frames):
            if f.index != first + n:
                raise ValueError(f"frames of one packet must be consecutive: frame {n} has index {f.index}, "
                                 f"expected {first + n}")
        if self._last is not None and first <= self._last:
            raise ValueError(f"frame {first} is not after the last sent frame {self._last}; call reset() "
                             "for a new stream")

    def _remember(self, frames: Sequence[TokenFrame]) -> None:
        for f in frames:
            self._history[f.index] = f
        self._last = frames[-1].index
        # The next packet starts at >= last + 1 and reaches back max_distance frames.
        horizon = self._last + 1 - self.max_distance
        for i in [i for i in self._history if i < horizon]:
            del self._history[i]


def depacketize(first_frame_index: int, data: bytes, min_index: int | None = 0) -> Unpacked:
    """Parse ``data`` whose first primary frame is ``first_frame_index``.

    Returns primary frames ``first_frame_index + n`` and redundant copies
    ``first_frame_index - distance``. Frames with index < ``min_index`` (default 0:
    before the stream start) are dropped; ``min_index=None`` keeps all, so a
    caller can pass ``first_frame_index=0`` and get relative indices.
    Raises ValueError on a malformed payload.
    """
    p = unpack(data)
    primary = [TokenFrame(first_frame_index + n, t) for n, t in enumerate(p.primary)]
    redundant = [TokenFrame(first_frame_index - b.distance, b.tokens) for b in p.redundant]
    if min_index is not None:
        primary = [f for f in primary if f.index >= min_index]
        redundant = [f for f in redundant if f.index >= min_index]
    return Unpacked(primary, redundant)
