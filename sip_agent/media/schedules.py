"""A LargeSC call's two 80 ms schedules, send and pull, on the engine's codec thread (see ``largesc``).

``CallSchedules.run`` runs one event at a time, whichever is due first (a
pull on a tie: it is the listener's deadline); the pure parts (counters, the
pull phase and when it may move) are in ``clock``. A pull due while the
sender encodes waits for it. (Each schedule on its own thread was tried:
in three small-Mimi calls into one answerer the answerer's sends then ran
240 ms late 12-13 times per 10 s call, against none on one thread.)
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

from largesc_codec.types import FRAME_MS, FrameSource
from rtp.transport import monotonic_ms
from sip_agent.media.audio import AudioIn, AudioOut
from sip_agent.media.clock import ADMIT_POLL_MS, MAX_LAG_FRAMES, CodecState, may_rephase, pull_phase_ms, start_slot
from sip_agent.media.rtp_thread import RtpThread
from sip_agent.media.stats import CodecSnapshot
from sip_agent.media.wav import FRAME_S

if TYPE_CHECKING:  # all import torch: built on the codec thread
    from largesc_codec.receiver import LargeSCReceiver, ReceiverStatus
    from largesc_codec.sender import LargeSCSender
    from sip_agent.media.batch import MimiBatch

__all__ = ["CallSchedules"]



class CallSchedules:
    """One call's send and pull schedules over its RTP thread and audio (module docstring).

    Args:
        rtp, source, sink: the call's RTP thread, what it sends, where what it hears goes.
        stop: set to end both schedules.
        started: ``time.monotonic()`` when the call started (the recording's time zero).
        on_snapshot: gets a ``CodecSnapshot`` after every pull-side event (any thread reads it).
        batch: the process's batch the call's models run in (its grid and pull quantum), or None.
    """

    def __init__(self, rtp: RtpThread, source: AudioIn, sink: AudioOut, stop: threading.Event, started: float,
                 on_snapshot: Callable[[CodecSnapshot], None], batch: MimiBatch | None = None) -> None:
        self._rtp, self._source, self._sink, self._stop = rtp, source, sink, stop
        self._started, self._on_snapshot, self._batch = started, on_snapshot, batch
        self._pull_quantum_ms = batch.pull_quantum_ms if batch is not None else 0.0
        self._frame_offset = 0  # RTP frames skipped on overload (added to the sender's frame index)
        self._prepare_pool: ThreadPoolExecutor | None = None  # the concealer's work-ahead
        self._prepare_job: Future[None] | None = None

    def run(self, sender: LargeSCSender, receiver: LargeSCReceiver) -> None:
        """Run both schedules until ``stop`` is set; raises what either of them raised."""
        self._prepare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="largesc-prepare")
        try:
            self._run(sender, receiver)
        finally:  # the work-ahead ends before the caller releases the LM
            self._prepare_pool.shutdown(wait=True)
            self._prepare_job = None

    def _run(self, sender: LargeSCSender, receiver: LargeSCReceiver) -> None:
        state = CodecState()
        state.lead = int((time.monotonic() - self._started) / FRAME_S)  # (batched: origin <= start)
        state.startup_ms = (time.monotonic() - self._started) * 1000.0
        self._sink.silence(state.lead)
        origin = self._started * 1000.0  # send tick k is due at origin + k x 80 ms
        if self._batch is not None:  # on the process's grid, so that the calls' steps meet
            origin = self._batch.align(origin)
        state.ticks = state.pulls = state.lead
        status = receiver.status()
        while not self._stop.is_set():
            send_at = origin + state.ticks * FRAME_MS
            pull_at = origin + state.pulls * FRAME_MS + state.pull_phase_ms
            at = min(send_at, pull_at)
            if may_rephase(status.playing, state.last_source):
                at = min(at, monotonic_ms() + ADMIT_POLL_MS)
            wait = (at - monotonic_ms()) / 1000.0
            if wait > 0 and self._stop.wait(wait):
                break
            if pull_at <= at:
                self._pull(receiver, state, origin, pull_at)
            elif send_at <= at:
                self._send(sender, state, send_at)
            else:
                self._admit(receiver, state, origin)
            status = receiver.status()
            self._publish(status, state)

    def _send(self, sender: LargeSCSender, state: CodecState, due: float) -> None:
        rtp = self._rtp
        late = int((monotonic_ms() - due) / FRAME_MS)
        if late >= MAX_LAG_FRAMES:  # skip the missed ticks: the peer conceals them
            self._source.skip(late)
            self._frame_offset += late
            state.overruns += late
            state.ticks += late
        report = rtp.loss_report
        if report is not None and report is not state.last_report:
            sender.on_loss_report(report)
            state.last_report = report
        sender.push(self._source.next_tick())
        for packet in sender.pull():
            state.frames_sent += len(packet.decisions)
            state.codebooks_sent += sum(d.codebooks for d in packet.decisions)
            rtp.hand_over(packet.payload, packet.first_index + self._frame_offset, packet.talkspurt_start)
        state.ticks += 1

    def _pull(self, receiver: LargeSCReceiver, state: CodecState, origin: float, due: float) -> None:
        self._join_prepare()
        now = monotonic_ms()
        late = int((now - due) / FRAME_MS)
        if late >= MAX_LAG_FRAMES:  # the missed pulls are silence: the recording keeps call time
            self._sink.silence(late)
            state.pulls += late
        if self._admit(receiver, state, origin) and origin + state.pulls * FRAME_MS + state.pull_phase_ms > now:
            return  # this slot's pull moved later; the clock loop waits for it
        played = receiver.pull(now)
        state.pulls += 1
        state.last_pull_ms = now
        if played is None:
            self._sink.silence(1)
            state.last_source = None
            return
        self._sink.write(played.pcm)
        state.last_source = played.frame.source
        if played.frame.source is FrameSource.PRIMARY:
            state.codebooks_received += played.frame.received_codebooks
        # The concealer works ahead while this frame plays, beside the sends (see clock.py).
        assert self._prepare_pool is not None
        self._prepare_job = self._prepare_pool.submit(receiver.prepare_next)

    def _join_prepare(self) -> None:
        """Wait for the concealer's work-ahead (before the receiver is used again); re-raise its error."""
        job, self._prepare_job = self._prepare_job, None
        if job is not None:
            job.result()

    def _admit(self, receiver: LargeSCReceiver, state: CodecState, origin: float) -> bool:
        """Queued arrivals into the receiver; re-phase the pulls if allowed. True if the phase was set."""
        self._join_prepare()
        rtp = self._rtp
        while rtp.arrivals:
            ssrc, seq, ts, payload, arrived = rtp.arrivals.popleft()
            receiver.push(ssrc, seq, ts, payload, arrived)
        status = receiver.status()
        expected = status.due_ms
        # While buffering this may move often (harmless: nothing plays); a frame already
        # overdue moves the pull to the next frame's due time, which the buffer then starts from.
        # Between quiet frames it may move too: the buffer sheds only whole frames, so after a
        # disturbance up to 80 ms above target would otherwise stay for the rest of the call.
        quiet = state.last_source is not None and status.between_quiet_frames  # not after a hold
        if expected is None or not may_rephase(status.playing, state.last_source, quiet):
            return False
        state.pull_phase_ms = pull_phase_ms(expected, origin, self._pull_quantum_ms)
        if not status.playing:
            state.pulls = start_slot(expected, origin, state.pulls, state.last_pull_ms, self._pull_quantum_ms)
        return True

    def _publish(self, status: ReceiverStatus, state: CodecState) -> None:
        snap = CodecSnapshot(status, state.ticks - state.lead, state.overruns, state.startup_ms, state.frames_sent,
                             state.codebooks_sent, state.codebooks_received)
        self._on_snapshot(snap)
