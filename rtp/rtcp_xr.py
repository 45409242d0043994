"""RTCP Extended Reports (RFC 3611), with the Loss RLE block LargeSC's feedback uses.

An XR packet is the reporter's SSRC followed by report blocks, each
``BT(8) | type-specific(8) | block length(16)`` (length in 32-bit words minus
one, header included). The Loss RLE block (BT=1) says, packet by packet, which
sequence numbers in ``[begin_seq, end_seq)`` arrived. From it the media sender
recovers both the loss fraction and the loss-burst structure of the interval,
which an RR's 8-bit fraction cannot carry: ``LossRleBlock.report`` (and
``burst_report`` for a per-packet map) gives a ``LossReport(fraction_lost,
mean_burst)``. Parsing costs time and memory linear in the bytes read: a
block's claimed range is never expanded (see ``LossRleBlock``).

Chunk encoding (16 bits each): ``0 R len(14)`` is a run of ``len`` packets
received (R=1) or lost (R=0); ``1 bits(15)`` is a bit vector, MSB first,
1 = received; ``0x0000`` is the null chunk that pads to a word boundary.
Thinning (T) is always 0 here. Unknown block types survive as ``RawXrBlock``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Sequence, Union

from rtp.feedback import LossReport

LOSS_RLE = 1
_MAX_RUN = 0x3FFF
_VECTOR_BITS = 15


@dataclass(frozen=True)
class LossRleBlock:
    """Which packets of ``[begin_seq, end_seq)`` arrived, as the wire's chunks (``of`` builds one from flags).

    A parsed block keeps its chunks and is never expanded to one flag per
    packet: a 65,535-packet claim costs what its bytes cost, and ``report``
    reads fraction and bursts off the runs (time linear in the chunks).
    """

    block_type: ClassVar[int] = LOSS_RLE
    ssrc: int
    begin_seq: int
    end_seq: int
    chunks: tuple[int, ...] = ()

    @classmethod
    def of(cls, ssrc: int, begin_seq: int, received: Sequence[bool]) -> "LossRleBlock":
        """The block saying which packets from ``begin_seq`` on arrived (True = received)."""
        if not 0 <= begin_seq <= 0xFFFF:
            raise ValueError(f"Loss RLE begin_seq {begin_seq} is outside 0..65535")
        if len(received) > 0xFFFF:
            raise ValueError(f"Loss RLE covers {len(received)} packets; at most 65535 fit")
        return cls(ssrc, begin_seq, (begin_seq + len(received)) & 0xFFFF, tuple(encode_chunks(received)))

    @property
    def count(self) -> int:
        """Packets covered."""
        return (self.end_seq - self.begin_seq) & 0xFFFF

    @property
    def received(self) -> tuple[bool, ...]:
        """One flag per packet covered (expands: for blocks we built, or bounded local use)."""
        return decode_chunks(self.chunks, self.count)

    def report(self) -> LossReport | None:
        """Loss fraction and mean burst, from the runs (as ``burst_report(self.received)``)."""
        lost = bursts = 0
        previous_lost = False
        for flag, length in chunk_runs(self.chunks, self.count):
            if not flag:
                lost += length
                bursts += 0 if previous_lost else 1
            previous_lost = not flag
        if self.count == 0:
            return None
        return LossReport(fraction_lost=lost / self.count, mean_burst=lost / bursts if bursts else 1.0)

    def body(self) -> tuple[int, bytes]:
        chunks = list(self.chunks)
        if len(chunks) % 2:
            chunks.append(0)  # null chunk pads to a 32-bit boundary
        head = struct.pack("!IHH", self.ssrc, self.begin_seq, self.end_seq)
        return 0, head + struct.pack(f"!{len(chunks)}H", *chunks)

    @classmethod
    def from_body(cls, type_specific: int, body: bytes) -> "LossRleBlock":
        if len(body) < 8:
            raise ValueError(f"Loss RLE block body is {len(body)} bytes; SSRC and sequence range need 8")
        if type_specific & 0x0F:
            raise ValueError(f"Loss RLE thinning {type_specific & 0x0F} is not supported (only T=0)")
        ssrc, begin, end = struct.unpack_from("!IHH", body, 0)
        chunks = list(struct.unpack_from(f"!{(len(body) - 8) // 2}H", body, 8))
        while chunks and chunks[-1] == 0:
            chunks.pop()  # null padding
        block = cls(ssrc, begin, end, tuple(chunks))
        for _ in chunk_runs(block.chunks, block.count):  # validate: the chunks cover the range exactly
            pass
        return block


@dataclass(frozen=True)
class RawXrBlock:
    """An XR block of a type not decoded here."""

    block_type: int
    type_specific: int = 0
    data: bytes = b""

    def body(self) -> tuple[int, bytes]:
        return self.type_specific, self.data


XrBlock = Union[LossRleBlock, RawXrBlock]
_BLOCK_PARSERS: dict[int, Callable[[int, bytes], XrBlock]] = {LOSS_RLE: LossRleBlock.from_body}


@dataclass(frozen=True)
class XrPacket:
    """XR (PT 207): the reporter's SSRC and its report blocks."""

    packet_type: ClassVar[int] = 207
    ssrc: int
    blocks: tuple[XrBlock, ...] = ()

    def body(self) -> tuple[int, bytes]:
        out = bytearray(struct.pack("!I", self.ssrc))
        for block in self.blocks:
            specific, data = block.body()
            if len(data) % 4:
                raise ValueError(f"XR block type {block.block_type} body is not whole words")
            out += struct.pack("!BBH", block.block_type, specific, len(data) // 4) + data
        return 0, bytes(out)

    @classmethod
    def from_body(cls, count: int, body: bytes) -> "XrPacket":
        if len(body) < 4:
            raise ValueError(f"XR body is {len(body)} bytes; the SSRC needs 4")
        blocks: list[XrBlock] = []
        pos = 4
        while pos < len(body):
            if pos + 4 > len(body):
                raise ValueError(f"XR block header at body byte {pos} is truncated")
            bt, specific, words = struct.unpack_from("!BBH", body, pos)
            end = pos + 4 + 4 * words
            if end > len(body):
                raise ValueError(f"XR block type {bt} length {words} at body byte {pos} runs past the packet")
            data = bytes(body[pos + 4 : end])
            parser = _BLOCK_PARSERS.get(bt)
            blocks.append(parser(specific, data) if parser else RawXrBlock(bt, specific, data))
            pos = end
        return cls(struct.unpack_from("!I", body, 0)[0], tuple(blocks))


def encode_chunks(received: Sequence[bool]) -> list[int]:
    """Greedy RLE: runs of 15 or more become run chunks, the rest bit vectors."""
    chunks: list[int] = []
    i, n = 0, len(received)
    while i < n:
        run = 1
        while i + run < n and received[i + run] == received[i] and run < _MAX_RUN:
            run += 1
        if run >= _VECTOR_BITS or (i + run == n and run > 1):
            chunks.append((0x4000 if received[i] else 0) | run)
            i += run
            continue
        bits = 0
        for k in range(_VECTOR_BITS):
            bits = (bits << 1) | (1 if i + k < n and received[i + k] else 0)
        chunks.append(0x8000 | bits)
        i += _VECTOR_BITS
    return chunks


def chunk_runs(chunks: Sequence[int], count: int) -> Iterator[tuple[bool, int]]:
    """(received, length) runs of ``count`` packets; ValueError when the chunks do not cover them exactly.

    Bits of a final bit vector past ``count`` are ignored; chunks after the range must be null.
    """
    covered = 0
    for index, chunk in enumerate(chunks):
        if covered >= count:
            if chunk != 0:
                raise ValueError(f"Loss RLE chunk {index} lies beyond the {count} packets of the range")
            continue
        if chunk == 0:
            break
        if chunk & 0x8000:
            need = min(_VECTOR_BITS, count - covered)
            for k in range(need):
                yield bool(chunk >> (_VECTOR_BITS - 1 - k) & 1), 1
            covered += need
        else:
            run = chunk & _MAX_RUN
            if covered + run > count:
                raise ValueError(f"Loss RLE run chunk {index} of {run} packets overruns the {count}-packet range")
            yield bool(chunk & 0x4000), run
            covered += run
    if covered != count:
        raise ValueError(f"Loss RLE chunks cover {covered} packets but the range holds {count}")


def decode_chunks(chunks: Sequence[int], count: int) -> tuple[bool, ...]:
    """Expand chunks to ``count`` received flags; ValueError when they do not cover it."""
    out: list[bool] = []
    for flag, length in chunk_runs(chunks, count):
        out.extend([flag] * length)
    return tuple(out)


def burst_report(received: Sequence[bool]) -> LossReport | None:
    """Loss fraction and mean loss-burst length (packets) of a reception map; None if empty.

    A burst is a maximal run of consecutive lost packets; with no loss the
    mean burst is reported as 1.0 (the LossReport default).
    """
    if not received:
        return None
    lost = sum(1 for r in received if not r)
    bursts = sum(1 for i, r in enumerate(received) if not r and (i == 0 or received[i - 1]))
    return LossReport(fraction_lost=lost / len(received), mean_burst=lost / bursts if bursts else 1.0)
