"""The one place with sockets: an asyncio UDP adapter that drives an ``RtpSession``.

Theory of operation
-------------------
``start()`` binds the RTP socket on an even port and RTCP on the next one
(or a single socket with ``rtcp_mux``), hands the session its clock origin
and starts one timer task. The task sleeps until the session's next
deadline (capped at ``MAX_SLEEP_MS``), calls ``session.poll(now_ms)`` and
sends what it returns. Datagrams that arrive are passed to the session with
the arrival time. The clock is ``time.monotonic()`` in milliseconds; the
session's SR timestamps get the wall-clock offset so NTP times are real.
Datagrams pass ``rtp.peer.PeerFilter`` first: only the negotiated peer's
RTP and RTCP addresses reach the session, the rest is counted
(``rtp_refused_source``, ``rtcp_refused_source``) and dropped unparsed. With
``latch=True`` (or no configured remote) the first RTP and RTCP datagrams fix
the peer's addresses once (symmetric RTP, for a peer behind a NAT). ``stop()`` sends a BYE (optional), ends
the task and closes the sockets. ``last_received_ms`` is when the last
datagram from the peer arrived (malformed, held on probation or RTCP included;
with SRTP only authenticated ones), for callers that watch for a silent peer.

With ``srtp`` keys (``rtp.srtp``, agreed by SDES) every datagram is protected
in ``send``, the one way out: what cannot be protected is dropped and counted
(``srtp_protect_failed``), never sent in the clear. Inbound, after the
address filter and before the session, datagrams are unprotected; those that
fail authentication, are replays or are not SRTP are dropped and counted
(``srtp_auth_failed``, ``srtp_replayed``, ``srtp_malformed``). While a latch
is pending, unprotect comes first, so only an authenticated datagram latches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import pylibsrtp

from rtp.peer import PeerFilter, Verdict
from rtp.session import Datagram, RtpSession
from rtp.srtp import SrtpContext, SrtpError, SrtpKeys

MAX_SLEEP_MS = 100.0
log = logging.getLogger(__name__)
_BIND_ATTEMPTS = 50
Address = tuple[str, int]


def monotonic_ms() -> float:
    """The transport's clock: ``time.monotonic()`` in milliseconds."""
    return time.monotonic() * 1000.0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "RtpTransport", rtcp: bool) -> None:
        self.owner, self.rtcp = owner, rtcp

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._received(data, (addr[0], addr[1]), self.rtcp)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the peer is not up yet: count, keep going.
        self.owner.session.counters["socket_errors"] += 1


