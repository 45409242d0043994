"""RTP packet parse/serialize: round trips, header extensions, padding, malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.packet import (
    ONE_BYTE_PROFILE,
    ExtensionElement,
    HeaderExtension,
    RtpPacket,
    build_extension,
    parse,
    parse_extension_elements,
    serialize,
)


def test_known_bytes() -> None:
    pkt = RtpPacket(payload_type=96, sequence_number=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304, payload=b"\xaa\xbb", marker=True)
    data = serialize(pkt)
    assert data == bytes([0x80, 0xE0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 0xAA, 0xBB])
    assert parse(data) == pkt


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none() | st.builds(HeaderExtension, st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))),
    padding=st.integers(0, 255),
)


@settings(max_examples=200, deadline=None)
@given(packets)
def test_round_trip(pkt: RtpPacket) -> None:
    assert parse(serialize(pkt)) == pkt


def test_padding_and_csrc_layout() -> None:
    pkt = RtpPacket(0, 1, 2, 3, payload=b"xyz", csrc=(7, 8), padding=5)
    data = serialize(pkt)
    assert data[0] == 0x80 | 0x20 | 2
    assert data[-5:] == b"\x00\x00\x00\x00\x05"
    assert len(data) == 12 + 8 + 3 + 5
    assert parse(data).payload == b"xyz"


def test_rfc8285_one_and_two_byte_elements() -> None:
    one = [ExtensionElement(1, b"\x01"), ExtensionElement(14, bytes(16))]
    ext = build_extension(one)
    assert ext.profile == ONE_BYTE_PROFILE and len(ext.data) % 4 == 0
    assert parse_extension_elements(ext) == tuple(one)
    two = [ExtensionElement(20, b"abc"), ExtensionElement(3, bytes(40))]
    ext2 = build_extension(two)
    assert ext2.profile == 0x1000
    pkt = RtpPacket(96, 1, 2, 3, payload=b"p", extension=ext2)
    assert parse_extension_elements(parse(serialize(pkt)).extension) == tuple(two)  # type: ignore[arg-type]


def test_one_byte_padding_and_stop_id() -> None:
    # element id 1 (2 bytes), a padding byte, id 15 stops processing
    ext = HeaderExtension(ONE_BYTE_PROFILE, bytes([0x11, 0xAB, 0xCD, 0x00, 0xF0, 0x99, 0x00, 0x00]))
    assert parse_extension_elements(ext) == (ExtensionElement(1, b"\xab\xcd"),)


def _header(b0: int = 0x80, b1: int = 96) -> bytes:
    return struct.pack("!BBHII", b0, b1, 1, 2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00", "fixed header"),
        (_header(b0=0x40) + b"x", "version 1"),
        (_header(b0=0x00), "version 0"),
        (_header(b0=0x83) + bytes(8), "CSRC count 3"),
        (_header(b0=0x90) + b"\xbe\xde", "extension header"),
        (_header(b0=0x90) + b"\xbe\xde\x00\x02" + bytes(4), "extension length 2"),
        (_header(b0=0xA0) + b"abc\x00", "padding count"),
        (_header(b0=0xA0) + b"ab\x09", "exceeds"),
        (_header(b0=0xA0), "exceeds"),
    ],
)
def test_malformed_packets_raise_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(data)


@pytest.mark.parametrize(
    "ext",
    [
        HeaderExtension(ONE_BYTE_PROFILE, bytes([0x13, 1, 2, 0])),  # says 4 bytes, 2 left
        HeaderExtension(0x1000, bytes([5, 9, 1, 1])),  # says 9 bytes, 2 left
        HeaderExtension(0x1234, bytes(4)),  # not an RFC 8285 profile
    ],
)
def test_malformed_extension_elements(ext: HeaderExtension) -> None:
    with pytest.raises(ValueError):
        parse_extension_elements(ext)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        pkt = parse(data)
    except ValueError:
        return
    assert serialize(pkt) == data or pkt.padding  # padding bytes other than the count are not kept


def test_field_ranges_checked() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError, match="sequence"):
        RtpPacket(0, 70000, 0, 0)
    with pytest.raises(ValueError, match="CSRC"):
        RtpPacket(0, 0, 0, 0, csrc=tuple(range(16)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([ONE_BYTE_PROFILE, 0x1000, 0x100F]), st.binary(max_size=40))
def test_extension_elements_fuzz_only_raise_value_error(profile: int, raw: bytes) -> None:
    ext = HeaderExtension(profile, raw + bytes(-len(raw) % 4))
    try:
        elements = parse_extension_elements(ext)
    except ValueError:
        return
    assert all(len(e.value) <= 256 for e in elements)
