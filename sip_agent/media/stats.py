"""The LargeSC engine's ``MediaStats``: the RTP thread's counters and the codec thread's snapshot."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sip_agent.media.rtp_thread import WIRE_OVERHEAD_BYTES, RtpThread
from sip_agent.media.types import MediaStats
from sip_agent.media.wav import FRAME_S

CODEC_NAME = "LargeSC/24000"


def media_stats(rtp: RtpThread, snap: dict[str, Any], max_bps: float, recorded_s: float) -> MediaStats:
    """What ``LargeSCEngine.stats()`` reports; ``snap`` is the codec thread's latest snapshot."""
    with rtp.lock:
        sources = list(rtp.seen.values())
        sent_bytes, got_bytes, wrong_pt = rtp.bytes_sent, rtp.bytes_received, rtp.wrong_payload_type
        crc = {direction: dict(table) for direction, table in rtp.fingerprints.items()}
    counters = dict(rtp.session.counters)
    sent = counters.get("rtp_sent", 0)
    counts: Counter[str] = snap.get("counts", Counter())
    duration = snap.get("ticks", 0) * FRAME_S  # while the codec clock ran
    extra = {
        "frames_primary": counts["primary"], "frames_partial": counts["partial"],
        "frames_comfort": counts["comfort"], "frames_late_used": counts["late_used"],
        "malformed_payloads": counts["malformed"], "wrong_payload_type": wrong_pt,
        "jitter_buffer_ms": snap.get("jb_delay_ms", 0.0), "jitter_buffer_target_ms": snap.get("jb_target_ms", 0.0),
        "jitter_buffer_skipped": snap.get("jb_skipped", 0), "overruns": snap.get("overruns", 0),
        "codec_startup_ms": snap.get("startup_ms", 0.0),
        "mean_codebooks_sent": snap.get("codebooks_sent", 0) / max(1, snap.get("frames_sent", 0)),
        "mean_codebooks_received": snap.get("codebooks_received", 0) / max(1, counts["primary"]),
        "max_bps": max_bps,
        "wire_bps": 8.0 * (sent_bytes + WIRE_OVERHEAD_BYTES * sent) / duration if duration > 0 else 0.0,
        "recorded_s": recorded_s,
        "rtcp_sent": counters.get("rtcp_sent", 0), "rtcp_received": counters.get("rtcp_received", 0),
    }
    report = rtp.session.peer_loss_report
    if report is not None:
        extra["peer_loss_fraction"] = report.fraction_lost
    return MediaStats(
        codec=CODEC_NAME, duration_s=duration, packets_sent=sent,
        packets_received=sum(s.received for s in sources),
        packets_lost=max(0, sum(s.cumulative_lost for s in sources)),
        payload_bytes_sent=sent_bytes, payload_bytes_received=got_bytes,
        frames_recovered=counts["recovered"], frames_concealed=counts["concealed"],
        jitter_ms=max((s.jitter * 1000.0 / s.clock_rate for s in sources), default=0.0),
        extra={k: float(v) for k, v in extra.items()}, payload_crc32=crc,
    )
