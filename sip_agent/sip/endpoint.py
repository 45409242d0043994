"""The pjsua2 library, set up once per process: transports, codecs, audio device, event pump.

Threading model: pjsua2 runs with ``threadCnt = 0``, so no pjsip worker
thread exists; the agent's main thread calls ``poll()`` (libHandleEvents)
and every SIP callback (call/account state, SDP, media state) runs inside
that call, on the main thread. pjmedia's own threads (RTP ioqueue, the
null-device clock) are pjlib threads and only run C code. Any other Python
thread that must call pjsua2 calls ``register_thread()`` first (pjlib
aborts the process on calls from unregistered threads).

pjsua2 allows one Endpoint per process; ``AgentEndpoint`` refuses a second.
Shut down in this order (else libDestroy aborts with exit code 134): hang up
and drop calls, delete players/recorders, ``Account.shutdown()``, then
``AgentEndpoint.destroy()``.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import pjsua2 as pj

from sip_agent.sip.tls import TlsSettings, tls_port

_FALLBACK_CODECS = ("PCMU", "PCMA", "G722")
_alive = threading.Lock()  # held while an AgentEndpoint exists in this process


# pjsua's compile-time PJSUA_MAX_CALLS in the pjsua2-python wheel: a larger maxCalls is clamped to it
# silently (measured: the 5th simultaneous INVITE got pjsua's own 486, "too many calls").
PJSUA_CALL_SLOTS = 4


@dataclass(frozen=True)
class EndpointConfig:
    """Process-wide SIP settings.

    ``sip_port`` 0 picks a port free for both UDP and TCP (and the TLS port,
    ``tls.tls_port``). ``transports``: any of ``udp``, ``tcp``, ``tls``;
    ``tls``: certificate files and verification for ``tls``. ``codecs``: the standard codecs pjsua2 may use,
    best first (every other codec is disabled, which also keeps the SDP small:
    pjsua2's Python SDP hook sees only SDP bodies up to 1024 bytes).
    pjsua2's own sound device is always the null one (its clock still runs):
    sound cards go through PortAudio (media/sound.py, sip/legs.py).
    ``log_file``: pjsip's log (with every SIP message) at ``log_level``.
    """

    host: str = "127.0.0.1"
    sip_port: int = 0
    transports: tuple[str, ...] = ("udp", "tcp")
    tls: TlsSettings = TlsSettings()
    codecs: tuple[str, ...] = _FALLBACK_CODECS
    log_file: str | None = None
    log_level: int = 5
    console_log_level: int = 0
    user_agent: str = "LargeSC-agent/0.1 (pjsua2)"


def free_sip_port(host: str, attempts: int = 100, tcp_span: int = 1) -> int:
    """A port number free for UDP on ``host``, and for TCP on it and the ``tcp_span - 1`` ports after it."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            if port + tcp_span > 65536:
                continue
            try:
                for n in range(tcp_span):
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                        tcp.bind((host, port + n))
            except OSError:
                continue
            return port
    raise OSError(f"no port free for both UDP and TCP on {host} after {attempts} attempts")


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send what C code writes to file descriptor 1 to /dev/null for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def error_text(exc: BaseException) -> str:
    """A readable one-liner for a pjsua2 ``Error`` (its ``info()``) or any other exception."""
    if isinstance(exc, pj.Error):
        return f"{exc.title}: {exc.reason} (status {exc.status})"
    return f"{type(exc).__name__}: {exc}"


AccountSelector = Callable[[str], "int | None"]  # whole request text -> pjsua account id (None: pjsua's pick)


class _Endpoint(pj.Endpoint):  # type: ignore[misc]  # pjsua2 is untyped (SWIG)
    """pjsua2's Endpoint with the one callback we need: which account takes an incoming request."""

    def __init__(self) -> None:
        super().__init__()
        self.select_account: AccountSelector | None = None

    def onSelectAccount(self, prm: pj.OnSelectAccountParam) -> None:
        try:
            if self.select_account is not None:
                found = self.select_account(prm.rdata.wholeMsg)
                if found is not None:
                    prm.accountIndex = found
        except Exception:  # never unwind into pjsip: pjsua's own choice stands
            pass


class AgentEndpoint:
    """Owns ``pj.Endpoint``: create, start, poll, destroy (see module docstring).

    ``select_account``: set by the agent to choose the account of an incoming request.
    """

    def __init__(self, config: EndpointConfig) -> None:
        if not _alive.acquire(blocking=False):
            raise RuntimeError("pjsua2 allows one Endpoint per process; run each agent in its own process")
        self.config = config
        self.ep = _Endpoint()
        self._destroyed = False
        self.sip_port = config.sip_port or free_sip_port(config.host, tcp_span=2 if "tls" in config.transports else 1)
        self.tls_port = tls_port(self.sip_port, config.transports)
        try:
            with _quiet_stdout():  # pjlib logs its start-up at level 5 before libInit can lower it
                self.ep.libCreate()
            self.ep.libInit(self._ep_config())
            self.ep.audDevManager().setNullDev()
            self._set_codecs()
            self._create_transports()
            self.ep.libStart()
        except pj.Error as exc:
            self.destroy()
            raise RuntimeError(f"cannot start the SIP endpoint on {config.host}:{self.sip_port}: {error_text(exc)}") from exc
        except (ValueError, RuntimeError):  # a bad setting, named by the check that found it
            self.destroy()
            raise

    def _ep_config(self) -> pj.EpConfig:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0  # callbacks run inside poll(), on our thread
        cfg.uaConfig.maxCalls = PJSUA_CALL_SLOTS  # beyond it pjsua answers 486 itself, before we see the INVITE
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.userAgent = self.config.user_agent
        cfg.logConfig.level = self.config.log_level if self.config.log_file else self.config.console_log_level
        cfg.logConfig.consoleLevel = self.config.console_log_level
        cfg.logConfig.msgLogging = 1
        if self.config.log_file:
            cfg.logConfig.filename = self.config.log_file
        cfg.medConfig.noVad = True  # continuous RTP: honest loss figures, clean recordings
        cfg.medConfig.clockRate = 16000
        return cfg

    def _create_transports(self) -> None:
        kinds = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}
        for name in self.config.transports:
            if name not in kinds:
                raise ValueError(f"unknown SIP transport {name!r}; use udp, tcp and/or tls")
            tc = pj.TransportConfig()
            tc.port = self.tls_port if name == "tls" else self.sip_port
            tc.boundAddress = self.config.host
            if name == "tls":
                self._tls_config(tc.tlsConfig)
            try:
                self.ep.transportCreate(kinds[name], tc)
            except pj.Error as exc:
                raise RuntimeError(
                    f"cannot listen for SIP over {name.upper()} on {self.config.host}:{tc.port} "
                    f"({error_text(exc)}): is another program using that port?"
                ) from exc

    def _tls_config(self, cfg: pj.TlsConfig) -> None:
        """TLS 1.2 at least; verification as ``TlsSettings`` says (tls.py)."""
        s = self.config.tls
        cfg.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3  # pjsip's default also allows 1.0/1.1
        cfg.certFile = str(s.cert or "")
        cfg.privKeyFile = str(s.key or "")
        cfg.CaListFile = str(s.ca or "")
        cfg.verifyServer = s.verify
        cfg.verifyClient = s.verify_client
        cfg.requireClientCert = s.verify_client

    def _set_codecs(self) -> None:
        wanted = [c.upper() for c in self.config.codecs]
        for info in self.ep.codecEnum2():
            name = info.codecId.split("/")[0].upper()
            priority = 200 - wanted.index(name) if name in wanted else 0
            self.ep.codecSetPriority(info.codecId, priority)

    def media_transport_config(self) -> pj.TransportConfig:
        """RTP ports for pjsua2's own streams: a random even start, so parallel agents rarely collide."""
        tc = pj.TransportConfig()
        tc.boundAddress = self.config.host
        tc.port = random.randrange(20000, 40000, 2)
        tc.portRange = 2000
        return tc

    @property
    def select_account(self) -> AccountSelector | None:
        return self.ep.select_account

    @select_account.setter
    def select_account(self, selector: AccountSelector | None) -> None:
        self.ep.select_account = selector

    def register_thread(self, name: str = "py-thread") -> None:
        """Register the calling thread with pjlib if it is not yet (required before any pjsua2 call)."""
        if not self.ep.libIsThreadRegistered():
            self.ep.libRegisterThread(name)

    def poll(self, timeout_ms: int = 20) -> None:
        """Run pjsip's timers and network events for up to ``timeout_ms``; callbacks fire in here."""
        if not self._destroyed:
            self.ep.libHandleEvents(timeout_ms)

    def destroy(self) -> None:
        """libDestroy (hangs up what is left); call after calls, media and accounts are released."""
        if self._destroyed:
            return
        self._destroyed = True
        try:
            self.ep.libDestroy()
        finally:
            _alive.release()
