"""Which stream a packet belongs to: SSRC, wrap-around unwrapping, duplicates, timestamp jumps.

The arrival side of the jitter buffer (buffer.py) hands every packet to a
``StreamTracker`` first. It validates the packet, turns the 16-bit sequence
number and the 32-bit timestamp into unbounded counters (rtp.seqnum.Unwrapper,
the project's one home of wrap-around arithmetic) and says what the packet is.

Theory of operation (states: NO STREAM -> STREAM, with an optional HELD packet):
* The first packet anchors the stream: its extended timestamp is its raw value,
  so absolute frame index = extended timestamp // 1920 (a sender that starts
  at timestamp 0 keeps its own frame numbers; the payload format asks only
  that differences be multiples of 1920).
* A new SSRC restarts at once (``RestartCause.SSRC``); the old SSRC is retired
  and its stragglers come back ``STALE``.
* A packet off the stream's 1920-sample grid, or whose transit deviates from
  the buffer's base by more than ``jump_ms`` (``deviation`` callback: a
  timestamp jump, a paused sender, a much slower or faster path), is HELD. If
  the next packet continues it (sequence +1..3, timestamp forward on its grid,
  timing consistent) the stream restarts from the held packet
  (``RestartCause.JUMP``) and both are admitted; otherwise the held packet is dropped and
  counted in ``discarded``: one stray packet never flushes the buffer. (Source
  admission, RFC 3550 A.1 probation, is the RTP session's: ``rtp.session``.)
* Duplicates are recognised by extended sequence number (the last 1024).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from largesc_codec.types import FRAME_MS, FRAME_SAMPLES, TokenFrame
from rtp.seqnum import Unwrapper, seq_diff, ts_diff

REMEMBERED_SEQS = 1024
RETIRED_SSRCS = 8
PROBATION_SEQ_GAP = 3  # the confirming packet may follow the held one by up to 3 sequence numbers


@dataclass(frozen=True)
class Packet:
    """An admitted packet: ``frame`` is the absolute index of its first primary frame."""

    frame: int
    now_ms: float
    primary: tuple[TokenFrame, ...]
    redundant: tuple[TokenFrame, ...]
    reordered: bool


class AdmissionStatus(enum.Enum):
    """The tracker's verdict on one packet."""

    ADMITTED = "admitted"  # belongs to the stream: store it
    DUPLICATE = "duplicate"  # its sequence number was seen already
    HELD = "held"  # a possible jump, held until the next packet confirms or refutes it
    STALE = "stale"  # from a retired SSRC


class RestartCause(enum.Enum):
    """Why the stream restarted before an admission's packets."""

    SSRC = "ssrc"  # a new SSRC
    JUMP = "jump"  # a timestamp jump or path change, confirmed by the next packet


@dataclass(frozen=True)
class Admission:
    """The tracker's verdict (see ``AdmissionStatus``).

    ``restart`` (None: no restart) says the stream restarted before ``packets``
    (which the buffer then stores, in order); ``discarded`` counts held packets
    given up on this arrival.
    """

    status: AdmissionStatus
    packets: tuple[Packet, ...] = ()
    restart: RestartCause | None = None
    discarded: int = 0


@dataclass(frozen=True)
class _Held:
    seq: int
    timestamp: int
    now_ms: float
    primary: tuple[TokenFrame, ...]
    redundant: tuple[TokenFrame, ...]


