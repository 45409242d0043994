"""The jitter buffer's frame store stays bounded whatever arrives (issue 14 item 2)."""

from __future__ import annotations

from largesc_codec.playout.buffer import JitterBuffer
from largesc_codec.playout.store import MAX_SLOTS
from largesc_codec.types import TokenFrame


def test_held_frames_are_capped_when_nothing_plays_them() -> None:
    """A sender outpacing playout (or a stalled consumer) cannot grow the store; the newest frames stay."""
    jb = JitterBuffer()
    for n in range(MAX_SLOTS + 500):  # real-time arrivals, 16 frames each, never pulled
        jb.insert(1, n % 65536, n * 1920, 80.0 * n, [TokenFrame(0, (1,) * 8)],
                  [TokenFrame(-d, (2,) * 4) for d in range(1, 16)])
    assert len(jb._frames.slots) == MAX_SLOTS and jb._frames.evicted >= 500
    assert min(jb._frames.slots) == 500
