"""One SIP call: lifecycle, timeouts, LargeSC negotiation and the hand-off to a media engine.

Theory of operation
-------------------
States are pjsua2's invite states, reported through ``onCallState``::

    outgoing: dial()   -> CALLING -> [EARLY 1xx] -> CONNECTING 2xx -> CONFIRMED -> DISCONNECTED
    incoming: accept() -> INCOMING ---------------> CONNECTING 200 -> CONFIRMED -> DISCONNECTED

Every callback runs on the agent's thread inside ``AgentEndpoint.poll()``;
time is checked by ``tick(now)`` from the same loop (no timer threads):

the timeouts (answer, max duration, teardown) are ``call_timers.CallTimers``.
An outgoing call given up unanswered is hung up (CANCEL; pjsip holds it back
while no response at all has arrived) and its message tells "no response"
from "not answered" apart.

Negotiation (``sdp_munge``): when we offer, pjsua2 is given two audio media
and ``onCallSdpCreated`` turns the last m= line into the dedicated LargeSC
line on our own port; the peer's answer is read from the response that
carried it (``onCallState``/``onCallTsxState`` message text). When we answer,
the offer (INVITE text or ``remSdp``) is searched for a LargeSC line and
pjsua2's answer is rewritten to accept it. ``onCallMediaState`` follows each
completed exchange: LargeSC settled -> start the media engine (once); else
connect the WAV player/recorder to pjsua2's active audio stream.

The media side (engine or standard stream, codec, statistics) is
``call_media.CallMedia``. Finishing (DISCONNECTED or a forced end) releases
it, keeps the last media statistics and sets ``result``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import pjsua2 as pj

from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.media.engine import EngineFactory
from sip_agent.media.audio import CallAudio
from sip_agent.media.sound import SoundCard
from sip_agent.media.types import AudioFiles, SrtpPolicy
from sip_agent.sip import sdp_munge
from sip_agent.sip.call_result import CallResult, failure_message
from sip_agent.sip.negotiation import LargeScNegotiation
from sip_agent.sip.legs import call_legs
from sip_agent.sip.call_media import CallMedia
from sip_agent.sip.pj_audio import StandardLeg
from sip_agent.sip.call_timers import CallTimers, Timeout
from sip_agent.sip.sip_text import is_invite_response, received_text

_STATS_EVERY_S = 0.5


@dataclass
class CallOptions:
    """Per-call behaviour. ``engine`` None: LargeSC is neither offered nor accepted.

    ``standard_audio``: what pjsua2's own media plays instead of ``audio`` on a standard codec (a 16-bit WAV copy).
    ``sound``: a sound card for every call in place of the files (sip/legs.py).
    ``latch``: the LargeSC line takes the peer's media address from its first packets (NAT).
    ``srtp``: the media encryption policy of both lines.
    ``sdes_allowed``: SDES keys (``a=crypto``) may go into this call's SDP: its signalling is TLS, or the user
    asked for plain SIP explicitly (``--sdes-over-plain-sip``). False: offer and accept no keys whatever ``srtp``
    says (``srtp`` mandatory then refuses the call); sip/security_cli.py sets it.
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
    latch: bool = False
    srtp: SrtpPolicy = SrtpPolicy.OPTIONAL
    sdes_allowed: bool = False


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
        self.started = clock()
        self.timers = CallTimers(self.started, options.answer_timeout_s, options.max_duration_s,
                                 options.teardown_timeout_s)
        self.confirmed_at: float | None = None
        self.hangup_at: float | None = None
        self.responses = 0  # responses to our INVITE seen so far (0 = the peer never answered at all)
        self.done = False
        self.result: CallResult | None = None
        self._end_message: str | None = None  # why we hung up
        self._fail_message: str | None = None  # how a call we gave up on failed (timeouts)
        self._gave_up: tuple[int, str] | None = None  # the status of a call we gave up on
        self._error: str | None = None
        self.largesc = LargeScNegotiation(options.host, options.params, latch=options.latch, srtp=options.srtp,
                                          sdes_allowed=options.sdes_allowed)
        default_audio, default_std = call_legs(options)
        self.media = CallMedia(options.engine, audio or default_audio, standard or default_std, report)
        self._stats_at = 0.0

    # -- actions ------------------------------------------------------------
    def dial(self, uri: str) -> None:
        """Send the INVITE (two audio media when LargeSC is offered). Fails the call on a local error."""
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 2 if self.options.engine is not None else 1
        if self.options.engine is not None and self.largesc.blocked is not None:
            self._finish(488, "Not Acceptable Here", f"cannot call {uri}: {self.largesc.blocked}")
            return
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
        if self.options.engine is not None and self.largesc.blocked is not None:
            self._fail_message = f"call from {self.peer} refused (488): {self.largesc.blocked}"
            self.reject(488)
            return
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
        due = self.timers.due(now, self.outgoing, self.confirmed_at, self.hangup_at)
        if due is Timeout.TEARDOWN_OVERDUE:
            self._finish(408, "Request Timeout", None)
            return
        if self.hangup_at is not None:
            return  # waiting for DISCONNECTED
        if due is Timeout.NOT_ANSWERED:
            self._give_up()
            return
        if due is Timeout.MAX_DURATION:
            self.end(f"maximum duration {self.options.max_duration_s:g} s reached")
        if now - self._stats_at >= _STATS_EVERY_S:
            self._sample_stats(now)

    def _give_up(self) -> None:
        limit = self.options.answer_timeout_s
        if self.responses == 0:
            self._fail_message = (f"call to {self.peer} failed: no SIP response within {limit:g} s (nothing answers "
                                  f"there: is the peer running, and are address, port and transport udp/tcp right?)")
        else:
            self._fail_message = f"call to {self.peer} failed: not answered within {limit:g} s"
        self._gave_up = (408, "Request Timeout")  # not pjsip's 487 of our own CANCEL
        self.end(f"no answer within {limit:g} s")

    # -- pjsua2 callbacks (agent thread, inside poll) ---------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._note_response(received_text(prm.e))
            ci = self.getInfo()
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
            self._note_response(received_text(prm.e))
        except Exception as exc:
            self._error = f"internal error in transaction callback: {exc!r}"

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:
        try:
            if not self.media.on_largesc and prm.streamIdx == self.media.std_index:
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
                error = self.media.start_largesc(self.largesc)
                if error is not None:
                    self._error = error
                    self.end(error)
                return
            info = self.getInfo()  # keep it alive: ``.media`` is a view into it
            for m in info.media:
                if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    problems = self.media.connect_standard(self, m.index)
                    self._error = problems[-1] if problems else self._error
                    break
        except Exception as exc:
            self._error = f"media set-up failed: {exc!r}"
            self.end(self._error)

    # -- negotiation helpers ----------------------------------------------------
    def _note_response(self, message: str) -> None:
        """Count responses to our INVITE and read the LargeSC answer out of them."""
        if not self.outgoing or not is_invite_response(message):
            return
        self.responses += 1
        body = sdp_munge.sdp_body(message)
        if body is not None:
            note = self.largesc.peer_answered(body)
            if note:
                self.report(note)

    def _sample_stats(self, now: float) -> None:
        self._stats_at = now
        self.media.sample(self, now - self.confirmed_at if self.confirmed_at is not None else 0.0)

    def release_media(self) -> None:
        """Stop the engine and take the standard leg off the bridge (also for a call that never ended)."""
        error = self.media.release()
        self._error = self._error or error

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
        self.result = CallResult(self.peer, self.outgoing, connected, code, reason, message, self.media.codec,
                                 self.media.bitrate_bps, duration, self.media.stats, self._error)
