"""Wrap-around arithmetic, property-tested across the 16-bit and 32-bit wraps."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.seqnum import (
    SEQ_MOD,
    TS_MOD,
    Unwrapper,
    seq_add,
    seq_diff,
    seq_forward,
    seq_lt,
    ts_add,
    ts_diff,
    ts_lt,
    u32_sub,
)

seqs = st.integers(0, SEQ_MOD - 1)
stamps = st.integers(0, TS_MOD - 1)
small = st.integers(-(SEQ_MOD // 2) + 1, SEQ_MOD // 2 - 1)


def test_examples_across_the_wrap() -> None:
    assert seq_diff(65535, 0) == 1
    assert seq_diff(0, 65535) == -1
    assert seq_lt(65530, 3) and not seq_lt(3, 65530)
    assert seq_add(65535, 2) == 1 and seq_add(0, -1) == 65535
    assert seq_forward(65535, 1) == 2
    assert ts_diff(0xFFFFFF00, 0x100) == 0x200
    assert ts_lt(0xFFFFFFFF, 0) and not ts_lt(0, 0xFFFFFFFF)
    assert ts_add(0xFFFFFFFF, 1920) == 1919
    assert u32_sub(5, 10) == TS_MOD - 5


@given(seqs, small)
def test_seq_add_then_diff_is_identity(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert 0 <= b < SEQ_MOD
    assert seq_diff(a, b) == n
    assert seq_lt(a, b) == (n > 0)


@given(stamps, st.integers(-(TS_MOD // 2) + 1, TS_MOD // 2 - 1))
def test_ts_add_then_diff_is_identity(a: int, n: int) -> None:
    b = ts_add(a, n)
    assert ts_diff(a, b) == n
    assert ts_lt(a, b) == (n > 0)


@given(seqs, seqs)
def test_seq_diff_antisymmetric_and_bounded(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -(SEQ_MOD // 2) <= d < SEQ_MOD // 2
    if d != -(SEQ_MOD // 2):
        assert seq_diff(b, a) == -d
    assert seq_forward(a, b) == d % SEQ_MOD


@settings(max_examples=200, deadline=None)
@given(seqs, st.lists(st.integers(-100, 3000), min_size=1, max_size=200))
def test_unwrapper_tracks_a_walk_across_many_wraps(start: int, steps: list[int]) -> None:
    """A sender's counter walks forward (with reordering jitter); unwrapping recovers it exactly."""
    u = Unwrapper(16)
    true = start
    assert u.extend(start) == start
    highest = start
    for step in steps:
        true += step
        if true > highest + 30000:  # keep within half range of the highest seen
            true = highest + 30000
        if true < highest - 30000:
            true = highest - 30000
        assert u.extend(true % SEQ_MOD) == true
        highest = max(highest, true)
        assert u.highest == highest


def test_unwrapper_late_packet_before_wrap() -> None:
    u = Unwrapper(16)
    assert [u.extend(v) for v in (65534, 65535, 0, 1, 65533, 2)] == [65534, 65535, 65536, 65537, 65533, 65538]
    assert u.peek(3) == 65539 and u.highest == 65538
    with pytest.raises(ValueError):
        u.extend(SEQ_MOD)


def test_unwrapper_32_bit_timestamps_seeded() -> None:
    rng = random.Random(4)
    u = Unwrapper(32)
    true = TS_MOD - 5 * 1920
    for _ in range(1000):
        true += 1920 * rng.choice([1, 1, 1, 2, -1])
        assert u.extend(true % TS_MOD) == true
