"""RTCP packets (RFC 3550 section 6) and compound packets: pure parse/serialize.

Every packet starts with ``V(2) P(1) count(5) | PT(8) | length(16)``, the
length in 32-bit words minus one. Types here: SR (200), RR (201), SDES (202),
BYE (203), APP (204) and XR (207, in ``rtcp_xr``); other types survive as
``RawRtcp``. ``parse_compound`` applies the RFC 3550 A.2 validity checks:
version 2 everywhere, first packet SR or RR, padding only on the last
packet, and lengths that add up exactly to the datagram. Malformed input
raises ValueError naming the problem and byte offset.

NTP time helpers (SR timestamps, LSR/DLSR, RTT) live in ``ntp`` and are
re-exported here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Union

from rtp.ntp import NTP_UNIX_OFFSET_S, ntp_compact, ntp_from_unix_ms, rtt_ms
from rtp.rtcp_xr import XrPacket

SR, RR, SDES, BYE, APP, XR = 200, 201, 202, 203, 204, 207
SDES_CNAME = 1
__all__ = ["NTP_UNIX_OFFSET_S", "ntp_compact", "ntp_from_unix_ms", "rtt_ms"]  # re-exported NTP helpers
_BLOCK = struct.Struct("!IB3sIIII")


@dataclass(frozen=True)
class ReportBlock:
    """Reception statistics about one source (24 bytes on the wire).

    ``fraction_lost`` is 0..255 (lost/expected * 256 since the last report),
    ``cumulative_lost`` a 24-bit signed count (duplicates can make it negative),
    ``highest_seq`` the extended highest sequence number (cycles << 16 | seq),
    ``jitter`` in timestamp units, ``lsr`` the middle 32 bits of the last SR's
    NTP time and ``dlsr`` the delay since that SR in 1/65536 s.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction lost {self.fraction_lost} is outside 0..255")
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise ValueError(f"cumulative lost {self.cumulative_lost} does not fit 24 bits signed")
        for name in ("ssrc", "highest_seq", "jitter", "lsr", "dlsr"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ValueError(f"report block {name} {getattr(self, name)} is not a 32-bit value")

    def to_bytes(self) -> bytes:
        lost = (self.cumulative_lost & 0xFFFFFF).to_bytes(3, "big")
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr)

    @classmethod
    def from_bytes(cls, data: bytes, pos: int) -> "ReportBlock":
        ssrc, frac, lost, hi, jit, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        cum = int.from_bytes(lost, "big")
        if cum & 0x800000:
            cum -= 1 << 24
        return cls(ssrc, frac, cum, hi, jit, lsr, dlsr)


def _blocks(body: bytes, pos: int, count: int, what: str) -> tuple[tuple[ReportBlock, ...], int]:
    if len(body) < pos + 24 * count:
        raise ValueError(f"{what} announces {count} report blocks but its body is {len(body)} bytes")
    return tuple(ReportBlock.from_bytes(body, pos + 24 * i) for i in range(count)), pos + 24 * count


@dataclass(frozen=True)
class SenderReport:
    """SR: sender info (64-bit NTP time, RTP time, counts) plus report blocks."""

    packet_type: ClassVar[int] = SR
    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def body(self) -> tuple[int, bytes]:
        head = struct.pack("!IQIII", self.ssrc, self.ntp, self.rtp_timestamp, self.packet_count, self.octet_count)
        return len(self.reports), head + b"".join(r.to_bytes() for r in self.reports) + self.extension

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "SenderReport":
        if len(body) < 24:
            raise ValueError(f"SR body is {len(body)} bytes; sender info needs 24")
        ssrc, ntp, ts, pc, oc = struct.unpack_from("!IQIII", body, 0)
        reports, pos = _blocks(body, 24, count, "SR")
        return cls(ssrc, ntp, ts, pc, oc, reports, bytes(body[pos:]))


@dataclass(frozen=True)
class ReceiverReport:
    """RR: the reporter's SSRC plus report blocks."""

    packet_type: ClassVar[int] = RR
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def body(self) -> tuple[int, bytes]:
        return len(self.reports), struct.pack("!I", self.ssrc) + b"".join(r.to_bytes() for r in self.reports) + self.extension

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "ReceiverReport":
        if len(body) < 4:
            raise ValueError(f"RR body is {len(body)} bytes; the SSRC needs 4")
        reports, pos = _blocks(body, 4, count, "RR")
        return cls(struct.unpack_from("!I", body, 0)[0], reports, bytes(body[pos:]))


@dataclass(frozen=True)
class SdesChunk:
    """One SSRC and its items as (type, text) pairs, e.g. ``((SDES_CNAME, "a@host"),)``."""

    ssrc: int
    items: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Sdes:
    """SDES: source descriptions (at least the CNAME in every compound packet)."""

    packet_type: ClassVar[int] = SDES
    chunks: tuple[SdesChunk, ...] = ()

    def body(self) -> tuple[int, bytes]:
        out = bytearray()
        for chunk in self.chunks:
            out += struct.pack("!I", chunk.ssrc)
            for kind, text in chunk.items:
                raw = text.encode("utf-8")
                if not 1 <= kind <= 255 or len(raw) > 255:
                    raise ValueError(f"SDES item type {kind} with {len(raw)} bytes cannot be encoded")
                out += bytes([kind, len(raw)]) + raw
            out += bytes(4 - len(out) % 4)  # null item plus padding to the word boundary
        return len(self.chunks), bytes(out)

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "Sdes":
        chunks, pos = [], 0
        for _ in range(count):
            if pos + 4 > len(body):
                raise ValueError(f"SDES chunk at body byte {pos} is truncated")
            ssrc = struct.unpack_from("!I", body, pos)[0]
            pos += 4
            items: list[tuple[int, str]] = []
            while True:
                if pos >= len(body):
                    raise ValueError(f"SDES chunk for SSRC {ssrc:#x} has no terminating null item")
                kind = body[pos]
                if kind == 0:
                    pos = (pos // 4 + 1) * 4
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise ValueError(f"SDES item at body byte {pos} runs past the packet")
                raw = body[pos + 2 : pos + 2 + body[pos + 1]]
                try:
                    items.append((kind, raw.decode("utf-8")))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"SDES item at body byte {pos} is not UTF-8") from exc
                pos += 2 + len(raw)
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))


