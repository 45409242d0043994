"""The raw test-payload engine on its own: two engines over loopback, in one process (no pjsua2)."""

from __future__ import annotations

import socket
import time

import pytest

from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.media.engine import allocate_rtp_port, engine_factory
from sip_agent.media.raw import RawPayloadEngine, payload_size
from sip_agent.media.types import LargeScLink

pytestmark = [pytest.mark.sip, pytest.mark.timeout(60)]
HOST = "127.0.0.1"


def test_two_engines_exchange_payloads_within_the_peer_limits() -> None:
    slow, fast = LargeScParams(maxbps=550), LargeScParams(maxbps=2062.5, ptime=160)
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    a, b = RawPayloadEngine(), RawPayloadEngine()
    a.start(a_port, HOST, b_port, LargeScLink(96, send=fast, receive=slow))  # a sends within b's wishes
    b.start(b_port, HOST, a_port, LargeScLink(96, send=slow, receive=fast))
    try:
        time.sleep(1.7)
    finally:
        a.stop()
        b.stop()
        b.stop()  # idempotent
    sa, sb = a.stats(), b.stats()
    assert sa.extra["payload_bytes"] == payload_size(LargeScLink(96, send=fast, receive=slow)) == 41  # 160 ms at 2062.5
    assert sb.extra["payload_bytes"] == 5  # 80 ms at 550 bit/s
    assert 8 <= sa.packets_sent <= 14 and 16 <= sb.packets_sent <= 26  # 160 ms vs 80 ms packets over ~1.7 s
    assert sb.packets_received >= sa.packets_sent - 2 and sa.packets_received >= sb.packets_sent - 2
    assert sa.extra["bad_payloads"] == sb.extra["bad_payloads"] == 0
    assert sa.send_bitrate_bps <= 2062.5 and sb.send_bitrate_bps <= 550


def test_a_taken_port_is_a_clear_error() -> None:
    port = allocate_rtp_port(HOST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, port))
        engine = RawPayloadEngine()
        with pytest.raises(RuntimeError, match=f"could not bind UDP {HOST}:{port}"):
            engine.start(port, HOST, port + 2, LargeScLink(96, send=LargeScParams(), receive=LargeScParams()))
        engine.stop()


def test_unknown_engine_names_the_choices() -> None:
    assert engine_factory("raw") is RawPayloadEngine
    with pytest.raises(KeyError, match="registered: .*raw.*register_engine"):
        engine_factory("nonesuch")
