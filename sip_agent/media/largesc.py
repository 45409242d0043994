"""The codec-backed LargeSC media engine (registered as ``largesc``): speech through ``rtp/`` and the codec.

Theory of operation
-------------------
``start`` (agent thread, returns quickly) takes the process's cached models
(``setup.MODELS``; the command line preloads and warms them), derives
what we may send from the SDP agreement (``SendPlan``: the peer's maxbps,
maxcodebooks, maxred and ptime, capped by our ``--max-bps``), opens the WAV
files, starts the RTP thread (``rtp_thread.RtpThread``: session, transport,
RTCP loss reports, sockets bound on the negotiated port) and the codec
thread. Neither thread touches pjlib, so neither needs registering with it.

The codec thread builds its own sender (Mimi copy, adaptive controller) and
receiver (Mimi copy, jitter buffer, concealer per ``--plc``), or, with
``CodecOptions.batch_streams`` (``answer``/``gateway --batch``),
the same over one row of the process's ``batch.MimiBatch``: no Mimi of its
own, its encode and decode steps run batched with the other calls', its
clocks on the batch's grid. It then runs two 80 ms schedules on
``time.monotonic`` (``schedules.CallSchedules``), one event at a time,
whichever is due first (a pull on a tie: it is the listener's deadline):

* send, at start() + k x 80 ms: the peer's latest loss report goes to the
  sender's controller; the next 80 ms of the play file (at its own rate;
  silence without one or after its end) is pushed; finished packets go to
  the RTP thread;
* pull, at start() + (p + phase) x 80 ms: packets queued by the RTP thread go
  into the receiver with their arrival times; one frame is pulled and
  appended to the recording (silence while the jitter buffer fills), then
  ``prepare_next()`` lets the concealer work ahead, off the deadline path.

The pull phase is aligned to the peer's packets (``clock``: when it
may move, and why). A pull due while the sender encodes waits for it (one
codec thread). After each event a snapshot (``stats.CodecSnapshot``: the
receiver's ``status()`` and the clock's counters) is published for
``stats()`` (any thread, cheap). The engine reads the receiver only through
``status()``, never its jitter buffer.

The recording starts at ``start``: the codec thread's build time is silence
in it, so its length is the call's media time (one frame per pull slot; one frame more
when a playout start re-used a slot, see ``clock.start_slot``).
Overload: an event that starts ``MAX_LAG_FRAMES`` or more frames late (a CPU
slower than the models need) skips the missed slots of its schedule: on the
send side that span of the play file is dropped and the RTP frame clock
moved on by as many frames (the peer conceals them), counted in
``overruns``; on the pull side silence goes into the recording. Latency
stays bounded.

``stop`` ends the codec thread, then the RTP thread (RTCP BYE), finishes the
WAV, returns the LM to the cache and raises (once) if the codec failed during
the call, so the call's result shows it.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from sip_agent.media.engine import register_engine
from sip_agent.media.rtp_thread import RtpThread
from sip_agent.media.schedules import CallSchedules
from sip_agent.media.setup import MODELS, CodecOptions, SendPlan, build_concealer
from sip_agent.media.stats import CODEC_NAME, CodecSnapshot, media_stats
from sip_agent.media.audio import AudioIn, AudioOut, CallAudio
from sip_agent.media.types import AudioFiles, LargeScLink, MediaStats

if TYPE_CHECKING:  # both import torch: built on the codec thread, imported there
    from largesc_codec.neural.model import Models
    from sip_agent.media.batch import MimiBatch

__all__ = ["CODEC_NAME", "LargeSCEngine", "register"]
log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 10.0

Report = Callable[[str], None]


class LargeSCEngine:
    """One call's LargeSC media through the codec (see module docstring); satisfies ``media.MediaEngine``.

    Args:
        audio: what the call sends and where what it hears goes (``audio.CallAudio``: files, a gateway's
            pipes, a sound card), opened in ``start``; default: silence, nothing recorded.
        options: weights, concealer, our bit-rate cap (``CodecOptions``).
        report: where progress and problems are printed (default: this module's logger).
    """

    def __init__(self, audio: CallAudio | None = None, options: CodecOptions | None = None,
                 report: Report | None = None) -> None:
        self.audio: CallAudio = audio or AudioFiles()
        self.options = options or CodecOptions()
        self.options.check()
        self._say: Report = report or (lambda text: log.warning("%s", text))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._codec_thread: threading.Thread | None = None
        self._codec_error: BaseException | None = None
        self._stopped = False
        self._rtp: RtpThread | None = None
        self._source: AudioIn | None = None
        self._sink: AudioOut | None = None
        self._plan: SendPlan | None = None
        self._link: LargeScLink | None = None
        self._models: Models | None = None
        self._lm: Any = None  # a moshi LMModel borrowed from MODELS
        self._snapshot = CodecSnapshot()
        self._started = 0.0  # time.monotonic() at start(): the recording's time zero
        self._batch: MimiBatch | None = None  # the process's shared Mimi steps (options.batch_streams > 0)

    # -- engine interface ----------------------------------------------------------
    def start(self, local_rtp_port: int, remote_addr: str, remote_rtp_port: int, link: LargeScLink) -> None:
        """Bind ``local_rtp_port`` (+1 RTCP) and start media; raises with the problem and the fix."""
        if self._rtp is not None:
            raise RuntimeError("LargeSCEngine.start called twice; make one engine per call")
        self._link, self._started = link, time.monotonic()
        self._models = MODELS.models(self.options.weights)  # cached: the command line preloaded it
        if self.options.batch_streams:
            self._batch = MODELS.batch(self.options.weights, self.options.batch_streams, self.options.mimi_precision)
        self._plan = SendPlan.from_link(link, self.options, int(self._models.mimi.total_codebooks))
        rtp = RtpThread(link, self._say)
        try:
            self._source, self._sink = self.audio.open()
            if self.options.uses_lm:
                self._lm = MODELS.take_lm(self.options.weights, self.options.adapter)
            rtp.start(local_rtp_port, remote_addr, remote_rtp_port)
        except BaseException:
            self._close_files()
            self._give_back_lm()
            raise
        self._rtp = rtp
        self._codec_thread = threading.Thread(target=self._codec_main, name="largesc-engine-codec", daemon=True)
        self._codec_thread.start()
        p = self._plan
        self._say(f"LargeSC media: sending <= {p.max_bps:g} bit/s, <= {p.codebooks} codebooks, redundancy <= "
                  f"{p.redundancy}, {p.frames_per_packet * 80} ms packets; concealment {self.options.plc}"
                  + (" (UNTRAINED test weights: audio is not speech)" if self._models.untrained else ""))

    def stop(self) -> None:
        """Stop the codec, send RTCP BYE, close sockets and WAV files. Idempotent.

        Raises RuntimeError (once) if the codec failed during the call.
        """
        if self._stopped or self._rtp is None:
            return
        self._stopped = True
        self._stop.set()
        if self._codec_thread is not None:
            self._codec_thread.join(_STOP_TIMEOUT_S)
        self._rtp.stop()
        self._close_files()
        if self._codec_error is not None:
            raise RuntimeError(f"the LargeSC codec failed during the call: {self._codec_error}") from self._codec_error

    def stats(self) -> MediaStats:
        """Counts so far: RTP statistics of the peer's stream, our sending, the receiver's frames."""
        if self._rtp is None:
            return MediaStats(codec=CODEC_NAME)
        with self._lock:
            snap = self._snapshot
        return media_stats(self._rtp, snap, self._plan.max_bps if self._plan else 0.0,
                           self._sink.seconds if self._sink else 0.0)

    # -- codec thread ---------------------------------------------------------------------
    def _codec_main(self) -> None:
        release: Callable[[], None] | None = None
        row: int | None = None
        try:
            assert self._plan is not None and self._source is not None and self._link is not None
            assert self._models is not None
            models, source = self._models, self._source
            from largesc_codec.neural.decoder import FrameDecoder, MimiDecoder
            from largesc_codec.neural.encoder import FrameEncoder, MimiEncoder
            from largesc_codec.receiver import LargeSCReceiver

            codebooks = min(self._link.receive.maxcodebooks, int(models.mimi.total_codebooks))
            encoder: FrameEncoder
            decoder: FrameDecoder
            if self._batch is not None:  # one row of the process's batch; no Mimi of our own
                encoder, decoder = self._batch.attach(self._plan.codebooks)
                row = encoder.row
                sender = self._plan.build_sender(None, source.rate, source.channels, encoder=encoder)
            else:
                precision = self.options.mimi_precision
                decoder = MimiDecoder(models.new_mimi(), precision=precision)
                encoder = MimiEncoder(models.new_mimi(), self._plan.codebooks, precision=precision)
                sender = self._plan.build_sender(None, source.rate, source.channels, encoder=encoder)
            concealer, release = build_concealer(self.options, self._lm)
            self._lm = None  # the concealer owns it now; release() gives it back
            receiver = LargeSCReceiver(None, concealer, codebooks=codebooks, decoder=decoder)
            assert self._rtp is not None and self._sink is not None
            schedules = CallSchedules(self._rtp, source, self._sink, self._stop, self._started, self._set_snapshot,
                                      self._batch)
            schedules.run(sender, receiver)  # its work-ahead has ended when it returns: the LM may go back
        except Exception as exc:  # reported by stop() and printed now; the call goes on without audio
            self._codec_error = exc
            self._say(f"LargeSC media engine: the codec stopped: {exc!r}")
            log.debug("codec thread failed", exc_info=True)
        finally:
            if row is not None and self._batch is not None:
                self._batch.detach(row)
            try:
                if release is not None:
                    release()
            except Exception as exc:  # an LM that cannot leave streaming mode is not reused
                log.debug("LM concealer release failed: %r", exc)
            self._give_back_lm()

    def _set_snapshot(self, snap: CodecSnapshot) -> None:
        with self._lock:
            self._snapshot = snap

    # -- clean-up -------------------------------------------------------------------------
    def _close_files(self) -> None:
        for f in (self._sink, self._source):
            if f is not None:
                f.close()

    def _give_back_lm(self) -> None:
        lm, self._lm = self._lm, None
        if lm is not None:
            MODELS.give_back_lm(self.options.weights, self.options.adapter, lm)


def register(options: CodecOptions, report: Report | None = None) -> None:
    """Make ``largesc`` (this engine with ``options``) the media engine the SIP agent uses."""
    options.check()
    register_engine("largesc", partial(LargeSCEngine, options=options, report=report))