@dataclass(frozen=True)
class Bye:
    """BYE: these sources leave, with an optional reason."""

    packet_type: ClassVar[int] = BYE
    ssrcs: tuple[int, ...] = ()
    reason: str = ""

    def body(self) -> tuple[int, bytes]:
        out = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason:
            raw = self.reason.encode("utf-8")[:255]
            out += bytes([len(raw)]) + raw
            out += bytes(-len(out) % 4)
        return len(self.ssrcs), out

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "Bye":
        if len(body) < 4 * count:
            raise ValueError(f"BYE announces {count} sources but its body is {len(body)} bytes")
        ssrcs = struct.unpack_from(f"!{count}I", body, 0)
        reason, pos = "", 4 * count
        if pos < len(body):
            n = body[pos]
            if pos + 1 + n > len(body):
                raise ValueError(f"BYE reason length {n} runs past the packet")
            reason = body[pos + 1 : pos + 1 + n].decode("utf-8", errors="replace")
        return cls(tuple(ssrcs), reason)


@dataclass(frozen=True)
class App:
    """APP: application-defined packet with a 4-character ASCII name (RFC 3550 6.7).

    An APP packet whose name is not 4 ASCII bytes parses as ``RawRtcp`` (kept
    byte for byte, not interpreted): it survives parse -> serialize -> parse.
    """

    packet_type: ClassVar[int] = APP
    subtype: int
    ssrc: int
    name: str
    data: bytes = b""

    def body(self) -> tuple[int, bytes]:
        raw = self.name.encode("utf-8")
        if len(raw) != 4 or not raw.isascii() or not 0 <= self.subtype <= 31 or len(self.data) % 4:
            raise ValueError("APP needs a 4-character ASCII name, subtype 0..31 and data in whole words")
        return self.subtype, struct.pack("!I", self.ssrc) + raw + self.data

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "App | RawRtcp":
        if len(body) < 8:
            raise ValueError(f"APP body is {len(body)} bytes; SSRC and name need 8")
        if not body[4:8].isascii() or (len(body) - 8) % 4:
            return RawRtcp(APP, count, bytes(body))
        return cls(count, struct.unpack_from("!I", body, 0)[0], body[4:8].decode("ascii"), bytes(body[8:]))


@dataclass(frozen=True)
class RawRtcp:
    """An RTCP packet of a type this package does not decode (kept, not interpreted)."""

    packet_type: int
    count: int = 0
    data: bytes = field(default=b"")

    def body(self) -> tuple[int, bytes]:
        return self.count, self.data


RtcpPacket = Union[SenderReport, ReceiverReport, Sdes, Bye, App, XrPacket, RawRtcp]
_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket]] = {
    SR: SenderReport.from_body,
    RR: ReceiverReport.from_body,
    SDES: Sdes.from_body,
    BYE: Bye.from_body,
    APP: App.from_body,
    XR: XrPacket.from_body,
}


def serialize_packet(packet: RtcpPacket) -> bytes:
    """One RTCP packet with its common header (no padding)."""
    count, body = packet.body()
    if len(body) % 4:
        raise ValueError(f"RTCP type {packet.packet_type} body is {len(body)} bytes, not whole words")
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP type {packet.packet_type} count {count} does not fit 5 bits")
    return struct.pack("!BBH", 0x80 | count, packet.packet_type, len(body) // 4) + body


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """A compound packet; RFC 3550 wants it to start with SR or RR (checked)."""
    if not packets or packets[0].packet_type not in (SR, RR):
        raise ValueError("a compound RTCP packet must start with SR or RR")
    return b"".join(serialize_packet(p) for p in packets)


def parse_compound(data: bytes) -> tuple[RtcpPacket, ...]:
    """Split and decode a compound packet after the RFC 3550 A.2 validity checks."""
    if len(data) < 4:
        raise ValueError(f"RTCP datagram is {len(data)} bytes; a header needs 4")
    if data[1] not in (SR, RR):
        raise ValueError(f"compound RTCP starts with packet type {data[1]}, not SR/RR")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError(f"RTCP header at byte {pos} is truncated")
        b0, pt, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise ValueError(f"RTCP version {b0 >> 6} at byte {pos}; only version 2 is supported")
        end = pos + 4 * (words + 1)
        if end > len(data):
            raise ValueError(f"RTCP length {words} at byte {pos} runs past the datagram ({len(data)} bytes)")
        body = data[pos + 4 : end]
        if b0 & 0x20:
            if end != len(data):
                raise ValueError(f"RTCP padding bit set at byte {pos} on a packet that is not the last")
            pad = data[end - 1]
            if pad == 0 or pad > len(body):
                raise ValueError(f"RTCP padding count {pad} at byte {pos} is invalid")
            body = body[: len(body) - pad]
        parser = _PARSERS.get(pt)
        try:
            packet = parser(b0 & 0x1F, bytes(body)) if parser else RawRtcp(pt, b0 & 0x1F, bytes(body))
        except (struct.error, IndexError) as exc:  # defensive: never leak low-level errors
            raise ValueError(f"RTCP type {pt} at byte {pos} is malformed: {exc}") from exc
        out.append(packet)
        pos = end
    return tuple(out)
