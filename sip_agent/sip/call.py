"""One SIP call: lifecycle, timeouts, LargeSC negotiation and the hand-off to a media engine.

Theory of operation
-------------------
States are pjsua2's invite states, reported through ``onCallState``::

    outgoing: dial()   -> CALLING -> [EARLY 1xx] -> CONNECTING 2xx -> CONFIRMED -> DISCONNECTED
    incoming: accept() -> INCOMING ---------------> CONNECTING 200 -> CONFIRMED -> DISCONNECTED

Every callback runs on the agent's thread inside ``AgentEndpoint.poll()``;
time is checked by ``tick(now)`` from the same loop (no timer threads):

* answer timeout (outgoing): not confirmed ``answer_timeout_s`` after dial ->
  hang up (CANCEL; pjsip holds the CANCEL back while no response at all has
  arrived) and finish with a message telling "no response" from "not
  answered" apart.
* max duration: confirmed for ``max_duration_s`` -> BYE.
* teardown: after our BYE/CANCEL, DISCONNECTED must come within
  ``teardown_timeout_s``, else the call finishes anyway (pjsip ends its
  transaction in the background; libDestroy cleans up).

Negotiation (``sdp_munge``): when we offer, pjsua2 is given two audio media
and ``onCallSdpCreated`` turns the last m= line into the dedicated LargeSC
line on our own port; the peer's answer is read from the response that
carried it (``onCallState``/``onCallTsxState`` message text). When we answer,
the offer (INVITE text or ``remSdp``) is searched for a LargeSC line and
pjsua2's answer is rewritten to accept it. ``onCallMediaState`` follows each
completed exchange: LargeSC settled -> start the media engine (once); else
connect the WAV player/recorder to pjsua2's active audio stream.

Finishing (DISCONNECTED or a forced end) stops the engine, keeps the last
media statistics, releases player/recorder and sets ``result``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import pjsua2 as pj

from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.media.engine import EngineFactory, MediaEngine
from sip_agent.media.audio import CallAudio
from sip_agent.media.sound import SoundCard
from sip_agent.media.types import AudioFiles, MediaStats
from sip_agent.sip import sdp_munge
from sip_agent.sip.call_result import CallResult, failure_message
from sip_agent.sip.negotiation import LargeScNegotiation
from sip_agent.sip.legs import call_legs
from sip_agent.sip.pj_audio import StandardLeg, codec_of, stream_stats

_STATS_EVERY_S = 0.5


@dataclass
class CallOptions:
    """Per-call behaviour. ``engine`` None: LargeSC is neither offered nor accepted.

    ``standard_audio``: what pjsua2's own media plays instead of ``audio`` on a standard codec (a 16-bit WAV copy).
    ``sound``: a sound card for every call in place of the files (sip/legs.py).
    """

    host: str = "127.0.0.1"
    audio: AudioFiles = field(default_factory=AudioFiles)
    standard_audio: AudioFiles | None = None
    sound: SoundCard | None = None
    engine: EngineFactory | None = None
    params: LargeScParams = field(default_factory=LargeScParams)
    answer_timeout_s: float | None = 30.0
    max_duration_s: float | None = None
    teardown_timeout_s: float = 3.0


def _rx_text(event: pj.SipEvent) -> str:
    """Whole text of a received SIP message carried by ``event`` ("" if none)."""
    try:
        if event.type == pj.PJSIP_EVENT_TSX_STATE and event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            return str(event.body.tsxState.src.rdata.wholeMsg)
        if event.type == pj.PJSIP_EVENT_RX_MSG:
            return str(event.body.rxMsg.rdata.wholeMsg)
    except (AttributeError, pj.Error):
        pass
    return ""


class AgentCall(pj.Call):  # type: ignore[misc]  # pjsua2 is untyped (SWIG)
    """A pjsua2 call with the lifecycle above; ``done`` and ``result`` tell the agent how it ended.

    ``audio`` / ``standard``: this call's own audio on a LargeSC / standard codec, in place of
    ``options.audio`` / ``options.standard_audio`` (a gateway bridges each call to its other leg).
    """

    def __init__(self, account: pj.Account, options: CallOptions, report: Callable[[str], None], peer: str,
                 call_id: int = pj.PJSUA_INVALID_ID, offer_message: str = "",
                 clock: Callable[[], float] = time.monotonic, audio: CallAudio | None = None,
                 standard: StandardLeg | None = None) -> None:
        super().__init__(account, call_id)
        self.options, self.report, self.peer, self.clock = options, report, peer, clock
        self.outgoing = call_id == pj.PJSUA_INVALID_ID
        self.offer_message = offer_message
        self.state = "NULL"
        self.started = clock()
        self.confirmed_at: float | None = None
        self.hangup_at: float | None = None
        self.responses = 0  # responses to our INVITE seen so far (0 = the peer never answered at all)
        self.done = False
        self.result: CallResult | None = None
        self._end_message: str | None = None  # why we hung up
        self._fail_message: str | None = None  # how a call we gave up on failed (timeouts)
        self._gave_up: tuple[int, str] | None = None  # the status of a call we gave up on
        self._error: str | None = None
        self.largesc = LargeScNegotiation(options.host, options.params)
        self._engine: MediaEngine | None = None
        default_audio, default_std = call_legs(options)
        self._audio: CallAudio = audio or default_audio
        self._std: StandardLeg = standard or default_std
        self._std_index: int | None = None
        self.codec, self.bitrate_bps = "", 0.0
        self._stats: MediaStats | None = None
        self._stats_at = 0.0

    # -- actions ------------------------------------------------------------
    def dial(self, uri: str) -> None:
        """Send the INVITE (two audio media when LargeSC is offered). Fails the call on a local error."""
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 2 if self.options.engine is not None else 1
        try:
            self.makeCall(uri, prm)
        except pj.Error as exc:
            self._finish(400, exc.reason, f"cannot call {uri}: {exc.reason} ({exc.title}); is it a valid SIP URI "
                         f"like sip:user@127.0.0.1:5060 (add ;transport=tcp for TCP)?")

    def accept(self) -> None:
        """Answer an incoming call with 200 OK.

        With a LargeSC line in the offer, pjsua2 must provision one audio
        medium per offered audio line (else it disables the fallback line
        once the answer is rewritten, and fails the call with 488).
        """
        try:
            self.answer(self._answer_param(200))
        except pj.Error as exc:
            self._finish(500, exc.reason, f"cannot answer the call from {self.peer}: {exc.reason}")

    def ring(self) -> None:
        """Tell the caller we are trying (180 Ringing): a gateway rings while it places the other leg."""
        self._respond(180)

    def reject(self, code: int) -> None:
        """Refuse an incoming call with the final status ``code`` (4xx-6xx)."""
        self._respond(code)

    def _answer_param(self, code: int) -> pj.CallOpParam:
        """Every response to an offer with a LargeSC line provisions one audio medium per offered line."""
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        offer = sdp_munge.sdp_body(self.offer_message)
        if self.options.engine is not None and offer and sdp_munge.find_largesc(offer) is not None:
            prm.opt.audioCount = sdp_munge.audio_lines(offer)
        return prm

    def _respond(self, code: int) -> None:
        try:
            self.answer(self._answer_param(code))
        except pj.Error as exc:
            self.report(f"could not answer {code} to {self.peer}: {exc.reason}")

    def end(self, why: str) -> None:
        """Hang up (BYE, CANCEL or a final response as pjsua2 sees fit), remembering ``why``."""
        if self.hangup_at is not None or self.done:
            return
        self._end_message = why
        self.hangup_at = self.clock()
        self.report(f"hanging up: {why}")
        try:
            self.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            self._finish(0, exc.reason, f"call with {self.peer}: {why}; hang-up failed locally: {exc.reason}")

    def tick(self, now: float) -> None:
        """Apply the timeouts and refresh media statistics (see module docstring)."""
        if self.done:
            return
        o = self.options
        if self.hangup_at is not None:
            if now - self.hangup_at > o.teardown_timeout_s:
                self._finish(408, "Request Timeout", None)
            return
        if self.outgoing and self.confirmed_at is None and o.answer_timeout_s is not None:
            if now - self.started > o.answer_timeout_s:
                if self.responses == 0:
                    self._fail_message = (f"call to {self.peer} failed: no SIP response within {o.answer_timeout_s:g} s "
                                          f"(nothing answers there: is the peer running, and are address, port and "
                                          f"transport udp/tcp right?)")
                else:
                    self._fail_message = f"call to {self.peer} failed: not answered within {o.answer_timeout_s:g} s"
                self._gave_up = (408, "Request Timeout")  # not pjsip's 487 of our own CANCEL
                self.end(f"no answer within {o.answer_timeout_s:g} s")
                return
        if self.confirmed_at is not None and o.max_duration_s is not None and now - self.confirmed_at >= o.max_duration_s:
            self.end(f"maximum duration {o.max_duration_s:g} s reached")
        if now - self._stats_at >= _STATS_EVERY_S:
            self._sample_stats(now)

    # -- pjsua2 callbacks (agent thread, inside poll) ---------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._note_response(_rx_text(prm.e))
            ci = self.getInfo()
            self.state = ci.stateText
            code = f" ({ci.lastStatusCode} {ci.lastReason})" if ci.lastStatusCode else ""
            self.report(f"call state: {ci.stateText}{code}")
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
                self.confirmed_at = self.clock()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._sample_stats(self.clock())
                self._finish(ci.lastStatusCode, ci.lastReason, None)
        except Exception as exc:  # never unwind into pjsip
            self._error = f"internal error in call state callback: {exc!r}"

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        try:
            self._note_response(_rx_text(prm.e))
        except Exception as exc:
            self._error = f"internal error in transaction callback: {exc!r}"

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:
        try:
            if self._engine is None and prm.streamIdx == self._std_index:
                self._sample_stats(self.clock())  # last chance: the stream's counters go with it
        except Exception as exc:
            self._error = f"internal error in stream callback: {exc!r}"

    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        try:
            if self.options.engine is None:
                return
            remote = prm.remSdp.wholeSdp
            if not remote and not self.outgoing and self.confirmed_at is None:
                remote = sdp_munge.sdp_body(self.offer_message) or ""  # the INVITE's offer (remSdp is capped at 1 KB)
            text, note = self.largesc.rewrite(prm.sdp.wholeSdp, remote)
            if text is not None:
                prm.sdp.wholeSdp = text
            if note:
                self.report(note)
        except Exception as exc:  # leave pjsua2's SDP as it was: the call goes on with the fallback codec
            self.report(f"LargeSC left out of the SDP: {exc}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            if self.largesc.settled:
                self._start_engine()
                return
            info = self.getInfo()  # keep it alive: ``.media`` is a view into it
            for m in info.media:
                if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self._connect_standard(m.index)
                    break
        except Exception as exc:
            self._error = f"media set-up failed: {exc!r}"
            self.end(self._error)

    # -- negotiation helpers ----------------------------------------------------
    def _note_response(self, message: str) -> None:
        """Count responses to our INVITE and read the LargeSC answer out of them."""
        if not self.outgoing or not message.startswith("SIP/2.0"):
            return
        if "INVITE" not in next((ln for ln in message.splitlines() if ln.lower().startswith("cseq")), ""):
            return
        self.responses += 1
        body = sdp_munge.sdp_body(message)
        if body is not None:
            self.largesc.peer_answered(body)

    def _start_engine(self) -> None:
        if self._engine is not None or self.options.engine is None:
            return
        link, remote, port = self.largesc.link, self.largesc.remote, self.largesc.port
        assert link is not None and remote is not None and port is not None
        self.codec, self.bitrate_bps = "LargeSC/24000", float(link.send.maxbps)
        self.report(f"negotiated codec: LargeSC/24000 pt {link.payload_type}, we send to {remote.address}:"
                    f"{remote.port} at most {link.send.maxbps:g} bit/s ({link.send.maxcodebooks} codebooks, "
                    f"redundancy {link.send.maxred}, {link.ptime_ms} ms packets), we receive on port {port}")
        try:
            engine = self.options.engine(self._audio)
            engine.start(port, remote.address, remote.port, link)
        except Exception as exc:
            self._error = f"LargeSC media engine failed to start: {exc}"
            self.end(self._error)
            return
        self._engine = engine

    def _connect_standard(self, index: int) -> None:
        """Connect the standard leg after every media update: a re-INVITE (hold, resume) restarts pjsua2's stream."""
        codec = codec_of(self, index)
        if (self._std_index, (self.codec, self.bitrate_bps)) != (index, codec):
            self.codec, self.bitrate_bps = codec
            self.report(f"negotiated codec: {self.codec} (standard codec through pjsua2), {self.bitrate_bps:.0f} bit/s")
        self._std_index = index
        for problem in self._std.connect(self.getAudioMedia(index)):
            self._error = problem
            self.report(problem)

    def _sample_stats(self, now: float) -> None:
        self._stats_at = now
        duration = now - self.confirmed_at if self.confirmed_at is not None else 0.0
        try:
            if self._engine is not None:
                self._stats = self._engine.stats()
            elif self._std_index is not None:
                self._stats = stream_stats(self, self._std_index, self.codec, duration)
        except Exception as exc:  # stream already gone: keep the last sample
            if self._stats is None:
                self.report(f"(media statistics unavailable: {exc})")

    def release_media(self) -> None:
        """Stop the engine and take the standard leg off the bridge (also for a call that never ended)."""
        if self._engine is not None:  # stop() is idempotent
            try:
                self._engine.stop()
                self._stats = self._engine.stats()
            except Exception as exc:
                self._error = self._error or f"LargeSC media engine failed to stop: {exc}"
        self._std.release()

    def _finish(self, code: int, reason: str, message: str | None) -> None:
        if self.done:
            return
        self.done = True
        self.release_media()
        connected = self.confirmed_at is not None
        if self._gave_up is not None and not connected:
            code, reason = self._gave_up
        duration = self.clock() - self.confirmed_at if self.confirmed_at is not None else 0.0
        if message is None and connected:
            who = "the peer hung up" if self.hangup_at is None else f"we hung up: {self._end_message}"
            message = f"call {'to' if self.outgoing else 'from'} {self.peer} ended after {duration:.1f} s ({who})"
        elif message is None:
            message = self._fail_message or failure_message(self.peer, self.outgoing, code, reason)
            if self._fail_message is None and self.hangup_at is not None:
                message += f" (we hung up: {self._end_message})"
        self.result = CallResult(self.peer, self.outgoing, connected, code, reason, message, self.codec,
                                 self.bitrate_bps, duration, self._stats, self._error)
