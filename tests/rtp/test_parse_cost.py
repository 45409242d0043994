"""RTCP parsing costs what its bytes cost (issue 14, defect 2 and item 2), and APP names stay 4 ASCII bytes.

Before: one 65 KB XR datagram of Loss RLE blocks, each claiming 65,535
packets, took 2.9 s and 1.4 GB in ``parse_compound``. Memory is measured with
tracemalloc (deterministic); time with a bound ~20x above what the parser
needs, far below the old cost.
"""

from __future__ import annotations

import struct
import time
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from rtp import rtcp
from rtp.rtcp_xr import LossRleBlock, XrPacket, burst_report
from rtp.session import RtpSession

BYTES_PER_BLOCK = 4 + 8 + 8  # block header, SSRC + range, four 16383-packet run chunks


def _xr_bomb(ssrc: int, size: int = 65_000) -> bytes:
    """RR + XR of Loss RLE blocks about ``ssrc``, each four 16,383-packet loss runs (65,532 packets), ``size`` bytes."""
    span = 4 * 0x3FFF
    block = struct.pack("!BBH", 1, 0, 4) + struct.pack("!IHH", ssrc, 0, span) + struct.pack("!4H", *[0x3FFF] * 4)
    body = struct.pack("!I", 2) + block * ((size - 16) // BYTES_PER_BLOCK)
    rr = struct.pack("!BBHI", 0x80, rtcp.RR, 1, 2)
    return rr + struct.pack("!BBH", 0x80, 207, len(body) // 4) + body


def _cost(data: bytes) -> tuple[float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    rtcp.parse_compound(data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak


def test_a_loss_rle_bomb_costs_what_its_bytes_cost() -> None:
    data = _xr_bomb(0xA11CE)
    assert len(data) > 60_000 and len(rtcp.parse_compound(data)[1].blocks) > 3000  # type: ignore[union-attr]
    elapsed, peak = _cost(data)
    assert peak < 200 * len(data), f"{peak} B peak for {len(data)} B"  # was ~1.4 GB
    assert elapsed < 0.5, f"{elapsed:.2f} s"  # was 2.9 s


def test_the_sender_reads_the_bomb_without_expanding_it() -> None:
    s = RtpSession()
    s.ssrc = 0xA11CE
    tracemalloc.start()
    s.receive_rtcp(_xr_bomb(0xA11CE), 0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.peer_loss_report is not None and s.peer_loss_report.fraction_lost == 1.0
    assert peak < 20_000_000


_blocks = st.lists(st.tuples(st.integers(0, 0xFFFF), st.lists(st.integers(0, 0xFFFF), max_size=40)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(_blocks)
def test_xr_parse_memory_per_byte_is_bounded(blocks: list[tuple[int, list[int]]]) -> None:
    """Any XR of Loss RLE blocks (valid or not): peak memory stays under a constant per input byte."""
    body = struct.pack("!I", 2)
    for end, chunks in blocks:
        if len(chunks) % 2:
            chunks = chunks + [0]
        body += struct.pack("!BBH", 1, 0, 2 + len(chunks) // 2) + struct.pack("!IHH", 1, 0, end)
        body += struct.pack(f"!{len(chunks)}H", *chunks)
    data = struct.pack("!BBHI", 0x80, rtcp.RR, 1, 2) + struct.pack("!BBH", 0x80, 207, len(body) // 4) + body
    tracemalloc.start()
    try:
        rtcp.parse_compound(data)
    except ValueError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4096 + 400 * len(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=400))
def test_the_report_read_off_the_runs_equals_the_per_packet_one(flags: list[bool]) -> None:
    block = LossRleBlock.of(1, 65000, flags)
    assert block.report() == burst_report(flags) and block.received == tuple(flags)


def test_an_app_packet_with_a_non_ascii_name_survives_a_round_trip() -> None:
    app = struct.pack("!BBHI", 0x81, rtcp.APP, 3, 7) + b"LS\xc3\x81" + b"data"
    data = struct.pack("!BBHI", 0x80, rtcp.RR, 1, 2) + app
    once = rtcp.parse_compound(data)
    assert isinstance(once[1], rtcp.RawRtcp) and rtcp.serialize_compound(list(once)) == data
    assert rtcp.parse_compound(rtcp.serialize_compound(list(once))) == once
    try:
        rtcp.App(1, 7, "LSÁ", b"").body()
    except ValueError as exc:
        assert "ASCII" in str(exc)
    else:
        raise AssertionError("a non-ASCII APP name was serialised")
