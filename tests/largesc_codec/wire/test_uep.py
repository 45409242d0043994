"""UEP packetizer / depacketizer: the right frames and codebooks ride as redundancy."""

from __future__ import annotations

import random

import pytest

from largesc_codec.types import Decision, RedundancySpec, TokenFrame
from largesc_codec.wire.payload import Block, Payload, pack, unpack
from largesc_codec.wire.uep import Packetizer, depacketize


def _frame(index: int, codebooks: int = 8) -> TokenFrame:
    # Distinct, recognisable tokens: frame i codebook k -> (37 * i + k) mod 2048.
    return TokenFrame(index, tuple((37 * index + k) % 2048 for k in range(codebooks)))


def _dec(codebooks: int, *red: tuple[int, int]) -> Decision:
    return Decision(codebooks, tuple(RedundancySpec(d, k) for d, k in red))


def test_primary_frame_carries_the_decided_codebooks() -> None:
    pk = Packetizer()
    data = pk.packetize([_frame(0)], [_dec(4)])
    assert unpack(data) == Payload((_frame(0).tokens[:4],))
    out = depacketize(0, data)
    assert out.primary == [TokenFrame(0, _frame(0).tokens[:4])] and out.redundant == []


def test_more_codebooks_than_encoded_sends_what_was_encoded() -> None:
    data = Packetizer().packetize([_frame(3, codebooks=2)], [_dec(8)])
    assert unpack(data).primary == (_frame(3, 2).tokens,)


def test_redundancy_repeats_leading_codebooks_of_the_right_earlier_frames() -> None:
    pk = Packetizer(max_distance=3)
    for i in range(5):
        pk.packetize([_frame(i)], [_dec(8)])
    data = pk.packetize([_frame(5)], [_dec(6, (2, 2), (1, 4), (3, 1))])
    p = unpack(data)
    assert p.primary == (_frame(5).tokens[:6],)
    assert p.redundant == (
        Block(1, _frame(4).tokens[:4]),
        Block(2, _frame(3).tokens[:2]),
        Block(3, _frame(2).tokens[:1]),
    )
    assert data[1:4] == bytes([0xA3, 0xC1, 0x60])  # ToC in ascending distance: R1 k=4, R2 k=2, R3 (ext) k=1
    out = depacketize(5, data)
    assert out.primary == [TokenFrame(5, _frame(5).tokens[:6])]
    assert out.redundant == [
        TokenFrame(4, _frame(4).tokens[:4]),
        TokenFrame(3, _frame(3).tokens[:2]),
        TokenFrame(2, _frame(2).tokens[:1]),
    ]


def test_redundancy_is_truncated_to_what_was_encoded_not_to_what_was_sent() -> None:
    pk = Packetizer()
    pk.packetize([_frame(0, codebooks=3)], [_dec(1)])  # encoded 3, sent 1
    p = pk.build([_frame(1)], [_dec(8, (1, 8))])
    assert p.redundant == (Block(1, _frame(0, 3).tokens),)


def test_stream_start_skips_redundancy_before_frame_zero() -> None:
    pk = Packetizer(max_distance=3)
    specs = ((1, 2), (2, 2), (3, 2))
    got = [[b.distance for b in pk.build([_frame(i)], [_dec(4, *specs)]).redundant] for i in range(5)]
    assert got == [[], [1], [1, 2], [1, 2, 3], [1, 2, 3]]


def test_history_is_bounded_by_max_distance() -> None:
    pk = Packetizer(max_distance=2)
    for i in range(10):
        pk.packetize([_frame(i)], [_dec(4)])
        assert len(pk.history) <= 2
    assert pk.history == (8, 9)
    with pytest.raises(ValueError, match="outside 1..2"):
        pk.packetize([_frame(10)], [_dec(4, (3, 1))])


def test_frames_not_sent_cannot_be_repeated() -> None:
    pk = Packetizer(max_distance=3)
    pk.packetize([_frame(0)], [_dec(4)])
    pk.packetize([_frame(1)], [_dec(4)])
    # DTX: frames 2..3 never sent; frame 4 asks for 1..3 back: only frame 1 (d=3) exists.
    p = pk.build([_frame(4)], [_dec(4, (1, 2), (2, 2), (3, 2))])
    assert p.redundant == (Block(3, _frame(1).tokens[:2]),)


