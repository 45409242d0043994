"""What the jitter buffer tells its caller: a ``PlayoutDecision`` per pull, an ``Arrival`` per insert,
and ``JitterStats`` snapshots of its counters.

``PlayoutDecision`` is what ``JitterBuffer.pull`` returns every 80 ms: which
frame plays and how it was obtained (``PlayoutKind``). Decisions are data: the
receiver carries them out (decode, conceal, fill, stay silent), and labels the
frame it played with ``PlayoutDecision.source`` (the one place where a
playout kind becomes a ``FrameSource``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from largesc_codec.types import FrameSource


class PlayoutKind(enum.Enum):
    """How the frame of a decision is obtained."""

    WAIT = "wait"  # nothing plays: no stream yet, (re)buffering, or holding to grow the delay
    NORMAL = "normal"  # the primary copy arrived: decode its tokens as they are
    RECOVERED = "recovered"  # only redundancy, but as many codebooks as the primaries carry
    PARTIAL = "partial"  # only the first ``codebooks`` codebooks (redundancy): conceal the rest
    CONCEAL = "conceal"  # nothing known: the concealer predicts the frame
    COMFORT = "comfort"  # a long outage: play comfort silence / fade instead of concealing


_SOURCE = {
    PlayoutKind.NORMAL: FrameSource.PRIMARY,
    PlayoutKind.RECOVERED: FrameSource.RECOVERED,
    PlayoutKind.PARTIAL: FrameSource.PARTIAL,
    PlayoutKind.CONCEAL: FrameSource.CONCEALED,
    PlayoutKind.COMFORT: FrameSource.COMFORT,
}


@dataclass(frozen=True)
class PlayoutDecision:
    """What to play for one 80 ms tick of the playout clock.

    Attributes:
        kind: how the frame is obtained.
        index: the frame to play (absolute frame index = extended RTP timestamp // 1920).
            For WAIT, where the playout cursor stands: the frame that plays next while
            holding or buffering (not meaningful while idle).
        tokens: the known leading codebooks (``tokens[k]`` = codebook k, ints in
            0..2047); empty for CONCEAL, COMFORT and WAIT.
        restarted: the first frame of a new playout epoch (stream start, new SSRC,
            timestamp jump, path change): ``index`` may jump either way, so reset
            any per-stream state (the concealer) to it.
        skipped: frames dropped right before this one to shrink the delay or a
            backlog; indices between the previous decision and this one.
        reason: a short human-readable why (e.g. "buffering", "hold", "quiet skip").
        current_delay_ms: the playout point's delay over the fastest recent packet.
        target_delay_ms: the delay the buffer steers to.
    """

    kind: PlayoutKind
    index: int
    tokens: tuple[int, ...] = ()
    restarted: bool = False
    skipped: tuple[int, ...] = ()
    reason: str = ""
    current_delay_ms: float = 0.0
    target_delay_ms: float = 0.0

    @property
    def codebooks(self) -> int:
        """How many leading codebooks of the frame are known."""
        return len(self.tokens)

    @property
    def plays(self) -> bool:
        """True when this tick produces a frame (every kind but WAIT)."""
        return self.kind is not PlayoutKind.WAIT

    @property
    def source(self) -> FrameSource:
        """The label of the played frame (``ReceivedFrame.source``); ValueError for WAIT, which plays none."""
        if self.kind is PlayoutKind.WAIT:
            raise ValueError("a WAIT decision plays no frame, so it has no frame source")
        return _SOURCE[self.kind]


class ArrivalStatus(enum.Enum):
    """What ``JitterBuffer.insert`` did with a packet."""

    STORED = "stored"  # its frames are held for playout
    LATE = "late"  # accepted, but all its primary frames had been played
    DUPLICATE = "duplicate"  # seen before (by sequence number): ignored
    HELD = "held"  # a possible timestamp jump, held until the next packet confirms it
    STALE = "stale"  # from a retired SSRC: ignored


@dataclass(frozen=True)
class Arrival:
    """What ``insert`` did with one packet, and whether the stream restarted before it."""

    status: ArrivalStatus
    restarted: bool = False
    reordered: bool = False
    improved: int = 0  # frames whose best copy this packet improved


@dataclass
class JitterStats:
    """Counters of a JitterBuffer (``stats()`` returns a snapshot)."""

    packets: int = 0  # accepted packets (late ones included, duplicates not)
    duplicates: int = 0
    late: int = 0  # accepted packets whose primary frames had all been played
    reordered: int = 0  # sequence number below the highest seen
    restarts: int = 0  # flush + resync: new SSRC, timestamp jump, path change
    discarded: int = 0  # retired SSRC, or a held jump that no packet confirmed
    late_frames: int = 0  # late copies handed out through take_late()
    skipped: int = 0  # frames dropped to shrink the delay or a backlog
    holds: int = 0  # pulls held (WAIT) to grow the delay
    outages: int = 0  # entries into COMFORT
    played: dict[str, int] = field(default_factory=dict)  # pulls per PlayoutKind value
    current_delay_ms: float = 0.0
    target_delay_ms: float = 0.0
    buffered_frames: int = 0
