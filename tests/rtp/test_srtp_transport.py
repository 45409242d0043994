"""SRTP in RtpTransport over real UDP on 127.0.0.1: the wire carries no plaintext; replays, tampered and
plaintext datagrams from the peer's own address are dropped and counted before the session (issue 14 item 3)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from rtp.config import Datagram, SessionConfig
from rtp.packet import RtpPacket, serialize
from rtp.session import RtpSession
from rtp.srtp import SrtpKeys, Suite, generate_key
from rtp.transport import RtpTransport

pytestmark = pytest.mark.integration
MARK = b"PLAINTEXT-LARGESC-"


class Tap(asyncio.DatagramProtocol):
    """A relay between two transports that records every datagram it forwards (our 'wire capture')."""

    def __init__(self) -> None:
        self.sides: list[tuple[str, int]] = []
        self.seen: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.seen.append(data)
        others = [s for s in self.sides if s != (addr[0], addr[1])]
        if self.transport is not None and others:
            self.transport.sendto(data, others[0])

    def inject(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)


def _config(seed: int) -> SessionConfig:
    return SessionConfig(seed=seed, rtcp_min_interval_s=0.25, rtcp_bw_bps=64000.0, trust_first_source=True)


async def _call(suite: Suite) -> None:
    a_key, b_key = generate_key(suite), generate_key(suite)
    loop = asyncio.get_running_loop()
    tap = Tap()
    wire, _ = await loop.create_datagram_endpoint(lambda: tap, local_addr=("127.0.0.1", 0))
    tap_addr = ("127.0.0.1", wire.get_extra_info("sockname")[1])
    received: list[RtpPacket] = []
    recv = RtpSession(_config(2), on_rtp=lambda p, now: received.append(p))
    recv_t = RtpTransport(recv, remote=tap_addr, rtcp_mux=True, srtp=SrtpKeys(suite, b_key, a_key))
    send = RtpSession(_config(1), source=lambda first, n: MARK + b"%05d" % first)
    send_t = RtpTransport(send, remote=tap_addr, rtcp_mux=True, srtp=SrtpKeys(suite, a_key, b_key))
    await recv_t.start()
    await send_t.start()
    tap.sides = [("127.0.0.1", send_t.local_rtp_port), ("127.0.0.1", recv_t.local_rtp_port)]
    await asyncio.sleep(1.0)

    to_recv = ("127.0.0.1", recv_t.local_rtp_port)
    first_rtp = next(d for d in tap.seen if not 192 <= d[1] <= 223)
    tap.inject(first_rtp, to_recv)  # a replay, from the peer's (the tap's) own address
    tampered = bytearray(tap.seen[-1] if not 192 <= tap.seen[-1][1] <= 223 else first_rtp)
    tampered[2:4] = (0xFFFF).to_bytes(2, "big")  # a fresh sequence number: past the replay check, fails the tag
    tap.inject(bytes(tampered), to_recv)
    tap.inject(serialize(RtpPacket(96, 40000, 0, send.ssrc, MARK + b"forged")), to_recv)  # plain RTP
    await asyncio.sleep(0.5)
    await send_t.stop(reason="done")
    await asyncio.sleep(0.1)
    await recv_t.stop(bye=False)
    wire.close()

    payloads = [p.payload for p in received]
    assert len(payloads) >= 10 and all(p.startswith(MARK) for p in payloads)
    assert [int(p[len(MARK):]) for p in payloads] == sorted({int(p[len(MARK):]) for p in payloads})  # no repeats
    assert MARK + b"forged" not in payloads
    assert len(tap.seen) > len(payloads) and not any(MARK in d for d in tap.seen)  # the capture: no plaintext
    assert recv.counters["srtp_replayed"] >= 1 and recv.counters["srtp_auth_failed"] >= 2
    assert send.counters["rtcp_received"] >= 1 and recv.counters["rtcp_received"] >= 1  # SRTCP both ways
    assert recv.counters["rtp_malformed"] == 0 and send.counters["srtp_protect_failed"] == 0


@pytest.mark.parametrize("suite", [Suite.AES_CM_128_HMAC_SHA1_80, Suite.AEAD_AES_128_GCM])
def test_srtp_call_over_udp_has_no_plaintext_on_the_wire(suite: Suite) -> None:
    asyncio.run(asyncio.wait_for(_call(suite), timeout=8.0))


async def _unprotectable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        key = generate_key(Suite.AES_CM_128_HMAC_SHA1_80)
        session = RtpSession(_config(3))
        t = RtpTransport(session, remote=sink.getsockname(), rtcp_mux=True,
                         srtp=SrtpKeys(Suite.AES_CM_128_HMAC_SHA1_80, key, key))
        await t.start()
        big = serialize(RtpPacket(96, 1, 0, session.ssrc, MARK + bytes(1600)))
        t.send([Datagram(False, big), Datagram(False, big)])
        await asyncio.sleep(0.1)
        await t.stop(bye=False)
        got = []
        while True:
            try:
                got.append(sink.recv(4096))
            except BlockingIOError:
                break
        assert session.counters["srtp_protect_failed"] == 2
        assert not any(MARK in d for d in got)  # nothing left in the clear


def test_what_cannot_be_protected_is_dropped_not_sent_plain() -> None:
    asyncio.run(asyncio.wait_for(_unprotectable(), timeout=5.0))


async def _latch() -> None:
    suite = Suite.AES_CM_128_HMAC_SHA1_80
    a_key, b_key = generate_key(suite), generate_key(suite)
    received: list[RtpPacket] = []
    recv = RtpSession(_config(4), on_rtp=lambda p, now: received.append(p))
    recv_t = RtpTransport(recv, remote=("127.0.0.1", 9), rtcp_mux=True, latch=True, srtp=SrtpKeys(suite, b_key, a_key))
    await recv_t.start()
    to_recv = ("127.0.0.1", recv_t.local_rtp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:  # first to send: must not win the latch
        stranger.sendto(serialize(RtpPacket(96, 1, 0, 0x5757, MARK + b"stranger")), to_recv)
        stranger.sendto(b"\x80\xc9\x00\x01" + bytes(4), to_recv)  # and RTCP
        await asyncio.sleep(0.1)
        send = RtpSession(_config(5), source=lambda first, n: MARK + b"%05d" % first)
        send_t = RtpTransport(send, remote=to_recv, rtcp_mux=True, srtp=SrtpKeys(suite, a_key, b_key))
        await send_t.start()
        await asyncio.sleep(0.6)
        stranger.sendto(serialize(RtpPacket(96, 2, 0, 0x5757, MARK + b"stranger")), to_recv)
        await asyncio.sleep(0.1)
    await send_t.stop(bye=False)
    await recv_t.stop(bye=False)
    assert recv_t.remote == ("127.0.0.1", send_t.local_rtp_port)  # latched on the authenticated peer
    assert received and all(p.payload.startswith(MARK) and b"stranger" not in p.payload for p in received)
    assert recv.counters["srtp_auth_failed"] + recv.counters["srtp_malformed"] >= 2
    assert recv.counters["rtp_refused_source"] == 1  # the stranger after the latch: refused before unprotect


def test_with_srtp_only_an_authenticated_datagram_wins_the_latch() -> None:
    asyncio.run(asyncio.wait_for(_latch(), timeout=5.0))