class RtpTransport:
    """Bind RTP (+ RTCP) sockets and run ``session`` on the event loop.

    Args:
        session: the sans-IO session to drive.
        host: local address to bind (tests use 127.0.0.1).
        port: local RTP port, even; 0 picks a free even/odd pair.
        remote: the peer's RTP address; None learns it from the first datagram (as ``latch``).
        remote_rtcp: the peer's RTCP address (default: RTP port + 1, or RTP with mux).
        rtcp_mux: one socket for RTP and RTCP (RFC 5761).
        latch: learn the peer's addresses from its first RTP and RTCP datagrams (NAT), once.
        srtp: SDES-agreed keys: SRTP/SRTCP both ways (None: plain RTP).
    """

    def __init__(
        self,
        session: RtpSession,
        host: str = "127.0.0.1",
        port: int = 0,
        remote: Address | None = None,
        remote_rtcp: Address | None = None,
        rtcp_mux: bool = False,
        latch: bool = False,
        srtp: SrtpKeys | None = None,
    ) -> None:
        if port % 2:
            raise ValueError(f"RTP port {port} must be even (RTCP uses the next port)")
        self.session, self.host, self.port = session, host, port
        self.rtcp_mux = rtcp_mux
        if remote_rtcp is None and remote is not None:
            remote_rtcp = remote if rtcp_mux else (remote[0], remote[1] + 1)
        self.peer = PeerFilter(remote, remote_rtcp, latch=latch or remote is None)
        self.srtp = SrtpContext(srtp) if srtp is not None else None
        self._admitted = {False: False, True: False}  # has PeerFilter seen an RTP / RTCP datagram yet
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.last_received_ms: float | None = None  # any datagram, on the transport's clock

    @property
    def remote(self) -> Address | None:
        """Where RTP goes: the negotiated or latched peer (None until known)."""
        return self.peer.rtp

    @property
    def remote_rtcp(self) -> Address | None:
        """Where RTCP goes."""
        if self.peer.rtcp is not None:
            return self.peer.rtcp
        if self.peer.rtp is None:
            return None
        return self.peer.rtp if self.rtcp_mux else (self.peer.rtp[0], self.peer.rtp[1] + 1)

    @property
    def local_rtp_port(self) -> int:
        return self.port

    @property
    def local_rtcp_port(self) -> int:
        return self.port if self.rtcp_mux else self.port + 1

    async def _bind(self, port: int, rtcp: bool) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self, rtcp), local_addr=(self.host, port))
        return transport

    async def _bind_pair(self) -> None:
        if self.port:
            self._rtp = await self._bind(self.port, False)
            if not self.rtcp_mux:
                self._rtcp = await self._bind(self.port + 1, True)
            return
        for _ in range(_BIND_ATTEMPTS):
            rtp = await self._bind(0, False)
            port = rtp.get_extra_info("sockname")[1]
            if port % 2 == 0:
                if self.rtcp_mux:
                    self._rtp, self.port = rtp, port
                    return
                try:
                    self._rtcp = await self._bind(port + 1, True)
                except OSError:
                    rtp.close()
                    continue
                self._rtp, self.port = rtp, port
                return
            rtp.close()
        raise OSError(f"no free even/odd UDP port pair on {self.host} after {_BIND_ATTEMPTS} attempts")

    async def start(self) -> None:
        """Bind the sockets, start the session's clocks and the timer task."""
        await self._bind_pair()
        if self.session.config.ntp_offset_ms == 0.0:
            offset = time.time() * 1000.0 - monotonic_ms()
            self.session.config = dataclasses.replace(self.session.config, ntp_offset_ms=offset)
        self.session.start(monotonic_ms())
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, bye: bool = True, reason: str = "") -> None:
        """Send BYE (if asked and a peer is known), stop the timer, close the sockets.

        If the timer task died with an exception (a media source that raised),
        the sockets are still closed and the exception is raised here.
        """
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        finally:
            if bye and self._rtp is not None:
                self.send([self.session.bye(monotonic_ms(), reason)])
            for t in (self._rtp, self._rtcp):
                if t is not None:
                    t.close()
            self._rtp = self._rtcp = None

    def wake(self) -> None:
        """Make the timer task poll the session now (after an external change)."""
        self._wake.set()

    def send(self, datagrams: list[Datagram]) -> None:
        """Put session output on the wire (RTCP on its socket unless muxed)."""
        for d in datagrams:
            if d.rtcp and not self.rtcp_mux:
                sock, addr = self._rtcp, self.remote_rtcp
            else:
                sock, addr = self._rtp, self.remote
            if sock is None or addr is None:
                self.session.counters["unsent_no_peer"] += 1
                continue
            data = d.data
            if self.srtp is not None:
                try:
                    data = self.srtp.protect_rtcp(data) if d.rtcp else self.srtp.protect(data)
                except (pylibsrtp.Error, ValueError):  # too long, or a sequence number sent twice
                    self.session.counters["srtp_protect_failed"] += 1
                    continue
            sock.sendto(data, addr)

    def _received(self, data: bytes, addr: Address, rtcp: bool) -> None:
        try:
            self._dispatch(data, addr, rtcp)
        except Exception:  # a failing sink must not close the socket (asyncio would)
            self.session.counters["sink_errors"] += 1
            log.exception("RTP session callback failed on a received datagram")

    def _dispatch(self, data: bytes, addr: Address, rtcp: bool) -> None:
        now = monotonic_ms()
        if self.rtcp_mux:
            rtcp = len(data) >= 2 and 192 <= data[1] <= 223  # RFC 5761 demultiplexing
        # With SRTP, a latch is won only by an authenticated datagram: a stranger's garbage cannot take it.
        latching = self.srtp is not None and self.peer.latch and not self._admitted[rtcp]
        if not latching and not self._admit(addr, rtcp):
            return
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect_rtcp(data) if rtcp else self.srtp.unprotect(data)
            except SrtpError as exc:
                self.session.counters[exc.failure.value] += 1
                return
        if latching and not self._admit(addr, rtcp):
            return
        self.last_received_ms = now
        if rtcp:
            self.session.receive_rtcp(data, now)
        else:
            self.session.receive_rtp(data, now)

    def _admit(self, addr: Address, rtcp: bool) -> bool:
        self._admitted[rtcp] = True  # PeerFilter latches (when it may) on the first datagram it sees
        if self.peer.admit(addr, rtcp) is Verdict.REFUSED_SOURCE:
            self.session.counters["rtcp_refused_source" if rtcp else "rtp_refused_source"] += 1
            return False
        return True

    async def _run(self) -> None:
        while True:
            now = monotonic_ms()
            self.send(self.session.poll(now))
            delay = min(self.session.next_deadline_ms() - monotonic_ms(), MAX_SLEEP_MS)
            self._wake.clear()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay / 1000.0)
                except asyncio.TimeoutError:
                    pass
