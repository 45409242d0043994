"""RTCP packets, compound validity, XR Loss RLE and NTP/RTT helpers."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp import rtcp
from rtp.rtcp import App, Bye, RawRtcp, ReceiverReport, ReportBlock, Sdes, SdesChunk, SenderReport
from rtp.rtcp_xr import LossRleBlock, RawXrBlock, XrPacket, burst_report, decode_chunks, encode_chunks

BLOCK = ReportBlock(ssrc=0x11, fraction_lost=64, cumulative_lost=-5, highest_seq=0x1FFFF, jitter=77, lsr=0xABCD0000, dlsr=65536)


def test_compound_round_trip_every_type() -> None:
    packets = (
        SenderReport(1, 0x0123456789ABCDEF, 1920, 10, 200, (BLOCK,)),
        Sdes((SdesChunk(1, ((rtcp.SDES_CNAME, "alice@host"), (6, "tool"))), SdesChunk(2, ()))),
        XrPacket(1, (LossRleBlock.of(0x11, 65530, (True,) * 20 + (False, True, False, False)), RawXrBlock(9, 3, b"abcd"))),
        App(5, 1, "LSC1", b"\x00\x01\x02\x03"),
        RawRtcp(205, 1, b"\x00" * 8),
        Bye((1, 2), "done"),
    )
    data = rtcp.serialize_compound(packets)
    assert rtcp.parse_compound(data) == packets
    rr = (ReceiverReport(9, (BLOCK, BLOCK)),)
    assert rtcp.parse_compound(rtcp.serialize_compound(rr)) == rr


def test_report_block_cumulative_lost_is_24_bit_signed() -> None:
    for lost in (-(1 << 23), -1, 0, 1, (1 << 23) - 1):
        rr = (ReceiverReport(1, (ReportBlock(2, cumulative_lost=lost),)),)
        assert rtcp.parse_compound(rtcp.serialize_compound(rr))[0].reports[0].cumulative_lost == lost  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="24 bits"):
        ReportBlock(2, cumulative_lost=1 << 23)


def _rr() -> bytes:
    return rtcp.serialize_packet(ReceiverReport(1, (BLOCK,)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc9", "header needs 4"),
        (rtcp.serialize_packet(Sdes((SdesChunk(1, ()),))), "not SR/RR"),
        (bytes([0x40]) + _rr()[1:], "version 1"),
        (_rr() + bytes([0x40, 202, 0, 0]), "version 1 at byte 32"),
        (_rr()[:-4], "runs past"),
        (_rr() + b"\x81\xca\x00", "truncated"),
        (bytes([0x82]) + _rr()[1:], "2 report blocks"),
        (bytes([0xA0]) + _rr()[1:] + rtcp.serialize_packet(Bye((1,))), "padding bit"),
        (bytes([0xA1]) + _rr()[1:-1] + b"\x00", "padding count 0"),
        (_rr() + b"\x81\xca\x00\x01\x00\x00\x00\x01", "no terminating null"),
        (_rr() + b"\x81\xcb\x00\x00", "BYE announces 1"),
        (_rr() + b"\x80\xcf\x00\x02\x00\x00\x00\x01\x01\x00\x00\x05", "XR block type 1 length 5"),
    ],
)
def test_malformed_compound_raises_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rtcp.parse_compound(data)


def test_serialize_compound_requires_report_first() -> None:
    with pytest.raises(ValueError, match="SR or RR"):
        rtcp.serialize_compound([Bye((1,))])


def test_padding_on_last_packet_is_stripped() -> None:
    rr = _rr()
    padded = bytes([0xA1]) + rr[1:3] + bytes([rr[3] + 1]) + rr[4:] + b"\x00\x00\x00\x04"
    assert rtcp.parse_compound(padded) == (ReceiverReport(1, (BLOCK,)),)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_only_raise_value_error(data: bytes) -> None:
    for candidate in (data, _rr() + data, bytes([0x80, 201]) + data):
        try:
            rtcp.parse_compound(candidate)
        except ValueError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=300))
def test_loss_rle_chunks_round_trip(flags: list[bool]) -> None:
    assert decode_chunks(encode_chunks(flags), len(flags)) == tuple(flags)
    block = LossRleBlock.of(7, 65500, tuple(flags))
    xr = XrPacket(1, (block,))
    parsed = rtcp.parse_compound(rtcp.serialize_compound([ReceiverReport(1), xr]))[1]
    assert parsed == xr


def test_loss_rle_uses_run_chunks_for_long_runs() -> None:
    flags = [True] * 100 + [False] * 3 + [True] * 20
    chunks = encode_chunks(flags)
    assert chunks[0] == 0x4000 | 100  # run of 100 received
    assert len(chunks) <= 3
    with pytest.raises(ValueError, match="overruns"):
        decode_chunks([0x4000 | 5], 4)
    with pytest.raises(ValueError, match="cover 2"):
        decode_chunks([0x4000 | 2, 0], 4)


def test_burst_report() -> None:
    # lost runs: 2, 1, 3 -> 6 lost of 20, mean burst 2
    flags = [True] * 3 + [False] * 2 + [True] * 4 + [False] + [True] * 5 + [False] * 3 + [True] * 2
    report = burst_report(flags)
    assert report is not None
    assert report.fraction_lost == pytest.approx(6 / 20)
    assert report.mean_burst == pytest.approx(2.0)
    assert burst_report([True] * 5).mean_burst == 1.0  # type: ignore[union-attr]
    assert burst_report([]) is None


def test_ntp_and_rtt() -> None:
    ntp = rtcp.ntp_from_unix_ms(1_700_000_000_500.0)
    assert ntp >> 32 == 1_700_000_000 + rtcp.NTP_UNIX_OFFSET_S
    assert (ntp & 0xFFFFFFFF) == pytest.approx(0.5 * (1 << 32), abs=2)
    rng = random.Random(1)
    for _ in range(100):
        sent_ms = rng.uniform(0, 1e12)
        hold_ms, rtt_ms = rng.uniform(0, 5000), rng.uniform(0, 800)
        lsr = rtcp.ntp_compact(rtcp.ntp_from_unix_ms(sent_ms))
        dlsr = round(hold_ms * 65.536)
        arrival = rtcp.ntp_compact(rtcp.ntp_from_unix_ms(sent_ms + hold_ms + rtt_ms))
        assert rtcp.rtt_ms(arrival, lsr, dlsr) == pytest.approx(rtt_ms, abs=0.1)
    assert rtcp.rtt_ms(123, 0, 0) is None


def test_sdes_rejects_bad_utf8_and_overlong_item() -> None:
    body = struct.pack("!I", 1) + bytes([1, 2, 0xFF, 0xFE]) + bytes(4)
    data = _rr() + bytes([0x81, 202]) + struct.pack("!H", len(body) // 4) + body
    with pytest.raises(ValueError, match="UTF-8"):
        rtcp.parse_compound(data)
    with pytest.raises(ValueError, match="cannot be encoded"):
        rtcp.serialize_packet(Sdes((SdesChunk(1, ((1, "x" * 300),)),)))