def check_packet(ssrc: int, seq: int, timestamp: int, now_ms: float,
                 primary: Sequence[TokenFrame], redundant: Sequence[TokenFrame]) -> None:
    """Raise ValueError unless the fields fit RTP and the frame indices are relative (see buffer.py)."""
    for name, value, bits in (("ssrc", ssrc, 32), ("seq", seq, 16), ("timestamp", timestamp, 32)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
            raise ValueError(f"{name} must be an int in 0..{(1 << bits) - 1}, got {value!r}")
    check_time(now_ms)
    if not all(isinstance(f, TokenFrame) for f in (*primary, *redundant)):
        raise ValueError("primary and redundant must be sequences of TokenFrame")
    if not primary or [f.index for f in primary] != list(range(len(primary))):
        raise ValueError(f"primary frames need relative indices 0..n-1 (n >= 1), got {[f.index for f in primary]}")
    if any(f.index >= 0 for f in redundant):
        raise ValueError(f"redundant frames need negative relative indices, got {[f.index for f in redundant]}")


def check_time(now_ms: float) -> None:
    """Raise ValueError unless ``now_ms`` is a finite number."""
    if isinstance(now_ms, bool) or not isinstance(now_ms, (int, float)) or not math.isfinite(now_ms):
        raise ValueError(f"now_ms must be a finite number, got {now_ms!r}")


class StreamTracker:
    """Admit packets of one stream at a time (see the module doc).

    Args:
        jump_ms: transit deviation (ms) beyond which a packet is held as a possible jump.
    """

    def __init__(self, jump_ms: float) -> None:
        self.jump_ms = jump_ms
        self.ssrc: int | None = None
        self._retired: deque[int] = deque(maxlen=RETIRED_SSRCS)
        self._seq, self._ts, self._anchor = Unwrapper(16), Unwrapper(32), 0
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._held: _Held | None = None

    def admit(self, ssrc: int, seq: int, timestamp: int, now_ms: float, primary: Sequence[TokenFrame],
              redundant: Sequence[TokenFrame], deviation: Callable[[float, int], float]) -> Admission:
        """Classify one packet; ``deviation(now_ms, frame)`` is the buffer's transit minus base (ms)."""
        check_packet(ssrc, seq, timestamp, now_ms, primary, redundant)
        restart: RestartCause | None = None
        if self.ssrc is None:
            self._begin(ssrc, timestamp)
        elif ssrc != self.ssrc:
            if ssrc in self._retired:
                return Admission(AdmissionStatus.STALE)
            self._retired.append(self.ssrc)
            self._begin(ssrc, timestamp)
            restart = RestartCause.SSRC
        discarded = 0
        packets: list[Packet] = []
        if restart is None and self._jumped(timestamp, now_ms, deviation):
            held = self._held
            if held is None or not self._follows(held, seq, timestamp, now_ms):
                self._held = _Held(seq, timestamp, now_ms, tuple(primary), tuple(redundant))
                return Admission(AdmissionStatus.HELD, discarded=int(held is not None))
            self._begin(ssrc, held.timestamp)
            restart = RestartCause.JUMP
            first = self._admit(held.seq, held.timestamp, held.now_ms, held.primary, held.redundant)
            if first is not None:
                packets.append(first)
        elif self._held is not None:
            discarded = 1  # a stray packet: the stream went on as before
            self._held = None
        mine = self._admit(seq, timestamp, now_ms, tuple(primary), tuple(redundant))
        if mine is None:
            return Admission(AdmissionStatus.DUPLICATE, tuple(packets), restart, discarded)
        return Admission(AdmissionStatus.ADMITTED, (*packets, mine), restart, discarded)

    def _begin(self, ssrc: int, timestamp: int) -> None:
        self.ssrc = ssrc
        self._seq, self._ts = Unwrapper(16), Unwrapper(32)
        self._anchor = self._ts.extend(timestamp)
        self._seen.clear()
        self._seen_order.clear()
        self._held = None

    def _jumped(self, timestamp: int, now_ms: float, deviation: Callable[[float, int], float]) -> bool:
        ext = self._ts.peek(timestamp)
        if (ext - self._anchor) % FRAME_SAMPLES:
            return True  # not this stream's frame grid
        return abs(deviation(now_ms, ext // FRAME_SAMPLES)) > self.jump_ms

    def _follows(self, held: _Held, seq: int, timestamp: int, now_ms: float) -> bool:
        """Does this packet continue the held one's stream (so the held one was a real jump)?"""
        dt = ts_diff(held.timestamp, timestamp)
        return (1 <= seq_diff(held.seq, seq) <= PROBATION_SEQ_GAP and dt > 0 and dt % FRAME_SAMPLES == 0
                and abs(dt // FRAME_SAMPLES * FRAME_MS - (now_ms - held.now_ms)) <= self.jump_ms)

    def _admit(self, seq: int, timestamp: int, now_ms: float,
               primary: tuple[TokenFrame, ...], redundant: tuple[TokenFrame, ...]) -> Packet | None:
        """The packet with its absolute frame index, or None for a duplicate."""
        highest = self._seq.highest
        ext = self._seq.extend(seq)
        if ext in self._seen:
            return None
        self._seen.add(ext)
        self._seen_order.append(ext)
        if len(self._seen_order) > REMEMBERED_SEQS:
            self._seen.discard(self._seen_order.popleft())
        frame = self._ts.extend(timestamp) // FRAME_SAMPLES
        return Packet(frame, now_ms, primary, redundant, highest is not None and ext < highest)
