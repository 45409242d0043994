"""Two RTP sessions over real UDP sockets on 127.0.0.1: media, RTCP reports, loss feedback, BYE."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from largesc_codec.types import LossReport
from rtp.packet import RtpPacket
from rtp.session import Datagram, RtpSession, SessionConfig
from rtp.transport import RtpTransport, monotonic_ms

pytestmark = pytest.mark.integration


class LossyTransport(RtpTransport):
    """Drops outgoing RTP by a seeded two-state (bursty) pattern; RTCP always goes through."""

    def __init__(self, *args: object, seed: int = 0, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.rng, self.bad, self.dropped = random.Random(seed), False, 0
        self.sent_rtp = 0

    def send(self, datagrams: list[Datagram]) -> None:
        keep = []
        for d in datagrams:
            if not d.rtcp:
                self.sent_rtp += 1
                self.bad = self.sent_rtp > 3 and self.rng.random() < (0.5 if self.bad else 0.1)
                if self.bad:
                    self.dropped += 1
                    continue
            keep.append(d)
        super().send(keep)


def _config(seed: int, name: str) -> SessionConfig:
    # fast RTCP so a 1.5 s test sees several reports (the default minimum is 5 s)
    return SessionConfig(seed=seed, cname=f"{name}@127.0.0.1", rtcp_min_interval_s=0.25, rtcp_bw_bps=64000.0)


async def _exchange(rtcp_mux: bool) -> None:
    received: list[RtpPacket] = []
    reports: list[LossReport] = []
    byes: list[int] = []
    recv = RtpSession(_config(2, "recv"), on_rtp=lambda p, now: received.append(p), on_bye=byes.append)
    recv_t = RtpTransport(recv, "127.0.0.1", 0, rtcp_mux=rtcp_mux)
    await recv_t.start()
    send = RtpSession(_config(1, "send"), source=lambda first, n: b"frame%05d" % first, on_loss_report=reports.append)
    send_t = LossyTransport(send, "127.0.0.1", 0, remote=("127.0.0.1", recv_t.local_rtp_port), rtcp_mux=rtcp_mux, seed=3)
    await send_t.start()
    assert recv_t.local_rtp_port % 2 == 0 and send_t.local_rtp_port % 2 == 0
    assert recv_t.local_rtcp_port == recv_t.local_rtp_port + (0 if rtcp_mux else 1)

    await asyncio.sleep(0.8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:  # a stranger's garbage: refused unread
        junk.sendto(b"\x40garbage", ("127.0.0.1", recv_t.local_rtp_port))
        junk.sendto(b"\x80\xc9\x00\x09", ("127.0.0.1", recv_t.local_rtcp_port))
    await asyncio.sleep(0.8)
    cname = recv.cnames.get(send.ssrc)  # forgotten with the source once it says BYE
    await send_t.stop(reason="done")
    await asyncio.sleep(0.1)
    await recv_t.stop(bye=False)

    # paced at 80 ms: about 20 packets in 1.6 s, minus the dropped ones, in order
    frames = [int(p.payload[5:]) for p in received]
    assert 15 <= send_t.sent_rtp <= 24 and send_t.dropped >= 1
    assert frames == sorted(frames) and len(frames) == send_t.sent_rtp - send_t.dropped
    assert recv.counters["rtp_refused_source"] == 1 and recv.counters["rtcp_refused_source"] == 1
    assert recv.counters["rtp_malformed"] == 0 and recv.counters["rtcp_malformed"] == 0
    assert cname == "send@127.0.0.1" and send.ssrc not in recv.cnames
    # the sender heard RTCP about its stream: loss feedback and a loopback-sized RTT
    assert reports and send.peer_loss_report is not None and send.counters["rtcp_received"] >= 2
    assert any(r.fraction_lost > 0 for r in reports)
    assert send.rtt_ms is not None and send.rtt_ms < 50.0
    assert byes == [send.ssrc] and send.ssrc not in recv.sources


@pytest.mark.parametrize("rtcp_mux", [False, True])
def test_loopback_exchange(rtcp_mux: bool) -> None:
    asyncio.run(asyncio.wait_for(_exchange(rtcp_mux), timeout=8.0))


async def _failures() -> None:
    calls: list[int] = []

    def bad_sink(p: RtpPacket, now: float) -> None:
        calls.append(p.sequence_number)
        raise RuntimeError("sink bug")

    recv = RtpSession(_config(5, "recv"), on_rtp=bad_sink)
    recv_t = RtpTransport(recv, "127.0.0.1", 0)
    await recv_t.start()

    def source(first: int, n: int) -> bytes:
        if first == 6:
            raise KeyError("source bug")
        return b"x"

    send = RtpSession(_config(6, "send"), source=source)
    send_t = RtpTransport(send, "127.0.0.1", 0, remote=("127.0.0.1", recv_t.local_rtp_port))
    await send_t.start()
    await asyncio.sleep(0.7)
    # the failing sink neither closed the socket nor stopped later packets; the first two
    # packets (probation) were released by one datagram, so one error count fewer
    assert len(calls) == 6 and len(set(calls)) == 6 and recv.counters["sink_errors"] == 5
    with pytest.raises(KeyError, match="source bug"):
        await send_t.stop()
    assert send_t._rtp is None and send_t._rtcp is None  # closed despite the error
    await recv_t.stop(bye=False)


def test_transport_survives_sink_errors_and_reports_source_errors() -> None:
    asyncio.run(asyncio.wait_for(_failures(), timeout=5.0))
    with pytest.raises(ValueError, match="even"):
        RtpTransport(RtpSession(), port=5005)


async def _arrival_clock() -> None:
    recv = RtpSession(_config(7, "recv"))
    recv_t = RtpTransport(recv, "127.0.0.1", 0)
    await recv_t.start()
    assert recv_t.last_received_ms is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:  # malformed: no RTP is delivered
        before = monotonic_ms()
        junk.sendto(b"\x40garbage", ("127.0.0.1", recv_t.local_rtp_port))
        await asyncio.sleep(0.2)
    await recv_t.stop(bye=False)
    assert recv.counters["rtp_malformed"] == 1 and recv.counters["rtp_received"] == 0
    assert recv_t.last_received_ms is not None and before <= recv_t.last_received_ms <= monotonic_ms()


def test_transport_records_when_any_datagram_arrived() -> None:
    # what a receiver watches to tell a silent peer from one still on probation
    asyncio.run(asyncio.wait_for(_arrival_clock(), timeout=5.0))
