"""The gateway's per-call report: both legs with codec, packets, payload and wire bit rate, LargeSC frames."""

from __future__ import annotations

import json

from sip_agent.gateway.report import GatewayCall, leg_report
from sip_agent.gateway.routing import Direction, Route
from sip_agent.media.types import MediaStats
from sip_agent.sip.call_result import CallResult


def _result(media: MediaStats | None, codec: str) -> CallResult:
    return CallResult("sip:bob@h", False, True, 200, "OK", "ended", codec, 64000.0, 10.0, media)


def test_a_standard_leg_gets_its_wire_rate_from_packets_and_headers() -> None:
    media = MediaStats("PCMU/8000", duration_s=10.0, packets_sent=500, packets_received=498, packets_lost=2,
                       payload_bytes_sent=80_000)
    leg = leg_report("incoming", _result(media, "PCMU/8000"))
    assert leg["payload_bps"] == 64000.0 and leg["wire_bps"] == 80000.0  # 160-byte payloads + 40 header bytes
    assert (leg["packets_sent"], leg["packets_received"], leg["packets_lost"]) == (500, 498, 2)
    assert "frames" not in leg


def test_a_largesc_leg_carries_its_receiver_frames_and_engine_wire_rate() -> None:
    media = MediaStats("LargeSC/24000", duration_s=8.0, packets_sent=100, payload_bytes_sent=1500,
                       frames_recovered=3, frames_concealed=2,
                       extra={"wire_bps": 5500.0, "frames_primary": 90.0, "frames_partial": 4.0},
                       payload_crc32={"sent": {7: 123}, "received": {9: 456, 10: 789}})
    leg = leg_report("outgoing", _result(media, "LargeSC/24000"))
    assert leg["wire_bps"] == 5500.0 and leg["payload_bps"] == 1500.0
    assert leg["frames"] == {"primary": 90, "recovered": 3, "partial": 4, "concealed": 2}
    # The payload fingerprints go along, so a capture can be matched packet by packet (JSON: string keys).
    assert json.loads(json.dumps(leg))["payload_crc32"] == {"sent": {"7": 123}, "received": {"9": 456, "10": 789}}


def test_a_call_refused_before_routing_reports_no_legs_started() -> None:
    call = GatewayCall(None, "sip:a@h", None, None, 486)
    data = json.loads(json.dumps(call.to_json()))
    assert data["caller_status"] == 486 and [leg["started"] for leg in data["legs"]] == [False, False]
    routed = GatewayCall(Route(Direction.TO_TRUNK, "bob", "sip:bob@t:1"), "sip:a@h", _result(None, ""), None, 404)
    assert routed.to_json()["direction"] == "to-trunk" and routed.to_json()["legs"][0]["started"]
