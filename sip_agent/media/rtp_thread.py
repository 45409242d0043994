"""The RTP side of a media engine: one thread running ``rtp/`` for one call (both engines use it).

Theory of operation
-------------------
``RtpThread`` builds an ``RtpSession`` from the SDP agreement (payload type,
the peer's ptime, a session bandwidth the engine sizes: RFC 3550 6.2 derives
the RTCP interval from it) and ``start`` runs ``rtp.transport.RtpTransport``
on its own asyncio loop in a daemon thread, RTP on the negotiated port and
RTCP on the next one. It returns once the sockets are bound (or raises with
the problem and the fix).

That thread alone owns the session. Arriving RTP of the negotiated payload
type goes to the engine's ``on_payload(packet, arrival_ms)`` (on this thread);
by default it is queued with its arrival time (``arrivals``, bounded) for a
codec thread. The peer's latest RTCP loss report is kept (``loss_report``:
XR Loss RLE, else the RR fraction). Two ways to send: ``hand_over`` (any
thread; the engine keeps its own frame clock, the session stamps sequence
number, timestamp = frame index x 1920 and the marker bit), or a ``source``
the session polls on its own ptime clock. ``stop`` sends RTCP BYE and closes
the sockets. Nothing here touches pjlib. ``fingerprints`` keeps the CRC-32 of
the first payloads sent and received by sequence number
(``MediaStats.payload_crc32``). With ``link.srtp`` the transport runs
SRTP/SRTCP both ways (``rtp.transport``); its drops are in ``session.counters``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import zlib
from collections import deque
from functools import partial
from typing import Callable

from rtp.feedback import LossReport
from rtp.packet import WIRE_OVERHEAD_BYTES, RtpPacket
from rtp.session import PayloadSource, RtpSession, SessionConfig
from rtp.stats import SourceStats
from rtp.transport import RtpTransport, monotonic_ms
from sip_agent.media.types import PAYLOAD_FINGERPRINTS, LargeScLink

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0
_ARRIVALS = 512  # queued packets at most (~40 s at 12.5 packets/s): a stalled codec cannot grow memory

Arrival = tuple[int, int, int, bytes, float]  # ssrc, sequence number, timestamp, payload, arrival ms
PayloadSink = Callable[[RtpPacket, float], None]


class RtpThread:
    """RTP/RTCP of one call on its own thread (see module docstring).

    Args:
        link: the SDP agreement (payload type, ptime).
        on_error: called (on this thread) when RTP stops during the call.
        name: the engine's name in error messages.
        cname: our RTCP CNAME (default largesc@HOST).
        session_bw_bps: RFC 3550 session bandwidth, both directions with headers (default: both
            sides' maxbps plus the header overhead at the link's ptime).
        source: payloads on the session's own ptime clock (instead of ``hand_over``).
        on_payload: what to do with a packet of the negotiated payload type (default: queue it).
    """

    def __init__(self, link: LargeScLink, on_error: Callable[[str], None], *, name: str = "LargeSC media engine",
                 cname: str | None = None, session_bw_bps: float | None = None,
                 source: PayloadSource | None = None, on_payload: PayloadSink | None = None) -> None:
        if session_bw_bps is None:
            overhead_bps = WIRE_OVERHEAD_BYTES * 8 * 1000.0 / link.ptime_ms
            session_bw_bps = link.send.maxbps + link.receive.maxbps + 2 * overhead_bps
        config = SessionConfig(payload_type=link.payload_type, frames_per_packet=link.send.frames_per_packet,
                               cname=cname or f"largesc@{socket.gethostname()}",
                               session_bw_bps=session_bw_bps, trust_first_source=True)
        self.link, self.name = link, name
        self.session = RtpSession(config, source=None if source is None else partial(self._polled, source),
                                  on_rtp=self._on_rtp, on_loss_report=self._on_loss_report)
        self.arrivals: deque[Arrival] = deque(maxlen=_ARRIVALS)
        self.loss_report: LossReport | None = None  # latest from the peer (one reference swap per report)
        self.lock = threading.Lock()  # guards the counters below against stats() on another thread
        self.seen: dict[int, SourceStats] = {}  # kept past an RTCP BYE, which drops them from the session
        self.bytes_sent = self.bytes_received = self.wrong_payload_type = 0
        self.fingerprints: dict[str, dict[int, int]] = {"sent": {}, "received": {}}  # seq -> CRC-32
        self._on_payload = on_payload or self._queue
        self._on_error = on_error
        self._transport: RtpTransport | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = False

    def start(self, port: int, remote_addr: str, remote_port: int) -> None:
        """Bind ``port`` (+1 for RTCP) and start; raises RuntimeError naming the port when it cannot."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: start called twice; make one engine per call")
        host = "127.0.0.1" if remote_addr.startswith("127.") else "0.0.0.0"
        self._transport = RtpTransport(self.session, host, port, remote=(remote_addr, remote_port),
                                       latch=self.link.latch, srtp=self.link.srtp)
        self._thread = threading.Thread(target=self._main, name="largesc-engine-rtp", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError(f"{self.name}: RTP did not start within {_START_TIMEOUT_S:g} s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} could not bind UDP {host}:{port}/{port + 1} ({self._error}); "
                               f"another program holds the port: try the call again") from self._error

    def hand_over(self, payload: bytes, frame_index: int, talkspurt: bool) -> None:
        """Send ``payload`` as the packet of frame ``frame_index`` (from any thread)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(partial(self._send, payload, frame_index, talkspurt))
        except RuntimeError:  # the loop has ended (stopping, or RTP failed): nothing to send on
            pass

    def stop(self) -> None:
        """RTCP BYE, close the sockets, join the thread. Idempotent."""
        self._stopping = True
        loop, stop, thread = self._loop, self._stop, self._thread
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        thread.join(_STOP_TIMEOUT_S)

    # -- the thread ---------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported through start() or on_error, never raised into pjsua2
            self._error = self._error or exc
            self._ready.set()
            if not self._stopping:
                self._on_error(f"{self.name}: RTP stopped: {exc!r}")

    async def _run(self) -> None:
        assert self._transport is not None
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self._transport.start()
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self._transport.stop(bye=True, reason="call ended")

    def _on_rtp(self, packet: RtpPacket, now_ms: float) -> None:
        with self.lock:
            if packet.ssrc not in self.seen and packet.ssrc in self.session.sources:
                self.seen[packet.ssrc] = self.session.sources[packet.ssrc]
            if packet.payload_type != self.link.payload_type:
                self.wrong_payload_type += 1
                return
            self.bytes_received += len(packet.payload)
            self._fingerprint("received", packet.sequence_number, packet.payload)
        self._on_payload(packet, now_ms)

    def _queue(self, packet: RtpPacket, now_ms: float) -> None:
        self.arrivals.append((packet.ssrc, packet.sequence_number, packet.timestamp, packet.payload, now_ms))

    def _on_loss_report(self, report: LossReport) -> None:
        self.loss_report = report

    def _polled(self, source: PayloadSource, first_frame: int, frames: int) -> bytes | None:
        payload = source(first_frame, frames)
        if payload is not None:
            with self.lock:
                self.bytes_sent += len(payload)
        return payload

    def _send(self, payload: bytes, frame_index: int, talkspurt: bool) -> None:
        if self._transport is None:
            return
        marker = True if talkspurt else None  # None: the session marks the stream's first packet
        datagram = self.session.send_payload(payload, monotonic_ms(), frame_index, marker)
        self._transport.send([datagram])
        with self.lock:
            self.bytes_sent += len(payload)
            self._fingerprint("sent", int.from_bytes(datagram.data[2:4], "big"), payload)

    def _fingerprint(self, direction: str, seq: int, payload: bytes) -> None:
        table = self.fingerprints[direction]  # caller holds the lock
        if len(table) < PAYLOAD_FINGERPRINTS:
            table.setdefault(seq, zlib.crc32(payload))
