"""SIP accounts: a local identity (no registrar) or a registration with digest authentication.

Registration lifecycle (pjsua2 drives it; callbacks arrive in ``poll()``)::

    create() --REGISTER--> [401/407 challenge] --REGISTER+Authorization--> 200: registered
                                              \\--> 401/403 again: failed (wrong credentials)
    shutdown() sends the un-REGISTER (Expires: 0); call it before libDestroy.

pjsua2 answers a digest challenge itself with the configured credentials
(realm ``*``: any realm). A registrar that rejects them again ends the
attempt: ``RegistrationState.failed`` with the status code and a hint.
Automatic retries are off, so one failure is final and reported once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pjsua2 as pj

from sip_agent.media.types import SrtpPolicy

_SRTP_USE = {SrtpPolicy.OFF: pj.PJMEDIA_SRTP_DISABLED, SrtpPolicy.OPTIONAL: pj.PJMEDIA_SRTP_OPTIONAL,
             SrtpPolicy.MANDATORY: pj.PJMEDIA_SRTP_MANDATORY}

_REG_HINTS = {
    401: "the registrar did not accept the credentials: check the user name and password",
    403: "the registrar refused the credentials or the user: check the user name, password and domain",
    404: "the registrar does not know this user/domain",
    407: "a proxy demanded credentials that were not accepted: check the user name and password",
    408: "no answer from the registrar: is it running at that address and transport?",
    503: "the registrar could not be reached (transport error): check the address, port and transport",
}


@dataclass(frozen=True)
class AccountSettings:
    """Who we are. Without ``registrar`` the account is local (calls only, nothing registered).

    ``user``/``domain`` form the address of record ``sip:user@domain``;
    ``username``/``password`` answer digest challenges (``username``
    defaults to ``user``). ``registrar`` is a SIP URI such as
    ``sip:127.0.0.1:5060`` (add ``;transport=tcp`` for TCP). ``sips``: our
    address is ``sips:`` (with a TLS transport): pjsip writes a ``sips:``
    Contact only for such an account, and a ``sips:`` dialog without one is
    refused by the peer (480, Warning 381 "SIPS Required"); over UDP/TCP the
    Contact stays ``sip:``. ``srtp``: pjsua2's own (standard-codec) line, SDES
    keys; ``srtp_plain_sip``: pjsua2 may send them over a plain UDP/TCP hop
    (else it refuses SRTP calls whose signalling is not TLS: 488).
    """

    user: str = "largesc"
    domain: str = "127.0.0.1"
    registrar: str | None = None
    username: str | None = None
    password: str | None = None
    expires_s: int = 300
    timeout_s: float = 10.0
    sips: bool = False
    srtp: SrtpPolicy = SrtpPolicy.OFF
    srtp_plain_sip: bool = False


@dataclass(frozen=True)
class RegistrationState:
    """Outcome of the last registration attempt (``code`` 0 while none has ended)."""

    code: int = 0
    reason: str = ""
    registered: bool = False

    @property
    def finished(self) -> bool:
        return self.code != 0

    @property
    def failed(self) -> bool:
        return self.finished and not self.registered

    def message(self, aor: str, registrar: str) -> str:
        """A one-line report naming the result and, on failure, the likely fix."""
        if self.registered:
            return f"registered {aor} at {registrar}: {self.code} {self.reason}"
        hint = _REG_HINTS.get(self.code, "see the status code")
        return f"registration of {aor} at {registrar} failed: {self.code} {self.reason} ({hint})"


IncomingHandler = Callable[[int, str, str], None]  # (pjsua call id, whole INVITE text, source "IP:port")


class AgentAccount(pj.Account):  # type: ignore[misc]  # pjsua2 is untyped (SWIG)
    """A pjsua2 account that records registration results and passes incoming calls on."""

    def __init__(self, settings: AccountSettings, on_incoming: IncomingHandler, report: Callable[[str], None]) -> None:
        super().__init__()
        self.settings = settings
        self.on_incoming = on_incoming
        self.report = report
        self.registration = RegistrationState()
        self.aor = f"{'sips' if settings.sips else 'sip'}:{settings.user}@{settings.domain}"

    def config(self, media: pj.TransportConfig) -> pj.AccountConfig:
        """The pjsua2 account configuration for these settings (RTP ports from ``media``)."""
        s = self.settings
        cfg = pj.AccountConfig()
        cfg.idUri = self.aor
        cfg.mediaConfig.transportConfig = media
        cfg.mediaConfig.srtpUse = _SRTP_USE[s.srtp]
        cfg.mediaConfig.srtpSecureSignaling = 0 if s.srtp_plain_sip else 1  # 1: keys only over a TLS hop
        srtp = cfg.mediaConfig.srtpOpt
        srtp.keyings.clear()
        srtp.keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)  # the policy is about SDES keys
        # One suite (RFC 4568's mandatory one): pjsua2's four a=crypto lines per audio line pushed an offer with
        # the LargeSC line past the 1024 bytes its Python SDP hook sees, and LargeSC was left out.
        crypto = pj.SrtpCrypto()
        crypto.name = "AES_CM_128_HMAC_SHA1_80"
        srtp.cryptos.clear()
        srtp.cryptos.append(crypto)
        if s.registrar:
            cfg.regConfig.registrarUri = s.registrar
            cfg.regConfig.registerOnAdd = True
            cfg.regConfig.timeoutSec = s.expires_s
            cfg.regConfig.retryIntervalSec = 0  # one attempt: a failure is reported, not retried silently
            cfg.regConfig.unregWaitMsec = 1000
        if s.password is not None:
            cred = pj.AuthCredInfo("digest", "*", s.username or s.user, 0, s.password)
            cfg.sipConfig.authCreds.append(cred)
        return cfg

    def open(self, media: pj.TransportConfig) -> None:
        """Create the account in pjsua2 (starts registering if a registrar is set)."""
        try:
            self.create(self.config(media), True)
        except pj.Error as exc:
            raise RuntimeError(f"cannot create SIP account {self.aor}: {exc.reason} ({exc.title})") from exc

    def registration_message(self) -> str:
        return self.registration.message(self.aor, self.settings.registrar or "(no registrar)")

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            registered = prm.code // 100 == 2 and prm.expiration > 0
            if prm.code // 100 == 2 and prm.expiration == 0:
                return  # the un-REGISTER at shutdown
            self.registration = RegistrationState(prm.code, prm.reason, registered)
            self.report(self.registration_message())
        except Exception as exc:  # never let an exception unwind into pjsip
            self.report(f"internal error in registration callback: {exc!r}")

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.on_incoming(prm.callId, prm.rdata.wholeMsg, prm.rdata.srcAddress)
        except Exception as exc:
            self.report(f"internal error handling an incoming call: {exc!r}")
