"""A media engine that moves test payloads over the project's RTP stack, without a codec.

It proves the SIP/SDP plumbing: after LargeSC has been negotiated, both
agents exchange RTP packets with the negotiated payload type on the ports
signalled in SDP, paced by ``rtp.session`` (one packet per ptime) and sent by
``rtp.transport`` (asyncio UDP, RTCP on port + 1). Each payload is sized from
the peer's ``maxbps`` (what the peer accepts) and starts with the 32-bit
frame index, so the receiver can check it got the packet it was meant to.
It carries no audio: ``AudioFiles`` are accepted and ignored.

Threads: one daemon thread runs the asyncio loop; it never calls pjsua2.
"""

from __future__ import annotations

import asyncio
import struct
import threading

from rtp.packet import RtpPacket
from rtp.session import RtpSession, SessionConfig
from rtp.stats import SourceStats
from rtp.transport import RtpTransport
from sip_agent.media.types import AudioFiles, LargeScLink, MediaStats

_START_TIMEOUT_S = 5.0


def payload_size(link: LargeScLink) -> int:
    """Bytes per packet that keep within the peer's ``maxbps`` at the link's ptime (at least 5)."""
    return max(5, int(link.send.maxbps * link.ptime_ms / 1000.0 / 8.0))


class RawPayloadEngine:
    """Send and count raw payloads (see module docstring); satisfies ``media.MediaEngine``."""

    def __init__(self, audio: AudioFiles | None = None) -> None:
        self.audio = audio or AudioFiles()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._session: RtpSession | None = None
        self._bytes_received = 0
        self._bytes_sent = 0
        self._seen: dict[int, SourceStats] = {}  # kept past an RTCP BYE, which drops them from the session
        self._bad_payloads = 0
        self._size = 0
        self._ptime_s = 0.08

    # -- engine interface -----------------------------------------------------
    def start(self, local_rtp_port: int, remote_addr: str, remote_rtp_port: int, link: LargeScLink) -> None:
        """Bind ``local_rtp_port`` (+1 for RTCP) and start sending to the peer; raises if binding fails."""
        if self._thread is not None:
            raise RuntimeError("RawPayloadEngine.start called twice; make one engine per call")
        self._size = payload_size(link)
        self._ptime_s = link.ptime_ms / 1000.0
        config = SessionConfig(
            payload_type=link.payload_type,
            frames_per_packet=link.ptime_ms // 80,
            cname=f"raw-engine@{remote_addr}",
            session_bw_bps=max(1000.0, link.send.maxbps * 2),
        )
        self._session = RtpSession(config, source=self._source, on_rtp=self._on_rtp)
        transport = RtpTransport(self._session, "127.0.0.1" if remote_addr.startswith("127.") else "0.0.0.0",
                                 local_rtp_port, remote=(remote_addr, remote_rtp_port))
        self._thread = threading.Thread(target=self._run, args=(transport,), name="largesc-raw-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError(f"raw media engine did not start within {_START_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError(f"raw media engine could not bind UDP {local_rtp_port}: {self._error}") from self._error

    def stop(self) -> None:
        """Send RTCP BYE, close the sockets, join the thread. Safe to call more than once."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=5.0)

    def stats(self) -> MediaStats:
        """Counts so far (RTP session counters, receiver statistics of the peer's SSRC)."""
        s = self._session
        if s is None:
            return MediaStats(codec="LargeSC (raw test payloads)")
        with self._lock:
            sources = list(self._seen.values())
            received_bytes, bad = self._bytes_received, self._bad_payloads
            sent, sent_bytes = s.counters["rtp_sent"], self._bytes_sent
            counters = dict(s.counters)
        return MediaStats(
            codec="LargeSC (raw test payloads)",
            duration_s=sent * self._ptime_s,  # audio time sent: the bit rate is then per second of audio
            packets_sent=sent,
            packets_received=sum(src.received for src in sources),
            packets_lost=max(0, sum(src.cumulative_lost for src in sources)),
            payload_bytes_sent=sent_bytes,
            payload_bytes_received=received_bytes,
            jitter_ms=max((src.jitter * 1000.0 / src.clock_rate for src in sources), default=0.0),
            extra={"bad_payloads": float(bad), "payload_bytes": float(self._size),
                   **{k: float(v) for k, v in counters.items() if k != "rtp_sent"}},
        )

    # -- session callbacks (engine thread) -------------------------------------
    def _source(self, first_frame: int, frames: int) -> bytes:
        payload = self._pattern(first_frame, self._size)
        with self._lock:
            self._bytes_sent += len(payload)
        return payload

    @staticmethod
    def _pattern(frame: int, size: int) -> bytes:
        head = struct.pack("!I", frame & 0xFFFFFFFF)
        return head + bytes((frame + i) & 0xFF for i in range(size - len(head)))

    def _on_rtp(self, packet: RtpPacket, now_ms: float) -> None:
        with self._lock:
            if packet.ssrc not in self._seen and self._session is not None and packet.ssrc in self._session.sources:
                self._seen[packet.ssrc] = self._session.sources[packet.ssrc]
            self._bytes_received += len(packet.payload)
            if len(packet.payload) < 4:
                self._bad_payloads += 1
                return
            (frame,) = struct.unpack_from("!I", packet.payload)
            expected = self._pattern(frame, len(packet.payload))
            if packet.payload != expected:
                self._bad_payloads += 1

    # -- asyncio thread -------------------------------------------------------
    def _run(self, transport: RtpTransport) -> None:
        try:
            asyncio.run(self._main(transport))
        except BaseException as exc:  # reported through start()/stats, never raised into pjsua2
            self._error = exc
            self._ready.set()

    async def _main(self, transport: RtpTransport) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await transport.start()
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await transport.stop(bye=True, reason="call ended")
