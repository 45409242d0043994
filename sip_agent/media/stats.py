"""The LargeSC engine's ``MediaStats``: the RTP thread's counters and the codec thread's snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from largesc_codec.types import FRAME_MS, FrameSource
from rtp.packet import WIRE_OVERHEAD_BYTES
from sip_agent.media.rtp_thread import RtpThread
from sip_agent.media.types import MediaStats

if TYPE_CHECKING:  # the receiver imports torch; this module stays cheap to import
    from largesc_codec.receiver import ReceiverStatus

CODEC_NAME = "LargeSC/24000"


@dataclass(frozen=True)
class CodecSnapshot:
    """What the codec thread publishes after each event; ``stats()`` reads it on any thread.

    ``receiver`` is None until the codec thread has built its receiver.
    """

    receiver: ReceiverStatus | None = None
    ticks: int = 0  # send ticks since the codec clock started
    overruns: int = 0
    startup_ms: float = 0.0
    frames_sent: int = 0
    codebooks_sent: int = 0
    codebooks_received: int = 0  # over the primary frames played


def media_stats(rtp: RtpThread, snap: CodecSnapshot, max_bps: float, recorded_s: float) -> MediaStats:
    """What ``LargeSCEngine.stats()`` reports; ``snap`` is the codec thread's latest snapshot."""
    with rtp.lock:
        sources = list(rtp.seen.values())
        sent_bytes, got_bytes, wrong_pt = rtp.bytes_sent, rtp.bytes_received, rtp.wrong_payload_type
        crc = {direction: dict(table) for direction, table in rtp.fingerprints.items()}
    counters = dict(rtp.session.counters)
    sent = counters.get("rtp_sent", 0)
    rx = snap.receiver

    def frames(source: FrameSource) -> int:
        return rx.frames[source] if rx is not None else 0

    duration = snap.ticks * FRAME_MS / 1000.0  # while the codec clock ran
    extra = {
        "frames_primary": frames(FrameSource.PRIMARY), "frames_partial": frames(FrameSource.PARTIAL),
        "frames_comfort": frames(FrameSource.COMFORT), "frames_late_used": rx.late_used if rx else 0,
        "malformed_payloads": rx.malformed if rx else 0, "wrong_payload_type": wrong_pt,
        "jitter_buffer_ms": rx.jitter.current_delay_ms if rx else 0.0,
        "jitter_buffer_target_ms": rx.jitter.target_delay_ms if rx else 0.0,
        "jitter_buffer_skipped": rx.jitter.skipped if rx else 0, "overruns": snap.overruns,
        "codec_startup_ms": snap.startup_ms,
        "mean_codebooks_sent": snap.codebooks_sent / max(1, snap.frames_sent),
        "mean_codebooks_received": snap.codebooks_received / max(1, frames(FrameSource.PRIMARY)),
        "max_bps": max_bps,
        "wire_bps": 8.0 * (sent_bytes + WIRE_OVERHEAD_BYTES * sent) / duration if duration > 0 else 0.0,
        "recorded_s": recorded_s,
        "rtcp_sent": counters.get("rtcp_sent", 0), "rtcp_received": counters.get("rtcp_received", 0),
        # refused by rtp/peer.py and rtp/sources.py: never in the loss, jitter or frame figures above
        **{k: counters.get(k, 0) for k in ("rtp_refused_source", "rtcp_refused_source", "rtp_refused_ssrc",
                                            "rtcp_refused_report", "srtp_auth_failed", "srtp_replayed",
                                            "srtp_malformed", "srtp_protect_failed")},
    }
    report = rtp.session.peer_loss_report
    if report is not None:
        extra["peer_loss_fraction"] = report.fraction_lost
    return MediaStats(
        codec=CODEC_NAME, duration_s=duration, packets_sent=sent,
        packets_received=sum(s.received for s in sources),
        packets_lost=max(0, sum(s.cumulative_lost for s in sources)),
        payload_bytes_sent=sent_bytes, payload_bytes_received=got_bytes,
        frames_recovered=frames(FrameSource.RECOVERED), frames_concealed=frames(FrameSource.CONCEALED),
        jitter_ms=max((s.jitter * 1000.0 / s.clock_rate for s in sources), default=0.0),
        extra={k: float(v) for k, v in extra.items()}, payload_crc32=crc,
    )
