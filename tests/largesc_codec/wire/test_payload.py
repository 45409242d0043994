"""Payload format: golden vectors, the RFC-style doc's examples, every malformed class, round trips.

The oracle for byte layouts is ``_reference_pack``: a bit-string encoder written
straight from docs/payload-format.md (format(t, "011b") per token), independent
of the integer bit packing in largesc_codec.wire.payload.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from largesc_codec.wire.payload import (
    MAX_BLOCKS,
    MAX_PAYLOAD_BYTES,
    Block,
    Payload,
    pack,
    parse_toc,
    payload_size,
    unpack,
)

ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "tests/fixtures/payload/vectors.json").read_text())
DOC = (ROOT / "docs/payload-format.md").read_text()


def _reference_pack(blocks: list[tuple[int, list[int]]]) -> bytes:
    """Blocks in wire order [(distance, tokens)] -> bytes, via a string of '0'/'1'."""
    toc, data = "", ""
    for i, (d, tokens) in enumerate(blocks):
        toc += ("1" if i + 1 < len(blocks) else "0") + format(min(d, 3), "02b") + format(len(tokens) - 1, "05b")
        if d >= 3:
            toc += format(d, "08b")
        data += "".join(format(t, "011b") for t in tokens)
    bits = toc + data + "0" * (-len(data) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def _wire_blocks(p: Payload) -> list[tuple[int, list[int]]]:
    return [(0, list(t)) for t in p.primary] + [(b.distance, list(b.tokens)) for b in p.redundant]


# ---------------------------------------------------------------- golden vectors


@pytest.mark.parametrize("vec", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_and_repacks(vec: dict) -> None:
    data = bytes.fromhex(vec["hex"])
    p = unpack(data)
    assert [list(t) for t in p.primary] == vec["primary"]
    assert [[b.distance, list(b.tokens)] for b in p.redundant] == vec["redundant"]
    canonical = bytes.fromhex(vec.get("canonical_hex", vec["hex"]))
    assert pack(p) == canonical == _reference_pack(_wire_blocks(p))
    assert len(canonical) == payload_size([(d, len(t)) for d, t in _wire_blocks(p)]) == p.size()


def test_vector_set_covers_the_format_limits() -> None:
    sizes = {v["name"]: len(v["hex"]) // 2 for v in VECTORS["valid"]}
    payloads = {v["name"]: unpack(bytes.fromhex(v["hex"])) for v in VECTORS["valid"]}
    assert sizes["max-size"] == 735  # 1 + 15 * 2 ToC bytes + 16 * 32 * 11 / 8 token bytes
    assert len(payloads["sixteen-blocks"].blocks) == MAX_BLOCKS
    assert any(len(p.primary) > 1 for p in payloads.values())
    assert any(b.distance == 255 for p in payloads.values() for b in p.redundant)
    assert any("canonical_hex" in v for v in VECTORS["valid"])


@pytest.mark.parametrize("vec", VECTORS["malformed"], ids=lambda v: v["name"])
def test_malformed_vector_raises_named_error(vec: dict) -> None:
    with pytest.raises(ValueError) as err:
        unpack(bytes.fromhex(vec["hex"]))
    assert vec["error"] in str(err.value)


# ---------------------------------------------------------------- the document's examples

_BLOCK_RE = re.compile(r"([PR])(\d*)\[([\d, ]+)\]")


def _doc_examples() -> list[tuple[str, bytes]]:
    """(Blocks line, bytes) of every example: "Bytes:" may continue on lines of bare hex pairs."""
    out, lines = [], DOC.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Blocks:"):
            assert lines[i + 1].strip().startswith("Bytes:"), lines[i + 1]
            hexs = lines[i + 1].split("Bytes:")[1]
            for cont in lines[i + 2 :]:
                if not re.fullmatch(r"\s+([0-9a-f]{2} ?)+", cont):
                    break
                hexs += " " + cont
            out.append((line.split("Blocks:")[1].strip(), bytes.fromhex(hexs)))
    return out


def _parse_doc_blocks(text: str) -> list[tuple[int, list[int]]]:
    out = []
    for kind, dist, toks in _BLOCK_RE.findall(text):
        out.append((0 if kind == "P" else int(dist), [int(t) for t in toks.split(",")]))
    return out


def test_doc_has_at_least_three_worked_examples() -> None:
    assert len(_doc_examples()) >= 3


@pytest.mark.parametrize("blocks,data", _doc_examples(), ids=lambda x: x if isinstance(x, str) else "")
def test_doc_example_bytes_equal_pack(blocks: str, data: bytes) -> None:
    wire = _parse_doc_blocks(blocks)
    p = Payload(tuple(tuple(t) for d, t in wire if d == 0), tuple(Block(d, tuple(t)) for d, t in wire if d))
    assert pack(p) == data == _reference_pack(wire)
    assert unpack(data) == p
    assert data.hex() in {v["hex"] for v in VECTORS["valid"]}  # the doc and the fixtures agree


def test_doc_example_one_by_hand() -> None:
    # Section 11.1, worked out bit by bit: ToC 00000011, then 1234, 5, 2047, 0, four zero bits.
    bits = "00000011" + "10011010010" + "00000000101" + "11111111111" + "00000000000" + "0000"
    expected = bytes(int(bits[i : i + 8], 2) for i in range(0, 56, 8))
    assert pack(Payload(((1234, 5, 2047, 0),))) == expected == bytes.fromhex("039a4017ff8000")


def test_doc_malformed_table_rows_are_rejected() -> None:
    rows = re.findall(r"^\| `([0-9a-f ]+)`\s+\|", DOC, flags=re.MULTILINE)
    assert len(rows) >= 6
    for row in rows:
        with pytest.raises(ValueError):
            unpack(bytes.fromhex(row))


# ---------------------------------------------------------------- malformed classes, one by one


def _raises(data: bytes, *needles: str) -> str:
    with pytest.raises(ValueError) as err:
        unpack(data)
    msg = str(err.value)
    for n in needles:
        assert n in msg, msg
    return msg


def test_unpack_rejects_each_malformed_class() -> None:
    good = pack(Payload(((1, 2, 3),), (Block(1, (4,)), Block(7, (5, 6)))))
    _raises(b"", "empty")
    _raises(bytes([0x80]), "truncated ToC", "offset 1")
    _raises(bytes([0x80, 0xE0]), "extension byte is missing", "offset 1")
    for ext in (0, 1, 2):
        _raises(bytes([0x80, 0x60, ext, 0, 0, 0, 0]), "non-canonical extension", "offset 2")
    _raises(good[:-1], "token data truncated")
    _raises(good + b"\x00", "trailing", f"offset {len(good)}")
    _raises(good[:-1] + bytes([good[-1] | 1]), "nonzero padding")
    _raises(bytes([0x80] * 16 + [0x00]) + bytes(23), "too many blocks", "offset 16")
    _raises(bytes(MAX_PAYLOAD_BYTES + 1), "oversize")
    _raises(_reference_pack([(2, [1]), (0, [2])]), "no primary")
    _raises(_reference_pack([(9, [1])]), "no primary")
    _raises(_reference_pack([(0, [1]), (3, [2]), (0, [3])]), "primary block", "follows a redundant", "offset 3")
    _raises(_reference_pack([(0, [1]), (2, [2]), (2, [3])]), "duplicate redundant distance 2")


def test_unpack_rejects_non_bytes() -> None:
    with pytest.raises(ValueError, match="bytes"):
        unpack("0300")  # type: ignore[arg-type]


def test_every_proper_prefix_and_every_extension_is_malformed() -> None:
    data = bytes.fromhex(next(v["hex"] for v in VECTORS["valid"] if v["name"] == "one-frame-8cb-red1-red2"))
    for n in range(len(data)):
        with pytest.raises(ValueError):
            unpack(data[:n])
    for extra in (b"\x00", b"\xff", b"\x00\x00"):
        with pytest.raises(ValueError, match="trailing"):
            unpack(data + extra)


def test_parse_toc_reports_entries_and_data_offset() -> None:
    data = _reference_pack([(0, [1, 2]), (0, [3]), (1, [4]), (200, [5, 6, 7])])
    assert parse_toc(data) == ([(0, 2), (0, 1), (1, 1), (200, 3)], 5)


# ---------------------------------------------------------------- pack-side validation


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: Payload(((2048,),)), "outside 0..2047"),
        (lambda: Payload(((-1,),)), "outside 0..2047"),
        (lambda: Payload(((1.0,),)), "must be an integer"),  # type: ignore[arg-type]
        (lambda: Payload(((True,),)), "must be an integer"),
        (lambda: Payload((("7",),)), "must be an integer"),  # type: ignore[arg-type]
        (lambda: Payload(((),)), "1..32"),
        (lambda: Payload(((1,) * 33,)), "1..32"),
        (lambda: Payload(()), "at least one primary"),
        (lambda: Payload((1, 2)), "sequence of integers"),  # type: ignore[arg-type]  # flat tokens, not blocks
        (lambda: Payload("ab"), "sequence of token sequences"),  # type: ignore[arg-type]
        (lambda: Payload(((1,),), (Block(0, (1,)),)), "distance 1..255"),
        (lambda: Payload(((1,),), ((1, (2,)),)), "must be Block"),  # type: ignore[arg-type]
        (lambda: Payload(((1,),), (Block(4, (1,)), Block(4, (2,)))), "duplicate redundant distance"),
        (lambda: Payload(((1,),) * 10, tuple(Block(d, (1,)) for d in range(1, 8))), "exceed 16"),
        (lambda: Block(256, (1,)), "outside 0..255"),
        (lambda: Block(-1, (1,)), "outside 0..255"),
        (lambda: Block(1.5, (1,)), "must be an integer"),  # type: ignore[arg-type]
    ],
)
def test_invalid_content_is_rejected_with_a_clear_error(make, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=re.escape(needle)):
        make()


def test_pack_rejects_non_payload() -> None:
    with pytest.raises(ValueError, match="Payload"):
        pack(((1, 2),))  # type: ignore[arg-type]


def test_content_is_normalised() -> None:
    a = Payload([np.array([5, 6], dtype=np.int64)], [Block(np.int16(9), [7]), Block(1, (8,))])  # type: ignore[arg-type]
    b = Payload(((5, 6),), (Block(1, (8,)), Block(9, (7,))))
    assert a == b and hash(a) == hash(b)
    assert all(type(t) is int for t in a.primary[0]) and type(a.redundant[1].distance) is int
    assert [blk.distance for blk in a.blocks] == [0, 1, 9]


# ---------------------------------------------------------------- properties

_token = st.integers(0, 2047)
_tokens = st.lists(_token, min_size=1, max_size=32).map(tuple)


@st.composite
def _payloads(draw: st.DrawFn) -> Payload:
    primary = draw(st.lists(_tokens, min_size=1, max_size=MAX_BLOCKS))
    room = MAX_BLOCKS - len(primary)
    distances = draw(st.lists(st.integers(1, 255), unique=True, max_size=room))
    return Payload(tuple(primary), tuple(Block(d, draw(_tokens)) for d in distances))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_payloads())
def test_round_trip_and_size(p: Payload) -> None:
    data = pack(p)
    assert unpack(data) == p
    assert data == _reference_pack(_wire_blocks(p))
    assert len(data) == payload_size([(b.distance, b.codebooks) for b in p.blocks]) == p.size()
    assert len(data) <= 735


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_payloads(), st.randoms(use_true_random=False))
def test_any_wire_order_of_redundancy_decodes_to_the_same_payload(p: Payload, rnd: random.Random) -> None:
    red = list(p.redundant)
    rnd.shuffle(red)
    data = _reference_pack([(0, list(t)) for t in p.primary] + [(b.distance, list(b.tokens)) for b in red])
    assert unpack(data) == p


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        p = unpack(data)
    except ValueError:
        return
    again = pack(p)
    assert len(again) == len(data) and unpack(again) == p


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_payloads(), st.data())
def test_single_byte_corruption_never_crashes(p: Payload, data: st.DataObject) -> None:
    raw = bytearray(pack(p))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        q = unpack(bytes(raw))
    except ValueError:
        return
    assert q != p  # a valid corruption must decode to something else, never silently to the original
