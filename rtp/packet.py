"""RTP data packets (RFC 3550 section 5.1): frozen dataclass, pure parse/serialize.

Fixed header (12 bytes, network order)::

    V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence number (16)
    timestamp (32)
    SSRC (32)
    CSRC list: CC x 32 bits
    [X=1: profile (16) | length in 32-bit words (16) | extension data]
    payload
    [P=1: padding, the last byte counts the padding bytes including itself]

Header extension elements (RFC 8285) are decoded on request from the raw
extension: one-byte form (profile 0xBEDE) and two-byte form (0x100X).
Anything malformed raises ValueError naming the problem and byte offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12
# Bytes on the wire per packet beyond its payload: IPv4 (20, no options) + UDP (8) + the fixed RTP header.
WIRE_OVERHEAD_BYTES = 20 + 8 + HEADER_SIZE
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000  # low 4 bits are "appbits"
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True)
class HeaderExtension:
    """Raw RFC 3550 header extension: 16-bit ``profile`` and ``data`` (a multiple of 4 bytes)."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile {self.profile} is not a 16-bit value")
        if len(self.data) % 4:
            raise ValueError(f"extension data is {len(self.data)} bytes; must be a multiple of 4")
        if len(self.data) // 4 > 0xFFFF:
            raise ValueError("extension data is longer than 65535 words")


@dataclass(frozen=True)
class ExtensionElement:
    """One RFC 8285 element: local identifier and value bytes."""

    id: int
    value: bytes


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the P-bit padding length in bytes (0 = none, else 1..255)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is outside 0..127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number {self.sequence_number} is outside 0..65535")
        for name, value in (("timestamp", self.timestamp), ("SSRC", self.ssrc)):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError(f"{name} {value} is not a 32-bit value")
        if len(self.csrc) > 15:
            raise ValueError(f"{len(self.csrc)} CSRCs; at most 15 fit the CC field")
        for c in self.csrc:
            if not 0 <= c <= 0xFFFFFFFF:
                raise ValueError(f"CSRC {c} is not a 32-bit value")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding {self.padding} is outside 0..255")


def parse(data: bytes) -> RtpPacket:
    """Decode one RTP packet; ValueError on anything RFC 3550 does not allow."""
    if len(data) < HEADER_SIZE:
        raise ValueError(f"RTP packet is {len(data)} bytes; the fixed header needs {HEADER_SIZE}")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise ValueError(f"RTP version {version}; only version 2 is supported")
    has_padding, has_ext, cc = bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F
    pos = HEADER_SIZE
    if len(data) < pos + 4 * cc:
        raise ValueError(f"CSRC count {cc} needs {pos + 4 * cc} bytes, packet has {len(data)}")
    csrc = struct.unpack_from(f"!{cc}I", data, pos)
    pos += 4 * cc
    extension = None
    if has_ext:
        if len(data) < pos + 4:
            raise ValueError(f"X bit set but the extension header at byte {pos} is truncated")
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if end > len(data):
            raise ValueError(
                f"extension length {words} words at byte {pos} runs past the packet end ({len(data)} bytes)"
            )
        extension = HeaderExtension(profile, bytes(data[pos + 4 : end]))
        pos = end
    end = len(data)
    padding = 0
    if has_padding:
        padding = data[-1]
        if padding == 0:
            raise ValueError("P bit set but the padding count (last byte) is 0")
        if padding > end - pos:
            raise ValueError(f"padding count {padding} exceeds the {end - pos} bytes after the header")
        end -= padding
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrc=tuple(csrc),
        extension=extension,
        padding=padding,
    )


def serialize(packet: RtpPacket) -> bytes:
    """Encode ``packet``; ``parse(serialize(p)) == p`` for every valid packet."""
    b0 = (RTP_VERSION << 6) | (0x20 if packet.padding else 0) | len(packet.csrc)
    if packet.extension is not None:
        b0 |= 0x10
    b1 = (0x80 if packet.marker else 0) | packet.payload_type
    parts = [
        _HEADER.pack(b0, b1, packet.sequence_number, packet.timestamp, packet.ssrc),
        struct.pack(f"!{len(packet.csrc)}I", *packet.csrc),
    ]
    if packet.extension is not None:
        ext = packet.extension
        parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4) + ext.data)
    parts.append(packet.payload)
    if packet.padding:
        parts.append(bytes(packet.padding - 1) + bytes([packet.padding]))
    return b"".join(parts)


def parse_extension_elements(ext: HeaderExtension) -> tuple[ExtensionElement, ...]:
    """Decode RFC 8285 elements of a one-byte (0xBEDE) or two-byte (0x100X) extension."""
    data = ext.data
    one_byte = ext.profile == ONE_BYTE_PROFILE
    if not one_byte and ext.profile & 0xFFF0 != TWO_BYTE_PROFILE:
        raise ValueError(f"extension profile 0x{ext.profile:04x} is not an RFC 8285 profile")
    out: list[ExtensionElement] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding byte between or after elements
            pos += 1
            continue
        if one_byte:
            ident, length = data[pos] >> 4, (data[pos] & 0x0F) + 1
            if ident == 15:  # reserved: stop processing (RFC 8285 4.2)
                break
            pos += 1
        else:
            if pos + 2 > len(data):
                raise ValueError(f"two-byte extension element header at byte {pos} is truncated")
            ident, length = data[pos], data[pos + 1]
            pos += 2
        if pos + length > len(data):
            raise ValueError(f"extension element {ident} at byte {pos} needs {length} bytes, {len(data) - pos} left")
        out.append(ExtensionElement(ident, bytes(data[pos : pos + length])))
        pos += length
    return tuple(out)


def build_extension(elements: list[ExtensionElement] | tuple[ExtensionElement, ...]) -> HeaderExtension:
    """Encode RFC 8285 elements, one-byte form when every element allows it, else two-byte."""
    one_byte = all(1 <= e.id <= 14 and 1 <= len(e.value) <= 16 for e in elements)
    body = bytearray()
    for e in elements:
        if one_byte:
            body.append((e.id << 4) | (len(e.value) - 1))
        else:
            if not 1 <= e.id <= 255 or len(e.value) > 255:
                raise ValueError(f"extension element {e.id} with {len(e.value)} bytes fits no RFC 8285 form")
            body += bytes([e.id, len(e.value)])
        body += e.value
    body += bytes(-len(body) % 4)
    return HeaderExtension(ONE_BYTE_PROFILE if one_byte else TWO_BYTE_PROFILE, bytes(body))
