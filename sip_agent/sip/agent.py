"""The user agent: one endpoint, one account, calls out or in, and an orderly shutdown.

Everything runs on the thread that created the ``Agent`` (see
``endpoint.py``): ``run_*`` loop over ``poll()`` + ``tick()`` until the work
is done, the deadline passes or ``stop`` is set (the command line sets it on
SIGINT/SIGTERM, which then hangs up cleanly instead of aborting).

Admission (``gate``, caller_auth.py): every new INVITE passes the gate
first (source allow-list, digest); what it refuses is answered there (401
with its challenges, 403, 400) and never reaches ``incoming``.

Shutdown order (``close``): hang up live calls and wait (bounded) for them
to end, drop every Call object, release media, un-REGISTER and drop the
account, then ``libDestroy``. Dropping a pjsua2 object after libDestroy
aborts the process, so the agent keeps the only references.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from typing import Callable

import pjsua2 as pj

from sip_agent.media.audio import CallAudio
from sip_agent.sip.account import AccountSettings, AgentAccount, RegistrationState
from sip_agent.sip.call import AgentCall, CallOptions
from sip_agent.sip.caller_auth import Admission, CallerGate
from sip_agent.sip.call_result import CallResult
from sip_agent.sip.endpoint import AgentEndpoint, EndpointConfig
from sip_agent.sip.legs import call_legs
from sip_agent.sip.pj_audio import StandardLeg

Report = Callable[[str], None]
IncomingHandler = Callable[[int, str], None]  # (pjsua2 call id, the INVITE's text)
_POLL_MS = 20


class Agent:
    """A SIP user agent (use as a context manager so ``close`` always runs).

    ``incoming`` decides what happens to an incoming INVITE; the default,
    ``answer_incoming``, answers it (486 beyond ``max_calls``). A gateway
    sets its own, which rings, places the other leg and answers later.
    """

    def __init__(self, endpoint: EndpointConfig, account: AccountSettings, options: CallOptions,
                 report: Report = print, stop: threading.Event | None = None, max_calls: int = 1,
                 gate: CallerGate | None = None) -> None:
        self.options, self.report, self.max_calls, self.gate = options, report, max_calls, gate
        self.stop = stop or threading.Event()
        self.endpoint = AgentEndpoint(endpoint)
        self.account: AgentAccount | None = AgentAccount(account, self._on_incoming, report)
        # With TLS, a second local account of the other scheme: a sips: request gets a sips: Contact (pjsip
        # peers refuse a sips: dialog without one) and a sip: request over TLS a sip: Contact (baresip 1.0
        # cannot follow a sips: Contact).
        self.other: AgentAccount | None = None
        if "tls" in endpoint.transports:
            twin = dataclasses.replace(account, registrar=None, sips=not account.sips)
            self.other = AgentAccount(twin, self._on_incoming, report)
        self.calls: list[AgentCall] = []
        self.results: list[CallResult] = []
        self.incoming: IncomingHandler = self.answer_incoming
        self.answered = self.rejected_busy = 0
        self.refused: dict[int, int] = {}  # status code -> INVITEs the gate answered with it
        try:
            self.account.open(self.endpoint.media_transport_config())
            if self.other is not None:
                self.other.open(self.endpoint.media_transport_config())
                self.endpoint.select_account = self._select_account
        except Exception:
            self.close()
            raise

    @property
    def sip_port(self) -> int:
        return self.endpoint.sip_port

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loop -----------------------------------------------------------------
    def step(self) -> None:
        """One turn of the loop: SIP events, call timers, finished calls collected and reported."""
        self.endpoint.poll(_POLL_MS)
        now = time.monotonic()
        for call in list(self.calls):
            call.tick(now)
            if call.done:  # drop it here, outside its own callbacks
                self.calls.remove(call)
                if call.result is not None:
                    self.results.append(call.result)
                    for line in call.result.lines():
                        self.report(line)

    def run_until(self, finished: Callable[[], bool], timeout_s: float | None) -> bool:
        """Poll until ``finished()`` (True), the timeout or ``stop`` (False)."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not finished():
            if self.stop.is_set() or (end is not None and time.monotonic() >= end):
                return False
            self.step()
        return True

    # -- registration ------------------------------------------------------------
    def wait_registration(self) -> RegistrationState:
        """Wait for the registrar's verdict (bounded by the account's ``timeout_s``)."""
        acc = self.account
        assert acc is not None
        if not acc.settings.registrar:
            return RegistrationState(200, "no registrar (local account)", True)
        if not self.run_until(lambda: acc.registration.finished, acc.settings.timeout_s):
            acc.registration = RegistrationState(408, f"no answer within {acc.settings.timeout_s:g} s", False)
            self.report(acc.registration_message())
        return acc.registration

    # -- calls ------------------------------------------------------------------
    def call(self, uri: str) -> CallResult:
        """Call ``uri`` and run the call to its end; returns how it went."""
        assert self.account is not None
        self.report(f"calling {uri}")
        call = AgentCall(self._account_for(uri), self.options, self.report, uri)
        self.calls.append(call)
        call.dial(uri)
        if not self.run_until(lambda: call.done, None):
            call.end("interrupted")
            self.run_until(lambda: call.done, self.options.teardown_timeout_s + 1)
        self.step()  # collect the result
        return self.results[-1] if self.results else CallResult(uri, True, False, 0, "", "call did not finish")

    def answer(self, calls: int = 1, timeout_s: float | None = None) -> list[CallResult]:
        """Answer incoming calls until ``calls`` have ended (0: until stopped) or ``timeout_s`` passes."""
        config = self.endpoint.config
        tls = f", TLS on port {self.endpoint.tls_port}" if "tls" in config.transports else ""
        self.report(f"waiting for calls on {config.host}:{self.sip_port} ({'/'.join(config.transports)}{tls})")
        self.run_until(lambda: calls > 0 and len(self.results) >= calls and not self.calls, timeout_s)
        return list(self.results)

    def _account_for(self, uri: str) -> AgentAccount:
        """The account whose scheme matches ``uri`` (sips: or sip:), see ``__init__``."""
        assert self.account is not None
        secure = uri.strip().lower().startswith("sips:")
        if self.other is not None and secure != self.account.settings.sips:
            return self.other
        return self.account

    def _select_account(self, request: str) -> int | None:
        """pjsua account id for an incoming request (the endpoint's onSelectAccount)."""
        parts = request.split(" ", 2)
        return self._account_for(parts[1]).getId() if len(parts) == 3 else None

    def _on_incoming(self, call_id: int, invite: str, source: str) -> None:
        if self.gate is not None:
            admission = self.gate.decide(source, invite, time.monotonic())
            if admission.code:
                self.refuse(call_id, invite, source, admission)
                return
        self.incoming(call_id, invite)

    def refuse(self, call_id: int, invite: str, source: str, admission: Admission) -> None:
        """Answer an INVITE the gate did not admit with its status and headers (WWW-Authenticate on a 401)."""
        call = self.incoming_call(call_id, invite)
        self.refused[admission.code] = self.refused.get(admission.code, 0) + 1
        self.report(f"incoming call from {call.peer} ({source}): {admission.code} {admission.reason}, "
                    f"{admission.why}")
        prm = pj.CallOpParam(True)
        prm.statusCode, prm.reason = admission.code, admission.reason
        for name, value in admission.headers:
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        try:
            call.answer(prm)
        except pj.Error as exc:
            self.report(f"could not answer {admission.code} to {call.peer}: {exc.reason}")
        call.done = True  # dropped on the next step

    def incoming_call(self, call_id: int, invite: str, audio: CallAudio | None = None,
                      standard: StandardLeg | None = None) -> AgentCall:
        """Take charge of an incoming call (not answered yet), with its own audio if given (see AgentCall)."""
        assert self.account is not None
        account = self._account_for(invite.split(" ", 2)[1] if invite.count(" ") >= 2 else "")
        call = AgentCall(account, self.options, self.report, _from_uri(invite), call_id, invite,
                         audio=audio, standard=standard)
        self.calls.append(call)
        return call

    def outgoing_call(self, uri: str, audio: CallAudio | None = None, standard: StandardLeg | None = None,
                      options: CallOptions | None = None) -> AgentCall:
        """Dial ``uri`` without waiting (the caller runs the loop), with its own audio and options if given."""
        assert self.account is not None
        call = AgentCall(self._account_for(uri), options or self.options, self.report, uri, audio=audio,
                         standard=standard)
        self.calls.append(call)
        call.dial(uri)
        return call

    def reject(self, call_id: int, invite: str, code: int, why: str) -> None:
        """Answer an incoming INVITE with the final status ``code``; nothing to report afterwards."""
        call = self.incoming_call(call_id, invite)
        self.report(f"incoming call from {call.peer}: {why} ({code})")
        call.reject(code)
        call.done = True  # dropped on the next step

    def answer_incoming(self, call_id: int, invite: str) -> None:
        """The default ``incoming``: answer with 200, or 486 Busy Here beyond ``max_calls``."""
        if len(self.calls) >= self.max_calls:
            self.rejected_busy += 1
            self.reject(call_id, invite, 486, f"busy: {self.max_calls} calls already")
            return
        self.answered += 1
        audio, standard = call_legs(self.options, self.answered)
        call = self.incoming_call(call_id, invite, audio=audio, standard=standard)
        self.report(f"incoming call from {call.peer}")
        call.accept()

    # -- shutdown -----------------------------------------------------------------
    def _end_calls(self, why: str) -> None:
        for call in self.calls:
            call.end(why)

    def close(self) -> None:
        """Hang up, release everything in the safe order, destroy the library (idempotent)."""
        if self.account is None and not self.calls:
            self.endpoint.destroy()
            return
        self._end_calls("agent shutting down")
        self.run_until(lambda: all(c.done for c in self.calls), self.options.teardown_timeout_s + 1)
        self.step()  # report the calls that just ended
        while self.calls:  # no reference may outlive libDestroy (not even a loop variable)
            self.calls.pop().release_media()  # a call the peer never let go: its media goes now too
        gc.collect()
        self.endpoint.select_account = None
        for acc in (self.account, self.other):
            if acc is not None:
                try:
                    acc.shutdown()  # un-REGISTER; required before libDestroy
                except pj.Error as exc:
                    self.report(f"account shutdown: {exc.reason}")
        self.account = self.other = acc = None
        gc.collect()
        self.endpoint.destroy()


def _from_uri(message: str) -> str:
    """The caller's URI from a request's From header (``sip:alice@host``), without display name or tag."""
    for line in message.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in ("from", "f"):
            value = value.strip()
            if "<" in value and ">" in value:
                return value[value.index("<") + 1 : value.index(">")]
            return value.split(";")[0].strip()
    return "unknown peer"
