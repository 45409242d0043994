"""A media engine that moves test payloads over the project's RTP stack, without a codec.

It proves the SIP/SDP plumbing: after LargeSC has been negotiated, both
agents exchange RTP packets with the negotiated payload type on the ports
signalled in SDP, paced by ``rtp.session`` (one packet per ptime) on the
engines' one RTP thread (``rtp_thread.RtpThread``: asyncio UDP, RTCP on
port + 1). Each payload is sized from the peer's ``maxbps`` (what the peer
accepts) and starts with the 32-bit frame index, so the receiver can check it
got the packet it was meant to. It carries no audio: ``AudioFiles`` are
accepted and ignored.
"""

from __future__ import annotations

import struct
import threading

from largesc_codec.types import FRAME_MS
from rtp.packet import RtpPacket
from sip_agent.media.rtp_thread import RtpThread
from sip_agent.media.audio import CallAudio
from sip_agent.media.types import LargeScLink, MediaStats

CODEC_NAME = "LargeSC (raw test payloads)"


def payload_size(link: LargeScLink) -> int:
    """Bytes per packet that keep within the peer's ``maxbps`` at the link's ptime (at least 5)."""
    return max(5, int(link.send.maxbps * link.ptime_ms / 1000.0 / 8.0))


def pattern(frame: int, size: int) -> bytes:
    """The payload of frame ``frame``: its index (32 bits), then bytes counting up from it."""
    head = struct.pack("!I", frame & 0xFFFFFFFF)
    return head + bytes((frame + i) & 0xFF for i in range(size - len(head)))


class RawPayloadEngine:
    """Send and count raw payloads (see module docstring); satisfies ``engine.MediaEngine``."""

    def __init__(self, audio: CallAudio | None = None) -> None:
        self.audio = audio  # carries no audio: never opened
        self._lock = threading.Lock()
        self._rtp: RtpThread | None = None
        self._bad_payloads = 0
        self._size = 0
        self._ptime_s = FRAME_MS / 1000.0

    def start(self, local_rtp_port: int, remote_addr: str, remote_rtp_port: int, link: LargeScLink) -> None:
        """Bind ``local_rtp_port`` (+1 for RTCP) and start sending to the peer; raises if binding fails."""
        if self._rtp is not None:
            raise RuntimeError("RawPayloadEngine.start called twice; make one engine per call")
        self._size = payload_size(link)
        self._ptime_s = link.ptime_ms / 1000.0
        self._rtp = RtpThread(link, lambda text: None, name="raw media engine", cname=f"raw-engine@{remote_addr}",
                              session_bw_bps=max(1000.0, link.send.maxbps * 2),
                              source=lambda first, frames: pattern(first, self._size), on_payload=self._check)
        self._rtp.start(local_rtp_port, remote_addr, remote_rtp_port)

    def stop(self) -> None:
        """Send RTCP BYE, close the sockets, join the thread. Safe to call more than once."""
        if self._rtp is not None:
            self._rtp.stop()

    def stats(self) -> MediaStats:
        """Counts so far (RTP session counters, receiver statistics of the peer's SSRC)."""
        rtp = self._rtp
        if rtp is None:
            return MediaStats(codec=CODEC_NAME)
        with rtp.lock:
            sources = list(rtp.seen.values())
            received_bytes, sent_bytes = rtp.bytes_received, rtp.bytes_sent
            counters = dict(rtp.session.counters)
        with self._lock:
            bad = self._bad_payloads
        sent = counters.get("rtp_sent", 0)
        return MediaStats(
            codec=CODEC_NAME,
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

    def _check(self, packet: RtpPacket, now_ms: float) -> None:
        """On the RTP thread: does the payload carry the pattern of the frame it names?"""
        payload = packet.payload
        good = len(payload) >= 4 and payload == pattern(struct.unpack_from("!I", payload)[0], len(payload))
        if not good:
            with self._lock:
                self._bad_payloads += 1
