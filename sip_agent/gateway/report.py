"""What a gateway reports per bridged call: its route and both legs, each with its codec and media figures.

``leg_report`` turns one leg's ``CallResult`` into the JSON the issue asks for:
``codec``, ``packets_sent``, ``packets_received``, ``packets_lost``,
``payload_bps`` (what we sent, no headers), ``wire_bps`` (IPv4 + UDP + RTP
headers included) and, for a LargeSC leg, its receiver's frame counts
(primary, recovered, partial, concealed). Bit rates are per second of the
leg's media time. ``payload_crc32`` (sent/received: sequence number -> CRC-32
of the payload, the first 256 packets each way) is the agents' own figure, so
a capture can be matched packet by packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtp.packet import WIRE_OVERHEAD_BYTES
from sip_agent.gateway.routing import Route
from sip_agent.sip.call_result import CallResult

__all__ = ["GatewayCall", "leg_report"]


def leg_report(role: str, result: CallResult | None) -> dict[str, Any]:
    """One leg as JSON; ``role`` is "incoming" or "outgoing". A leg that never started reports its absence."""
    if result is None:
        return {"role": role, "started": False}
    out: dict[str, Any] = {"role": role, "started": True, "peer": result.peer, "connected": result.connected,
                           "status_code": result.status_code, "reason": result.reason, "codec": result.codec,
                           "duration_s": round(result.duration_s, 3), "message": result.message}
    media = result.media
    if media is None:
        return out
    seconds = media.duration_s
    wire = media.extra.get("wire_bps")
    if wire is None:
        wire = 8.0 * (media.payload_bytes_sent + WIRE_OVERHEAD_BYTES * media.packets_sent) / seconds if seconds else 0.0
    out.update(packets_sent=media.packets_sent, packets_received=media.packets_received,
               packets_lost=media.packets_lost, payload_bps=round(media.send_bitrate_bps, 1),
               wire_bps=round(float(wire), 1), jitter_ms=round(media.jitter_ms, 2))
    out["extra"] = {k: round(float(v), 3) for k, v in sorted(media.extra.items())}  # the engine's own figures
    if media.payload_crc32:
        out["payload_crc32"] = media.payload_crc32
    if "frames_primary" in media.extra:  # a LargeSC leg: what its receiver made of the stream
        out["frames"] = {"primary": int(media.extra["frames_primary"]), "recovered": media.frames_recovered,
                         "partial": int(media.extra.get("frames_partial", 0)), "concealed": media.frames_concealed}
    return out


@dataclass(frozen=True)
class GatewayCall:
    """One call through the gateway: where it went and how each leg ended."""

    route: Route | None  # None: refused before routing (bad request, busy)
    caller: str
    incoming: CallResult | None
    outgoing: CallResult | None
    answered_status: int  # the final response the caller got (200 when bridged)
    bridge: dict[str, float] = field(default_factory=dict)  # the audio bridge's figures (pair.Pipes.figures)

    def to_json(self) -> dict[str, Any]:
        return {"caller": self.caller,
                "direction": self.route.direction.value if self.route else None,
                "target": self.route.target if self.route else None,
                "caller_status": self.answered_status,
                "bridge": dict(self.bridge),
                "legs": [leg_report("incoming", self.incoming), leg_report("outgoing", self.outgoing)]}