def test_multi_frame_packet_uses_first_decision_and_first_frame_as_reference() -> None:
    pk = Packetizer(max_distance=3)
    pk.packetize([_frame(0), _frame(1)], [_dec(8), _dec(8)])
    frames = [_frame(2), _frame(3)]
    # The second decision's redundancy is ignored; distances count back from frame 2.
    data = pk.packetize(frames, [_dec(5, (1, 3), (2, 1)), _dec(7, (1, 8))])
    p = unpack(data)
    assert p.primary == (_frame(2).tokens[:5], _frame(3).tokens[:7])
    assert p.redundant == (Block(1, _frame(1).tokens[:3]), Block(2, _frame(0).tokens[:1]))
    out = depacketize(2, data)
    assert [f.index for f in out.primary] == [2, 3]
    assert [f.index for f in out.redundant] == [1, 0]
    # Next packet: frame 3 (sent inside the previous packet) is one back from frame 4.
    p2 = pk.build([_frame(4), _frame(5)], [_dec(2, (1, 2), (2, 2)), _dec(2)])
    assert p2.redundant == (Block(1, _frame(3).tokens[:2]), Block(2, _frame(2).tokens[:2]))


def test_sixteen_block_limit_drops_the_farthest_redundancy() -> None:
    pk = Packetizer(max_distance=30)
    for i in range(30):
        pk.packetize([_frame(i)], [_dec(1)])
    frames = [_frame(30 + n) for n in range(4)]
    decisions = [_dec(2, *[(d, 1) for d in range(1, 21)])] + [_dec(2)] * 3
    p = pk.build(frames, decisions)
    assert len(p.primary) == 4 and [b.distance for b in p.redundant] == list(range(1, 13))


def test_depacketize_drops_frames_before_the_stream_start() -> None:
    raw = pack(Payload(((1, 2),), (Block(1, (3,)), Block(2, (4,)), Block(40, (5,)))))
    assert [f.index for f in depacketize(1, raw).redundant] == [0]
    assert [f.index for f in depacketize(1, raw, min_index=None).redundant] == [0, -1, -39]
    assert [f.index for f in depacketize(0, raw, min_index=None).redundant] == [-1, -2, -40]
    assert depacketize(100, raw, min_index=99).redundant == [TokenFrame(99, (3,))]


def test_depacketize_rejects_malformed_payloads() -> None:
    with pytest.raises(ValueError, match="trailing"):
        depacketize(0, bytes.fromhex("039a4017ff800000"))


@pytest.mark.parametrize(
    "frames,decisions,needle",
    [
        ([], [], "at least one frame"),
        ([_frame(0)], [], "one decision per frame"),
        ([_frame(0), _frame(2)], [_dec(1), _dec(1)], "consecutive"),
        ([_frame(0)], [_dec(0)], "at least 1"),
        ([_frame(0)], [_dec(1, (1, 0))], "asks for 0 codebooks"),
        ([_frame(0)], [_dec(1, (1, 1), (1, 2))], "repeats redundancy distance 1"),
        ([_frame(n) for n in range(17)], [_dec(1)] * 17, "exceed 16"),
    ],
)
def test_packetize_rejects_bad_input(frames, decisions, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=needle):
        Packetizer().packetize(frames, decisions)


def test_frame_indices_must_advance_until_reset() -> None:
    pk = Packetizer()
    pk.packetize([_frame(5)], [_dec(1)])
    with pytest.raises(ValueError, match="reset"):
        pk.packetize([_frame(5)], [_dec(1)])
    pk.reset()
    assert pk.history == ()
    assert unpack(pk.packetize([_frame(0)], [_dec(1, (1, 1))])).redundant == ()
    with pytest.raises(ValueError, match="max_distance"):
        Packetizer(max_distance=0)


def test_lossy_channel_recovers_lost_frames_from_later_packets() -> None:
    """Seeded loss; the receiver keeps primary over redundant, then the copy with more codebooks."""
    rng = random.Random(7)
    pk = Packetizer(max_distance=3)
    spec = _dec(8, (1, 4), (2, 2), (3, 1))
    sent, held = 300, {}  # index -> (is_primary, tokens)
    lost = {i for i in range(sent) if rng.random() < 0.3}
    for i in range(sent):
        data = pk.packetize([_frame(i)], [spec])
        if i in lost:
            continue
        out = depacketize(i, data)
        for f in out.primary:
            held[f.index] = (True, f.tokens)
        for f in out.redundant:
            have = held.get(f.index)
            if have is None or (not have[0] and len(have[1]) < len(f.tokens)):
                held[f.index] = (False, f.tokens)
    for i in range(sent - 3):
        later = [i + d for d in (1, 2, 3) if i + d not in lost]
        want = 8 if i not in lost else {1: 4, 2: 2, 3: 1}[min(later) - i] if later else 0
        got = held.get(i)
        assert (len(got[1]) if got else 0) == want, i
        if got:
            assert got[1] == _frame(i).tokens[: len(got[1])]
