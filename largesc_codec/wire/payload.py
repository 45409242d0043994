"""LargeSC RTP payload format (docs/payload-format.md): pure pack/unpack.

Layout: a table of contents (one byte per block, plus one extension byte for
distances >= 3), then the 11-bit tokens of every block in ToC order, MSB first,
zero-padded to a byte boundary.

ToC byte:  F(1) | D(2) | K-1(5)
  F = 1: another ToC entry follows.
  D = 0: primary frame (the n-th primary block is the frame at RTP timestamp + n frames);
  D = 1, 2: redundant copy of the frame D frames before the first primary frame;
  D = 3: an extension byte follows holding the distance (3..255).
  K-1: codebooks in the block minus one (1..32 codebooks).

Rules: primary blocks first (at least one), then redundant blocks, each distance
at most once, in any order on the wire (``pack`` writes ascending distance);
at most 16 blocks and 1200 bytes; the token data is exactly
ceil(11 * total tokens / 8) bytes with zero padding bits. Anything else raises
ValueError naming the problem (and the byte offset where there is one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral

from largesc_codec.types import CARDINALITY, MAX_CODEBOOKS, TOKEN_BITS

MAX_DISTANCE = 255
MAX_BLOCKS = 16
MAX_PAYLOAD_BYTES = 1200
_EXT = 3  # D value announcing an extension byte
_TOKEN_MASK = (1 << TOKEN_BITS) - 1


def payload_size(blocks: Sequence[tuple[int, int]]) -> int:
    """Bytes of a payload holding ``blocks`` = [(distance, codebooks), ...] (distance 0 = primary)."""
    toc = sum(2 if d >= 3 else 1 for d, _ in blocks)
    bits = TOKEN_BITS * sum(k for _, k in blocks)
    return toc + (bits + 7) // 8


def _as_int(value: object, what: str) -> int:
    # numpy integers are Integral but not int; bool is an int but never a token.
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _tokens(tokens: Iterable[object], what: str) -> tuple[int, ...]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
        raise ValueError(f"{what}: tokens must be a sequence of integers, got {type(tokens).__name__}")
    out = tuple(_as_int(t, f"{what} codebook {k} token") for k, t in enumerate(tokens))
    if not 1 <= len(out) <= MAX_CODEBOOKS:
        raise ValueError(f"{what} holds {len(out)} codebooks; a block holds 1..{MAX_CODEBOOKS}")
    for k, t in enumerate(out):
        if not 0 <= t < CARDINALITY:
            raise ValueError(f"{what} codebook {k} token {t} is outside 0..{CARDINALITY - 1}")
    return out


@dataclass(frozen=True)
class Block:
    """One ToC entry and its tokens: ``distance`` 0 = primary, 1..255 = redundant copy.

    ``tokens[k]`` is the token of codebook ``k`` (0 = semantic), ints in 0..2047,
    1..32 of them. Construction validates and normalises (numpy ints -> int).
    """

    distance: int
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        d = _as_int(self.distance, "block distance")
        if not 0 <= d <= MAX_DISTANCE:
            raise ValueError(f"block distance {d} is outside 0..{MAX_DISTANCE}")
        object.__setattr__(self, "distance", d)
        object.__setattr__(self, "tokens", _tokens(self.tokens, f"block (distance {d})"))

    @property
    def codebooks(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Payload:
    """The content of one LargeSC payload.

    ``primary[n]`` holds the tokens of the frame at (RTP timestamp's frame + n);
    ``redundant`` holds copies of earlier frames, ``Block.distance`` frames before
    ``primary[0]``, normalised to ascending distance (the wire order of redundant
    blocks carries no meaning, so payloads differing only in it compare equal).
    """

    primary: tuple[tuple[int, ...], ...]
    redundant: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.primary, (str, bytes)) or not isinstance(self.primary, Iterable):
            raise ValueError(f"primary must be a sequence of token sequences, got {type(self.primary).__name__}")
        primary = tuple(_tokens(p, f"primary block {n}") for n, p in enumerate(self.primary))
        if not primary:
            raise ValueError("a payload needs at least one primary block")
        redundant = tuple(self.redundant)
        for b in redundant:
            if not isinstance(b, Block):
                raise ValueError(f"redundant entries must be Block, got {type(b).__name__}")
            if b.distance == 0:
                raise ValueError("a redundant block needs distance 1..255; distance 0 means primary")
        distances = [b.distance for b in redundant]
        if len(set(distances)) != len(distances):
            dup = sorted({d for d in distances if distances.count(d) > 1})
            raise ValueError(f"duplicate redundant distance(s) {dup}: each distance at most once")
        if len(primary) + len(redundant) > MAX_BLOCKS:
            raise ValueError(
                f"{len(primary)} primary + {len(redundant)} redundant blocks exceed {MAX_BLOCKS} per payload"
            )
        object.__setattr__(self, "primary", primary)
        object.__setattr__(self, "redundant", tuple(sorted(redundant, key=lambda b: b.distance)))

    @property
    def blocks(self) -> tuple[Block, ...]:
        """All blocks in wire (ToC) order: primaries, then redundancy by ascending distance."""
        return tuple(Block(0, p) for p in self.primary) + self.redundant

    def size(self) -> int:
        """Bytes ``pack`` will produce (same as ``payload_size``)."""
        return payload_size([(0, len(p)) for p in self.primary] + [(b.distance, b.codebooks) for b in self.redundant])


def pack(payload: Payload) -> bytes:
    """Serialise ``payload`` (validated on construction) to payload bytes."""
    if not isinstance(payload, Payload):
        raise ValueError(f"pack() takes a Payload, got {type(payload).__name__}")
    entries = [(0, p) for p in payload.primary] + [(b.distance, b.tokens) for b in payload.redundant]
    toc = bytearray()
    acc, ntok = 0, 0
    for i, (d, tokens) in enumerate(entries):
        more = 0x80 if i + 1 < len(entries) else 0
        toc.append(more | (min(d, _EXT) << 5) | (len(tokens) - 1))
        if d >= _EXT:
            toc.append(d)
        for t in tokens:
            acc = (acc << TOKEN_BITS) | t
        ntok += len(tokens)
    nbytes = (ntok * TOKEN_BITS + 7) // 8
    acc <<= nbytes * 8 - ntok * TOKEN_BITS  # zero padding bits at the end
    out = bytes(toc) + acc.to_bytes(nbytes, "big")
    if len(out) > MAX_PAYLOAD_BYTES:  # unreachable within 16 blocks of 32 codebooks; kept as a guard
        raise ValueError(f"payload of {len(out)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return out


def parse_toc(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """Parse and check the ToC only: ([(distance, codebooks), ...] in wire order, data offset)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise ValueError("empty payload: at least one ToC byte and its tokens are needed")
    if n > MAX_PAYLOAD_BYTES:
        raise ValueError(f"oversize payload: {n} bytes exceed the {MAX_PAYLOAD_BYTES}-byte maximum")
    entries: list[tuple[int, int]] = []
    seen: set[int] = set()
    off, more = 0, True
    while more:
        if off >= n:
            raise ValueError(f"truncated ToC at byte offset {off}: the previous entry has F=1 but the payload ends")
        if len(entries) == MAX_BLOCKS:
            raise ValueError(f"too many blocks: ToC entry at byte offset {off} would be block {MAX_BLOCKS + 1}")
        start, b = off, data[off]
        more, d, k = bool(b & 0x80), (b >> 5) & 3, (b & 0x1F) + 1
        off += 1
        if d == _EXT:
            if off >= n:
                raise ValueError(f"ToC entry at byte offset {start} has D=3 but its extension byte is missing")
            d = data[off]
            if d < _EXT:
                raise ValueError(
                    f"non-canonical extension distance {d} at byte offset {off}: must be 3..255 "
                    "(distances 1 and 2 use D=1/2, 0 is primary)"
                )
            off += 1
        if d == 0 and entries and entries[-1][0] != 0:
            raise ValueError(f"primary block at byte offset {start} follows a redundant block: primaries come first")
        if d != 0 and not entries:
            raise ValueError(
                f"no primary block first: the block at byte offset {start} is redundant (distance {d}); "
                "a payload starts with at least one primary block"
            )
        if d != 0:
            if d in seen:
                raise ValueError(f"duplicate redundant distance {d} at byte offset {start}")
            seen.add(d)
        entries.append((d, k))
    return entries, off


def unpack(data: bytes) -> Payload:
    """Parse payload bytes; raises ValueError on any malformed input."""
    entries, off = parse_toc(data)
    ntok = sum(k for _, k in entries)
    need = (ntok * TOKEN_BITS + 7) // 8
    have = len(data) - off
    if have < need:
        raise ValueError(
            f"token data truncated: the ToC declares {ntok} token(s) = {need} byte(s) from byte offset {off}, "
            f"only {have} present"
        )
    if have > need:
        raise ValueError(f"{have - need} trailing byte(s) at byte offset {off + need} after the token data")
    acc = int.from_bytes(data[off:], "big")
    pad = need * 8 - ntok * TOKEN_BITS
    if acc & ((1 << pad) - 1):
        raise ValueError(f"nonzero padding bits in the last byte (byte offset {len(data) - 1}): padding must be zero")
    acc >>= pad
    flat = [(acc >> (TOKEN_BITS * (ntok - 1 - i))) & _TOKEN_MASK for i in range(ntok)]
    primary: list[tuple[int, ...]] = []
    redundant: list[Block] = []
    pos = 0
    for d, k in entries:
        tokens = tuple(flat[pos : pos + k])
        pos += k
        if d == 0:
            primary.append(tokens)
        else:
            redundant.append(Block(d, tokens))
    return Payload(tuple(primary), tuple(redundant))
