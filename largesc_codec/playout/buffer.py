"""Jitter buffer keyed by frame index: insert packets on arrival, pull frames on the playout clock.

Contract of ``insert(ssrc, seq, timestamp, now_ms, primary, redundant)``: ``seq``
and ``timestamp`` are the raw 16-bit / 32-bit RTP fields; the TokenFrames'
``index`` values are RELATIVE to the packet's timestamp frame (primary frames
0..n-1, a redundant copy d frames back has index -d), exactly what
``uep.depacketize(0, payload, min_index=None)`` returns (the default
``min_index=0`` would drop every redundant copy). The buffer unwraps both
counters and plays absolute frame indices: extended timestamp // 1920, where
the stream's first timestamp extends to itself (a sender starting at timestamp
0 keeps its own frame numbers).

Theory of operation, arrival side (``insert``):
* Each frame keeps its best copy (store.FrameStore: a primary beats a
  redundant copy, otherwise more codebooks win). Copies for frames already
  played are late: if they know more than was played, they are handed out
  once through ``take_late()`` (the concealer may update its state) and never
  played. ``next_frame()`` shows the copy held for the frame due next.
* Stream identity comes first (stream.StreamTracker): duplicates are
  counted and ignored; a new SSRC restarts at once; a timestamp jump or a
  sudden large change of transit restarts once the next packet confirms it.
  A restart flushes the frames and the delay base (not the jitter histogram)
  and re-buffers.
* Each frame's first copy gives the delay estimator one sample (delay.py).

Theory of operation, playout side (``pull``), ``BufferState`` IDLE -> BUFFERING -> PLAYING:
* The target starts at the smallest one (initial_delay_ms 0: one 10 ms
  histogram bucket) and the estimator grows it from measured frames: frames
  are played in whole 80 ms steps and an excess is shed only at quiet or
  missing frames, so a start-up prior above the real jitter would cost up to
  80 ms per frame of it through continuous speech (and skip a quiet frame
  later, with no loss and no jitter), while a start below it costs one hold
  (WAIT) per 80 ms it is short, at frames that miss their deadline, while
  the estimator (a plain average over its first samples) learns the jitter.
* IDLE (no packet since start/restart): WAIT.
* BUFFERING: WAIT until the first frame has waited the target delay beyond
  its fastest arrival; then start there, with ``restarted`` set. If more frames
  have waited that long (a backlog), all but the newest two are skipped, and
  the older of the two too when it is quiet. (A backlog of one is the rule at
  a call's start: RTP holds a new source's first packet until the second
  validates it.)
* PLAYING: one frame per pull, indices consecutive except for ``skipped``.
  With the playout point >= 1 frame above target, a frame is skipped when it
  is missing or quiet (a primary with <= ``quiet_codebooks`` codebooks: the
  controller codes non-speech with 1), or unconditionally when >= 2 frames
  above target, at most once per ``adjust_gap`` pulls. Below target, the
  buffer holds (WAIT, the cursor stays) when the next frame is missing, when
  both neighbours are quiet, or unconditionally when a frame below target (same
  rate limit). So it settles within [target, target + 80 ms) at the next quiet
  or missing frame; through continuous speech it may stay < 160 ms above.
* After ``comfort_after`` missing frames in a row the kind turns from CONCEAL
  to COMFORT (an outage). The cursor keeps pace with the clock, so returning
  packets play at once and a delivered backlog is late, never queued.
* ``due_ms()`` says when the next frame stops waiting (base + frame * 80 +
  target), so a caller that may choose its clock's phase pulls then: a pull
  clock free against the arrivals adds 0..80 ms (40 on average) on top.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import replace

from largesc_codec.playout.decision import Arrival, ArrivalStatus, JitterStats, PlayoutDecision, PlayoutKind
from largesc_codec.playout.delay import DelayEstimator
from largesc_codec.playout.store import FrameStore, Slot
from largesc_codec.playout.stream import AdmissionStatus, Packet, StreamTracker, check_time
from largesc_codec.types import FRAME_MS, TokenFrame


class BufferState(enum.Enum):
    """Where the playout side stands (module doc)."""

    IDLE = "idle"  # no packet since the start or the last restart
    BUFFERING = "buffering"  # packets held, the first frame has not waited the target yet
    PLAYING = "playing"  # one frame per pull


_NOT_ADMITTED = {AdmissionStatus.DUPLICATE: ArrivalStatus.DUPLICATE, AdmissionStatus.HELD: ArrivalStatus.HELD,
                 AdmissionStatus.STALE: ArrivalStatus.STALE}


class JitterBuffer:
    """Reorder, merge and time LargeSC frames; ``pull`` says what plays every 80 ms.

    Args:
        max_delay_ms, min_delay_ms: bounds of the adaptive target delay.
        initial_delay_ms: target before the jitter is measured (0: the smallest,
            one histogram bucket; see the module doc for why).
        quantile, forget: of the delay estimator (playout.DelayEstimator).
        comfort_after: missing frames in a row concealed before COMFORT.
        quiet_codebooks: primaries with at most this many codebooks are quiet
            (0: never), where the delay is preferably adjusted.
        adjust_gap: fewest pulls between two unconditional delay adjustments.
        jump_ms: transit deviation that makes a packet a restart candidate
            (default max(1000, 2 * max_delay_ms)).
        late_history: played frames remembered for late copies.
    """

    def __init__(
        self,
        max_delay_ms: float = 400.0,
        min_delay_ms: float = 0.0,
        initial_delay_ms: float = 0.0,
        quantile: float = 0.95,
        forget: float = 0.95,
        comfort_after: int = 12,
        quiet_codebooks: int = 1,
        adjust_gap: int = 8,
        jump_ms: float | None = None,
        late_history: int = 64,
    ) -> None:
        for name, v, low in (("comfort_after", comfort_after, 0), ("quiet_codebooks", quiet_codebooks, 0),
                             ("adjust_gap", adjust_gap, 1), ("late_history", late_history, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        self._est = DelayEstimator(min_delay_ms, max_delay_ms, quantile, forget, initial_delay_ms=initial_delay_ms)
        self.jump_ms = max(1000.0, 2.0 * float(max_delay_ms)) if jump_ms is None else float(jump_ms)
        if not math.isfinite(self.jump_ms) or self.jump_ms <= max_delay_ms:
            raise ValueError(f"jump_ms must be finite and above max_delay_ms ({max_delay_ms}), got {jump_ms!r}")
        self.comfort_after, self.quiet_codebooks = comfort_after, quiet_codebooks
        self.adjust_gap, self.late_history = adjust_gap, late_history
        self._stats = JitterStats()
        self._stream = StreamTracker(self.jump_ms)
        self._frames = FrameStore(late_history)
        self._first: int | None = None  # first primary frame of the stream: earlier copies are not sampled
        self._state = BufferState.IDLE
        self._cursor = 0
        self._missing_run = 0
        self._pulls = 0
        self._last_adjust = -adjust_gap
        self._last_quiet = False
        self._last_now: float | None = None

    # ------------------------------------------------------------------ arrival side
    def insert(self, ssrc: int, seq: int, timestamp: int, now_ms: float,
               primary: Sequence[TokenFrame], redundant: Sequence[TokenFrame] = ()) -> Arrival:
        """Insert one packet at its arrival time ``now_ms`` (frame indices relative, see module doc)."""
        adm = self._stream.admit(ssrc, seq, timestamp, now_ms, primary, redundant, self._est.deviation)
        self._stats.discarded += adm.discarded + (adm.status is AdmissionStatus.STALE)
        self._stats.duplicates += adm.status is AdmissionStatus.DUPLICATE
        restarted = adm.restart is not None
        if restarted:
            self._restart()
        late, improved = False, 0
        for p in adm.packets:  # a confirmed jump admits the held packet first
            late, n = self._store(p)
            improved += n
        if adm.status is not AdmissionStatus.ADMITTED:
            return Arrival(_NOT_ADMITTED[adm.status], restarted, False, improved)
        status = ArrivalStatus.LATE if late else ArrivalStatus.STORED
        return Arrival(status, restarted, adm.packets[-1].reordered, improved)

    def take_late(self) -> list[TokenFrame]:
        """Late copies (absolute indices) of already played frames that knew more than was played; clears."""
        return self._frames.take_late()

    def next_frame(self) -> TokenFrame | None:
        """The best copy held of the frame the next pull plays (unless it skips or holds); read-only.

        None while not playing or when nothing of that frame has arrived yet.
        A speculative concealer uses it to predict a partial frame's missing
        codebooks from the ones already known.
        """
        slot = self._frames.slots.get(self._cursor) if self._state is BufferState.PLAYING else None
        return None if slot is None else TokenFrame(self._cursor, slot.tokens)

    def between_quiet_frames(self) -> bool:
        """True while playing when the frame just played and the one held for the next pull are both quiet.

        A caller that moves its pull clock does it there, where nobody hears it.
        """
        return self.playing and self._last_quiet and self._quiet(self._frames.slots.get(self._cursor))

    @property
    def playing(self) -> bool:
        """True between the start of playout and the next restart (False while idle or buffering)."""
        return self._state is BufferState.PLAYING

    def due_ms(self) -> float | None:
        """The earliest time at which ``pull`` plays the next frame without holding; None if unknown.

        base + frame * 80 + target: the frame (the first buffered one while
        buffering, the cursor while playing) has then waited the target beyond
        its fastest arrival. None while idle or before a primary frame is held.
        A caller whose clock is free to choose its phase (the SIP engine at a
        (re)start) pulls at this time, so frames wait the target and not up to
        80 ms more. Read-only; later arrivals may move it (base, target).
        """
        base = self._est.base_ms
        if base is None or self._state is BufferState.IDLE:
            return None
        if self._state is BufferState.PLAYING:
            frame = self._cursor
        else:
            firsts = [i for i, s in self._frames.slots.items() if s.primary]
            if not firsts:
                return None
            frame = min(firsts)
        return base + frame * FRAME_MS + self._est.target_ms()

    def _restart(self) -> None:
        self._stats.restarts += 1
        self._frames.clear()
        self._first = None
        self._est.reset_base()
        self._state = BufferState.IDLE
        self._missing_run = 0

    def _store(self, p: Packet) -> tuple[bool, int]:
        """Store an admitted packet's copies; (all its primaries were due already?, frames improved)."""
        store = self._frames
        self._stats.packets += 1
        self._stats.reordered += p.reordered
        self._est.update_base(p.now_ms, p.frame)
        if self._first is None:
            self._first = p.frame
        for f in (*p.primary, *p.redundant):
            index = p.frame + f.index
            if index >= self._first and store.hear(index):  # one delay sample per frame, its first copy
                self._est.add_sample(p.now_ms, index)
        playing = self.playing
        late = playing and p.frame + len(p.primary) <= self._cursor
        self._stats.late += late
        full = max(f.codebooks for f in p.primary)
        cursor = self._cursor if playing else None
        improved = sum(store.offer(p.frame + f.index, f.tokens, True, full, cursor) for f in p.primary)
        improved += sum(store.offer(p.frame + f.index, f.tokens, False, full, cursor) for f in p.redundant)
        self._stats.late_frames = store.late_frames
        if self._state is BufferState.IDLE:
            self._state = BufferState.BUFFERING
        return late, improved

    # ------------------------------------------------------------------ playout side
    def pull(self, now_ms: float) -> PlayoutDecision:
        """What to play at ``now_ms`` (call every 80 ms on the playout clock; time must not go back)."""
        check_time(now_ms)
        if self._last_now is not None and now_ms < self._last_now:
            raise ValueError(f"pull time went back: {now_ms} after {self._last_now}")
        self._last_now = now_ms
        self._pulls += 1
        if self._state is BufferState.IDLE:
            return self._wait(now_ms, "idle")
        if self._state is BufferState.BUFFERING:
            return self._start(now_ms)
        target = self._est.target_ms()
        excess = self._est.current_ms(now_ms, self._cursor) - target
        slot = self._frames.slots.get(self._cursor)
        quiet = self._quiet(slot)
        forced = self._pulls - self._last_adjust >= self.adjust_gap
        if excess >= FRAME_MS and (slot is None or quiet or (excess >= 2 * FRAME_MS and forced)):
            skipped = self._cursor
            self._frames.slots.pop(skipped, None)
            self._cursor += 1
            self._stats.skipped += 1
            self._last_adjust = self._pulls
            why = "missing" if slot is None else "quiet" if quiet else "forced"
            return self._play(now_ms, (skipped,), False, f"{why} skip")
        if excess < 0 and (slot is None or (quiet and self._last_quiet) or (excess <= -FRAME_MS and forced)):
            self._stats.holds += 1
            self._last_adjust = self._pulls
            return self._wait(now_ms, "hold")
        return self._play(now_ms, (), False, "")

    def _quiet(self, slot: Slot | None) -> bool:
        return slot is not None and slot.primary and len(slot.tokens) <= self.quiet_codebooks

    def _start(self, now_ms: float) -> PlayoutDecision:
        firsts = [i for i, s in self._frames.slots.items() if s.primary]
        base = self._est.base_ms
        if not firsts or base is None:
            return self._wait(now_ms, "buffering")
        first = min(firsts)
        # The newest frame that has waited the target delay beyond its fastest arrival.
        due = math.floor((now_ms - base - self._est.target_ms()) / FRAME_MS)
        if due < first:
            self._cursor = first
            return self._wait(now_ms, "buffering")
        start = max(first, due - 1)  # keep one frame of a backlog: a first syllable is worth 80 ms
        if start < due and self._quiet(self._frames.slots.get(start)):
            start = due  # a quiet one is not: kept, its 80 ms would last until the next pause
        self._frames.drop_below(start)
        self._cursor = start
        self._state = BufferState.PLAYING
        self._stats.skipped += start - first
        return self._play(now_ms, tuple(range(first, start)), True, "start")

    def _play(self, now_ms: float, skipped: tuple[int, ...], restarted: bool, reason: str) -> PlayoutDecision:
        index = self._cursor
        current = self._est.current_ms(now_ms, index)
        slot = self._frames.slots.pop(index, None)
        tokens: tuple[int, ...] = ()
        if slot is None:
            self._missing_run += 1
            kind = PlayoutKind.COMFORT if self._missing_run > self.comfort_after else PlayoutKind.CONCEAL
            self._stats.outages += self._missing_run == self.comfort_after + 1
        else:
            self._missing_run = 0
            tokens = slot.tokens
            kind = (PlayoutKind.NORMAL if slot.primary else
                    PlayoutKind.RECOVERED if len(tokens) >= slot.full else PlayoutKind.PARTIAL)
        self._last_quiet = self._quiet(slot)
        # A played primary is final (late copies can only be worse); others may learn more.
        self._frames.played(index, slot, kind is PlayoutKind.NORMAL)
        self._cursor += 1
        return self._decide(PlayoutDecision(kind, index, tokens, restarted, skipped, reason, current,
                                            self._est.target_ms()))

    def _wait(self, now_ms: float, reason: str) -> PlayoutDecision:
        current = self._est.current_ms(now_ms, self._cursor) if self.playing else 0.0
        return self._decide(PlayoutDecision(PlayoutKind.WAIT, self._cursor, (), False, (), reason, current,
                                            self._est.target_ms()))

    def _decide(self, d: PlayoutDecision) -> PlayoutDecision:
        played = self._stats.played
        played[d.kind.value] = played.get(d.kind.value, 0) + 1
        self._stats.current_delay_ms, self._stats.target_delay_ms = d.current_delay_ms, d.target_delay_ms
        return d

    def stats(self) -> JitterStats:
        """A snapshot of the counters, the current and target delay, and the frames buffered."""
        return replace(self._stats, played=dict(self._stats.played), target_delay_ms=self._est.target_ms(),
                       buffered_frames=len(self._frames.slots))
