"""Jitter buffer: seeded arrival traces in, one decision per 80 ms pull out.

Frame n of a test stream has tokens ``(37 n + k) mod 2048`` for codebook k, so
a played frame can be checked against the frame it claims to be.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from largesc_codec.playout.buffer import JitterBuffer
from largesc_codec.playout.decision import ArrivalStatus, PlayoutDecision, PlayoutKind
from largesc_codec.types import Decision, RedundancySpec, TokenFrame
from largesc_codec.wire.uep import Packetizer, depacketize

FRAME = 80.0
SSRC = 0x1234ABCD
K = PlayoutKind
A = ArrivalStatus


def toks(n: int, k: int = 4) -> tuple[int, ...]:
    return tuple((37 * n + c) % 2048 for c in range(k))


@dataclass
class Pkt:
    at: float
    frame: int  # sender frame number of the first primary frame
    primary: list[TokenFrame]  # relative indices, as depacketize(0, ..., min_index=None) gives
    redundant: list[TokenFrame] = field(default_factory=list)
    seq: int = 0
    ts: int = 0
    ssrc: int = SSRC


def stream(n: int, *, delay: float = 30.0, jitter: Callable[[int], float] = lambda i: 0.0,
           lose: Iterable[int] = (), codebooks: Callable[[int], int] = lambda i: 4,
           red: Sequence[tuple[int, int]] = (), seq0: int = 0, ts0: int = 0, first: int = 0,
           ssrc: int = SSRC, per_packet: int = 1) -> list[Pkt]:
    """Packets of frames first..first+n-1, ``per_packet`` frames each, sent when the last is complete."""
    lost = set(lose)
    out = []
    for p, f in enumerate(range(first, first + n, per_packet)):
        if p in lost:
            continue
        primary = [TokenFrame(j, toks(f + j, codebooks(f + j))) for j in range(per_packet)]
        redundant = [TokenFrame(-d, toks(f - d, k)) for d, k in red if f - d >= first]
        at = (f + per_packet) * FRAME + delay + jitter(p)
        out.append(Pkt(at, f, primary, redundant, (seq0 + p) % 65536, (ts0 + (f - first) * 1920) % 2**32, ssrc))
    return out


def jbuf(**kw: float) -> JitterBuffer:
    """A buffer with default settings but those given (it starts from the smallest target)."""
    return JitterBuffer(**kw)  # type: ignore[arg-type]


def play(jb: JitterBuffer, pkts: list[Pkt], end_ms: float, t0: float = 0.0) -> list[PlayoutDecision]:
    """Insert packets as they arrive; pull every 80 ms from t0 to end_ms."""
    pkts = sorted(pkts, key=lambda p: p.at)
    out, a, t = [], 0, t0
    while t <= end_ms:
        while a < len(pkts) and pkts[a].at <= t:
            p = pkts[a]
            jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant)
            a += 1
        out.append(jb.pull(t))
        t += FRAME
    return out


def played(ds: list[PlayoutDecision]) -> list[PlayoutDecision]:
    return [d for d in ds if d.plays]


def check_order(ds: list[PlayoutDecision]) -> None:
    """Indices consecutive except for declared skips; never repeated within an epoch."""
    prev: int | None = None
    seen: set[int] = set()
    for d in played(ds):
        if d.restarted:
            seen = set()
        else:
            assert prev is not None, "the first played frame must be marked restarted"
            assert d.skipped == tuple(range(prev + 1, d.index)), (prev, d)
        assert d.index not in seen
        seen.add(d.index)
        prev = d.index


def check_tokens(ds: list[PlayoutDecision], offset: int = 0) -> None:
    """Every known token belongs to the frame the decision names (sender frame = index - offset)."""
    for d in played(ds):
        n = d.index - offset
        assert d.tokens == toks(n, len(d.tokens)), d


def test_in_order_stream_plays_every_frame_normally() -> None:
    jb = jbuf()
    ds = play(jb, stream(50), 50 * FRAME + 400)
    p = played(ds)
    assert ds[0].kind is K.WAIT and ds[0].reason == "idle"
    assert p[0].restarted and p[0].index == 0 and p[0].reason == "start"
    assert [d.index for d in p[:50]] == list(range(50))
    assert all(d.kind is K.NORMAL and d.codebooks == 4 for d in p[:50])
    check_order(ds)
    check_tokens(ds)
    s = jb.stats()
    assert (s.packets, s.duplicates, s.late, s.reordered, s.restarts) == (50, 0, 0, 0, 0)
    assert s.played["normal"] == 50 and s.target_delay_ms <= 20.0


def test_multi_frame_packets_play_every_frame() -> None:
    jb = jbuf()
    ds = play(jb, stream(40, per_packet=2), 45 * FRAME)
    p = played(ds)
    assert [d.index for d in p[:40]] == list(range(40)) and all(d.kind is K.NORMAL for d in p[:40])
    check_tokens(ds)


def test_reordered_packets_are_put_back_in_order() -> None:
    rng = random.Random(3)
    pkts = stream(200, delay=30.0, jitter=lambda i: rng.uniform(0.0, 150.0))  # 80 ms spacing: swaps
    jb = jbuf(initial_delay_ms=200.0)
    ds = play(jb, pkts, 210 * FRAME)
    s = jb.stats()
    assert s.reordered > 10
    p = played(ds)
    assert sum(d.kind is K.NORMAL for d in p) >= 195
    check_order(ds)
    check_tokens(ds)


def test_duplicates_are_counted_and_played_once() -> None:
    rng = random.Random(8)
    pkts = stream(60)
    dups = [Pkt(p.at + rng.uniform(0.0, 60.0), p.frame, p.primary, p.redundant, p.seq, p.ts) for p in pkts[::3]]
    jb = jbuf()
    ds = play(jb, pkts + dups, 65 * FRAME)
    assert jb.stats().duplicates == len(dups) == 20
    assert jb.stats().packets == 60
    idx = [d.index for d in played(ds) if d.kind is K.NORMAL]
    assert idx == list(range(60))
    check_order(ds)


def test_late_packet_is_counted_handed_out_and_never_played() -> None:
    pkts = stream(40)
    pkts[20].at += 500.0  # frame 20 arrives ~6 pulls after its deadline
    jb = jbuf()
    ds = play(jb, pkts, 28 * FRAME)  # it arrives at 2210 ms
    p = {d.index: d for d in played(ds)}
    assert p[20].kind is K.CONCEAL
    late = jb.take_late()
    assert late == [TokenFrame(20, toks(20))]
    assert jb.take_late() == []  # handed out once
    ds += play(jb, [q for q in pkts if q.at > 28 * FRAME], 45 * FRAME, t0=29 * FRAME)
    assert [d.index for d in played(ds)].count(20) == 1
    s = jb.stats()
    assert s.late == 1 and s.late_frames == 1
    check_order(ds)


def test_sequence_number_wrap_at_65535() -> None:
    rng = random.Random(21)
    pkts = stream(80, seq0=65500, jitter=lambda i: rng.uniform(0.0, 120.0))
    jb = jbuf(initial_delay_ms=200.0)
    ds = play(jb, pkts + [pkts[45]], 90 * FRAME)  # a duplicate right after the wrap (seq 9)
    s = jb.stats()
    assert pkts[45].seq == 9
    assert s.duplicates == 1 and s.restarts == 0 and s.reordered > 0
    p = played(ds)
    got = [d.index for d in p if d.kind is K.NORMAL] + [i for d in p for i in d.skipped if i < 80]
    assert sorted(got) == list(range(80))
    assert s.skipped <= 3  # the delay settles from the 200 ms start-up guess
    check_order(ds)


def test_timestamp_wrap_at_2_pow_32() -> None:
    ts0 = 2**32 - 10 * 1920 + 77  # wraps after 10 frames; offset not a multiple of 1920
    rng = random.Random(4)
    pkts = stream(40, ts0=ts0, jitter=lambda i: rng.uniform(0.0, 100.0))
    jb = jbuf(initial_delay_ms=160.0)
    ds = play(jb, pkts, 50 * FRAME)
    first = ts0 // 1920
    p = played(ds)
    assert p[0].index == first
    assert [d.index - first for d in p if d.kind is K.NORMAL] == list(range(40))
    assert jb.stats().restarts == 0
    check_order(ds)
    check_tokens(ds, offset=first)


def test_ssrc_change_restarts_and_stale_packets_are_discarded() -> None:
    a = stream(30)
    b = stream(30, ssrc=0xBEEF, ts0=987_654_321 * 7 % 2**32, seq0=400, first=30)
    stray = Pkt(35 * FRAME, 25, [TokenFrame(0, toks(25))], seq=25, ts=25 * 1920)  # old SSRC, after the switch
    jb = jbuf()
    ds = play(jb, a + b + [stray], 70 * FRAME)
    s = jb.stats()
    assert s.restarts == 1 and s.discarded == 1
    starts = [d for d in played(ds) if d.restarted]
    assert len(starts) == 2 and starts[1].index == b[0].ts // 1920
    second = [d for d in played(ds) if d.index >= starts[1].index and d.kind is K.NORMAL]
    assert len(second) == 30
    check_order(ds)


@pytest.mark.parametrize("jump", [1_000_003 * 1920, 123_457])  # aligned, misaligned
def test_timestamp_jump_restarts_after_the_next_packet_confirms_it(jump: int) -> None:
    a = stream(30)
    b = stream(30, ts0=(30 * 1920 + jump) % 2**32, seq0=30, first=30)
    jb = jbuf()
    pkts = sorted(a + b, key=lambda p: p.at)
    statuses = []
    ds: list[PlayoutDecision] = []
    t = 0.0
    for p in pkts:
        while t < p.at:
            ds.append(jb.pull(t))
            t += FRAME
        statuses.append(jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant).status)
    ds += [jb.pull(t + i * FRAME) for i in range(8)]
    assert statuses[30] is A.HELD and statuses[31] is A.STORED
    assert jb.stats().restarts == 1
    starts = [d for d in played(ds) if d.restarted]
    assert len(starts) == 2 and starts[1].index == b[0].ts // 1920
    assert sum(d.kind is K.NORMAL for d in played(ds)) >= 58
    check_order(ds)


def test_one_stray_jumped_packet_is_discarded_without_restart() -> None:
    pkts = stream(40)
    pkts[20].ts = (pkts[20].ts + 5_000_000 * 1920) % 2**32
    jb = jbuf()
    ds = play(jb, pkts, 45 * FRAME)
    s = jb.stats()
    assert s.restarts == 0 and s.discarded == 1
    kinds = {d.index: d.kind for d in played(ds)}
    assert kinds[20] is K.CONCEAL and all(kinds[i] is K.NORMAL for i in range(40) if i != 20)
    check_order(ds)


def test_long_outage_turns_to_comfort_then_recovers_without_backlog() -> None:
    lost = range(40, 80)  # 3.2 s without packets
    jb = jbuf(comfort_after=5)
    ds = play(jb, stream(120, lose=lost), 125 * FRAME)
    kinds = {d.index: d.kind for d in played(ds)}
    assert [kinds[i] for i in range(40, 45)] == [K.CONCEAL] * 5
    assert all(kinds[i] is K.COMFORT for i in range(45, 80))
    assert all(kinds[i] is K.NORMAL for i in range(80, 120))
    s = jb.stats()
    assert s.outages == 1 and s.restarts == 0 and s.current_delay_ms <= s.target_delay_ms + FRAME
    check_order(ds)


@pytest.mark.parametrize("stall", [10, 25])  # 0.8 s: below the 1 s jump threshold; 2 s: above
def test_stalled_backlog_is_not_queued(stall: int) -> None:
    pkts = stream(100)
    for p in pkts[40 : 40 + stall]:  # the network holds them, then delivers everything at once
        p.at = (40 + stall) * FRAME + 30.0 + (p.frame - 40) * 0.1
    jb = jbuf(comfort_after=8)
    ds = play(jb, pkts, 105 * FRAME)
    s = jb.stats()
    # Short stall: the backlog is late. Long stall: a confirmed jump restarts, and the start skips it.
    assert (s.restarts, s.late >= stall - 2) == ((0, True) if stall == 10 else (1, False))
    after = [d for d in played(ds) if 43 + stall <= d.index < 100]
    assert all(d.kind is K.NORMAL for d in after)  # nothing lost after the stall, only delay skips
    assert max(d.current_delay_ms for d in after) <= 400.0 + FRAME  # never more than max_delay behind
    assert s.current_delay_ms <= s.target_delay_ms + 2 * FRAME
    check_order(ds)


def test_path_change_beyond_jump_threshold_resyncs() -> None:
    pkts = stream(100)
    for p in pkts[40:]:
        p.at += 1500.0  # the route gets 1.5 s slower for good
    jb = jbuf()
    ds = play(jb, pkts, 125 * FRAME)
    s = jb.stats()
    assert s.restarts == 1
    starts = [d for d in played(ds) if d.restarted]
    assert len(starts) == 2 and starts[1].index <= 45  # resumes near where the slow packets begin
    resumed = played(ds)[played(ds).index(starts[1]) :]
    assert all(d.kind is K.NORMAL for d in resumed if d.index < 100)
    check_order(ds)


def test_frequent_loss_grows_the_delay_until_redundancy_rescues_in_time() -> None:
    # Every 6th packet lost (17 % of frames): frames known only from the next packet's copy count
    # 80 ms late in the delay histogram, so the target grows past one packet and copies arrive in time.
    lose = set(range(5, 200, 6))
    jb = jbuf()
    ds = play(jb, stream(200, lose=lose, red=[(1, 4)]), 205 * FRAME)
    at = {d.index: d for d in played(ds)}
    rescued = [i for i in lose if i >= 60]
    assert all(at[i].kind is K.RECOVERED and at[i].tokens == toks(i, 4) for i in rescued)
    assert at[150].target_delay_ms >= 80.0
    assert all(at[i].kind is K.NORMAL for i in range(60, 200) if i not in lose)
    check_order(ds)


def test_rare_loss_is_concealed_rather_than_paid_for_with_delay() -> None:
    jb = jbuf()
    ds = play(jb, stream(200, lose={50, 150}, red=[(1, 4)]), 205 * FRAME)
    at = {d.index: d for d in played(ds)}
    assert at[150].kind is K.CONCEAL and at[150].target_delay_ms <= 20.0


def test_partial_frame_knows_only_the_redundant_codebooks() -> None:
    jb = jbuf(min_delay_ms=100.0)  # one packet of slack: the copy in the next packet is in time
    ds = play(jb, stream(40, lose={10, 20}, red=[(1, 2)]), 45 * FRAME)
    at = {d.index: d for d in played(ds)}
    for i in (10, 20):
        assert at[i].kind is K.PARTIAL and at[i].codebooks == 2 and at[i].tokens == toks(i, 2)


def test_redundancy_too_late_to_rescue_is_handed_out_instead() -> None:
    # The distance-3 copy of frame 10 arrives with packet 13, after frame 10 was played.
    jb = jbuf()
    pkts = stream(40, lose={10}, red=[(3, 2)])
    ds = play(jb, pkts, 40 * FRAME)
    assert {d.index: d for d in played(ds)}[10].kind is K.CONCEAL
    assert jb.take_late() == [TokenFrame(10, toks(10, 2))]
    assert jb.stats().late_frames == 1 and jb.stats().late == 0  # a late copy, not a late packet
    assert [d.index for d in played(ds)].count(10) == 1
    check_order(ds)


def test_primary_beats_redundancy_and_more_codebooks_beat_fewer() -> None:
    jb = jbuf(initial_delay_ms=300.0)  # buffer long enough that frame 4 is still ahead
    a = jb.insert(SSRC, 5, 5 * 1920, 400.0, [TokenFrame(0, toks(5, 3))], [TokenFrame(-1, toks(4, 2))])
    b = jb.insert(SSRC, 6, 6 * 1920, 480.0, [TokenFrame(0, toks(6, 3))],
                  [TokenFrame(-1, toks(5, 8)), TokenFrame(-2, toks(4, 6))])
    c = jb.insert(SSRC, 7, 7 * 1920, 560.0, [TokenFrame(0, toks(7, 3))], [TokenFrame(-3, toks(4, 1))])
    d4 = jb.insert(SSRC, 4, 4 * 1920, 570.0, [TokenFrame(0, toks(4, 3))], [])
    # a: frames 5, 4 new; b: 6 new, 4 improved (6 > 2 codebooks), 5 not (primary stays); c: 7 only.
    assert (a.improved, b.improved, c.improved, d4.improved) == (2, 2, 1, 1)
    assert d4.reordered and not c.reordered and a.status is A.STORED
    ds = [jb.pull(640.0 + i * FRAME) for i in range(4)]
    assert [d.index for d in ds] == [4, 5, 6, 7]
    assert ds[0].kind is K.NORMAL and ds[0].tokens == toks(4, 3)  # the primary (3) beat a 6-codebook copy
    assert ds[1].kind is K.NORMAL and ds[1].tokens == toks(5, 3)  # and an 8-codebook copy


def test_redundant_copies_merge_by_codebook_count() -> None:
    jb = jbuf(initial_delay_ms=300.0)
    jb.insert(SSRC, 1, 1 * 1920, 80.0, [TokenFrame(0, toks(1))], [])
    jb.insert(SSRC, 3, 3 * 1920, 240.0, [TokenFrame(0, toks(3))], [TokenFrame(-1, toks(2, 2))])
    jb.insert(SSRC, 4, 4 * 1920, 320.0, [TokenFrame(0, toks(4))], [TokenFrame(-2, toks(2, 3))])
    jb.insert(SSRC, 5, 5 * 1920, 400.0, [TokenFrame(0, toks(5))], [TokenFrame(-3, toks(2, 1))])
    ds = [jb.pull(400.0 + i * FRAME) for i in range(3)]
    assert [(d.index, d.kind, d.codebooks) for d in ds] == [(1, K.NORMAL, 4), (2, K.PARTIAL, 3), (3, K.NORMAL, 4)]


def test_adaptive_delay_grows_under_jitter_and_shrinks_back() -> None:
    rng = random.Random(7)

    def jitter(i: int) -> float:
        return rng.uniform(0.0, 250.0) if 100 <= i < 250 else rng.uniform(0.0, 5.0)

    # Speech with a pause every second (frames of 1 codebook) where the delay can move.
    jb = jbuf()
    ds = play(jb, stream(450, jitter=jitter, codebooks=lambda i: 1 if i % 12 in (0, 1) else 4), 455 * FRAME)
    at = {d.index: d for d in played(ds)}
    assert at[90].target_delay_ms <= 20.0 and at[90].current_delay_ms < 100.0
    assert at[200].target_delay_ms >= 200.0 and at[200].current_delay_ms >= at[200].target_delay_ms
    late_jittered = sum(at.get(i, at[0]).kind is K.CONCEAL for i in range(150, 250))
    assert late_jittered <= 10  # adapted: about the 5 % the quantile allows
    assert at[440].target_delay_ms <= 20.0
    assert at[440].current_delay_ms < at[440].target_delay_ms + FRAME  # shrunk back, at quiet frames
    s = jb.stats()
    assert s.holds > 0 and s.skipped > 0
    check_order(ds)
    check_tokens(ds)


def test_continuous_speech_shrinks_only_to_within_two_frames() -> None:
    rng = random.Random(9)
    jb = jbuf()
    ds = play(jb, stream(300, jitter=lambda i: rng.uniform(0.0, 300.0) if i < 100 else 0.0), 305 * FRAME)
    end = played(ds)[-10]
    assert end.target_delay_ms <= 20.0
    assert end.current_delay_ms < end.target_delay_ms + 2 * FRAME
    check_order(ds)


def test_delay_is_bounded_by_max_delay() -> None:
    rng = random.Random(13)
    jb = jbuf(max_delay_ms=240.0)
    ds = play(jb, stream(300, jitter=lambda i: rng.uniform(0.0, 700.0)), 310 * FRAME)
    p = played(ds)
    assert max(d.target_delay_ms for d in p) == 240.0
    assert max(d.current_delay_ms for d in p[40:]) < 240.0 + 2 * FRAME
    assert jb.stats().restarts == 0
    check_order(ds)


@pytest.mark.parametrize("phase", [0.0, 5.0, 37.0, 79.0])  # pulls this long after each arrival
def test_no_loss_no_jitter_plays_every_frame_at_the_smallest_delay(phase: float) -> None:
    # Speech with a pause every second. A start-up prior above the real jitter used to start the
    # playout a frame or two late and then skip a quiet frame to shrink back, with nothing lost.
    pkts = stream(150, delay=0.0, codebooks=lambda i: 1 if i % 12 in (0, 1) else 8)
    jb = JitterBuffer()
    ds = play(jb, pkts, 152 * FRAME, t0=phase)
    p = played(ds)
    assert [d.index for d in p[:150]] == list(range(150)) and all(d.kind is K.NORMAL for d in p[:150])
    s = jb.stats()
    assert (s.skipped, s.holds) == (0, 0)
    # The smallest playout point at or above the 10 ms target that the pull phase allows.
    want = phase if phase >= s.target_delay_ms else phase + FRAME
    assert s.target_delay_ms == 10.0 and all(d.current_delay_ms == want for d in p[:150])
    check_order(ds)


def test_small_start_grows_by_holding_when_jitter_is_there_from_the_first_packet() -> None:
    rng = random.Random(11)
    jb = JitterBuffer()
    ds = play(jb, stream(200, jitter=lambda i: rng.uniform(0.0, 150.0)), 205 * FRAME)
    at = {d.index: d for d in played(ds)}
    s = jb.stats()
    assert 0 < s.holds <= 4  # 150 ms of jitter: about two frames of growth, found by holding
    assert at[60].target_delay_ms >= 130.0 and at[60].current_delay_ms >= at[60].target_delay_ms
    assert sum(at[i].kind is K.CONCEAL for i in range(40, 200)) <= 10  # the 5 % the quantile allows
    check_order(ds)


def test_next_frame_shows_the_copy_held_for_the_next_pull() -> None:
    jb = jbuf(min_delay_ms=100.0)
    pkts = stream(8, lose={3}, red=[(1, 2)])  # frame 3 only as a 2-codebook copy riding with frame 4
    seen: dict[int, TokenFrame | None] = {}  # last played index -> next_frame() right before the next pull
    a, t, last = 0, 0.0, None
    while t <= 12 * FRAME:
        while a < len(pkts) and pkts[a].at <= t:
            p = pkts[a]
            jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant)
            a += 1
        if last is not None:
            seen[last] = jb.next_frame()
        assert jb.next_frame() == jb.next_frame()  # reading changes nothing
        d = jb.pull(t)
        if d.plays:
            last = d.index
        t += FRAME
    assert seen[1] == TokenFrame(2, toks(2))  # the primary of the next frame
    assert seen[2] == TokenFrame(3, toks(3, 2))  # the partial copy, before frame 3's deadline
    assert seen[7] is None  # the stream ended: nothing held for the next pull


def test_start_skips_a_backlog_buffered_before_the_first_pull() -> None:
    jb = jbuf()
    for p in stream(20):
        jb.insert(p.ssrc, p.seq, p.ts, 2000.0 + p.frame * 0.1, p.primary, p.redundant)
    d = jb.pull(2100.0)
    assert d.restarted and d.index > 10 and d.skipped == tuple(range(0, d.index))
    assert d.current_delay_ms < d.target_delay_ms + 2 * FRAME  # one backlog frame kept


def test_between_quiet_frames_needs_both_neighbours_quiet() -> None:
    # Frames 0-2 and 5 quiet (1 codebook), 3-4 speech. Asked just before each pull, as the SIP
    # engine does: the frame just played and the one this pull plays (held, or not yet here).
    quiet = {0, 1, 2, 5}
    jb = jbuf()
    pkts = stream(6, codebooks=lambda i: 1 if i in quiet else 4)
    before: dict[int, bool] = {}  # frame about to play -> answer just before its pull
    t, a = 0.0, 0
    while len(before) < 6 and t < 2000.0:
        while a < len(pkts) and pkts[a].at <= t:
            p = pkts[a]
            jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant)
            a += 1
        answer = jb.between_quiet_frames()
        d = jb.pull(t)
        if d.kind is not K.WAIT:
            before[d.index] = answer
        t += FRAME
    assert before[1] and before[2]  # quiet played, quiet next
    assert not before[0]  # nothing played yet
    assert not before[3] and not before[4] and not before[5]  # speech next, or speech just played
    assert not jbuf().between_quiet_frames()  # not playing


@pytest.mark.parametrize("first_codebooks, kept", [(4, True), (1, False)])
def test_start_keeps_a_one_frame_backlog_only_if_it_is_speech(first_codebooks: int, kept: bool) -> None:
    # RTP source validation hands over the first packet together with the second: frame 0 is a
    # frame overdue at the first pull. Speech is kept (+80 ms); a quiet frame is skipped.
    jb = jbuf()
    pkts = stream(2, delay=0.0, codebooks=lambda i: first_codebooks if i == 0 else 4)
    for p in pkts:
        jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant)
    d = jb.pull(pkts[1].at + d_target(jb) + 1.0)
    assert d.restarted and d.kind == K.NORMAL
    assert d.index == (0 if kept else 1) and d.skipped == (() if kept else (0,))
    assert (d.current_delay_ms >= FRAME) == kept


def d_target(jb: JitterBuffer) -> float:
    return jb.stats().target_delay_ms


@pytest.mark.parametrize("seed", range(8))
def test_random_traces_keep_order_and_never_replay(seed: int) -> None:
    rng = random.Random(seed)
    n = 300
    lose = {i for i in range(n) if rng.random() < 0.1}
    # Even seeds put both wraps (sequence and timestamp) in the middle of the trace.
    seq0 = 65536 - 150 if seed % 2 == 0 else rng.randrange(65536)
    ts0 = 2**32 - 150 * 1920 + rng.randrange(1920) if seed % 2 == 0 else rng.randrange(2**32)
    pkts = stream(n, jitter=lambda i: rng.expovariate(1 / 60.0), lose=lose, red=[(1, 2), (2, 1)],
                  seq0=seq0, ts0=ts0, codebooks=lambda i: rng.choice((1, 4, 8)))
    pkts += [Pkt(p.at + rng.uniform(0, 300), p.frame, p.primary, p.redundant, p.seq, p.ts) for p in pkts[::17]]
    jb = jbuf()
    ds = play(jb, pkts, (n + 20) * FRAME, t0=rng.uniform(0, 80))
    check_order(ds)
    check_tokens(ds, offset=pkts[0].ts // 1920)
    s = jb.stats()
    assert s.restarts == 0 and s.played.get("normal", 0) > 200


def test_payloads_from_the_real_packetizer_fill_the_buffer() -> None:
    # The contract with uep: depacketize(0, payload, min_index=None) gives the relative indices insert wants.
    pk = Packetizer(max_distance=2)
    dec = Decision(4, (RedundancySpec(1, 4), RedundancySpec(2, 2)))
    rng = random.Random(2)
    lost = {i for i in range(100) if rng.random() < 0.15}
    jb = jbuf(min_delay_ms=100.0)
    ds: list[PlayoutDecision] = []
    ts0 = 3_000_000_000
    for i in range(100):
        data = pk.packetize([TokenFrame(i, toks(i, 8))], [dec])
        if i not in lost:
            u = depacketize(0, data, min_index=None)
            jb.insert(SSRC, i, (ts0 + i * 1920) % 2**32, (i + 1) * FRAME + 30.0, u.primary, u.redundant)
        ds.append(jb.pull((i + 1) * FRAME + 35.0))
    first = ts0 // 1920
    check_order(ds)
    check_tokens(ds, offset=first)
    at = {d.index - first: d for d in played(ds)}
    rescued = [i for i in lost if i + 1 not in lost and i in at]
    assert rescued and all(at[i].kind is K.RECOVERED for i in rescued)


def test_wait_reasons_idle_then_buffering_then_start() -> None:
    jb = jbuf(initial_delay_ms=150.0)
    assert jb.pull(0.0).reason == "idle"
    jb.insert(SSRC, 0, 0, 100.0, [TokenFrame(0, toks(0))])
    d = jb.pull(160.0)
    assert (d.kind, d.reason, d.index) == (K.WAIT, "buffering", 0)
    d = jb.pull(320.0)  # 220 ms after the arrival: past the 160 ms target
    assert (d.kind, d.reason, d.index, d.restarted) == (K.NORMAL, "start", 0, True)


def test_sudden_extra_delay_grows_the_target_by_holding() -> None:
    pkts = stream(80)
    for p in pkts[30:]:
        p.at += 200.0  # 200 ms more transit from frame 30 on: below the jump threshold
    jb = jbuf()
    ds = play(jb, pkts, 90 * FRAME)
    holds = [d for d in ds if d.reason == "hold"]
    assert holds and all(d.kind is K.WAIT for d in holds)
    at = {d.index: d for d in played(ds)}
    assert all(at[i].kind is K.NORMAL for i in range(40, 80))
    assert at[60].current_delay_ms >= at[60].target_delay_ms >= 200.0
    s = jb.stats()
    assert s.restarts == 0 and s.holds == len(holds)
    check_order(ds)


def test_arrival_reports_what_insert_did() -> None:
    jb = jbuf()
    first = jb.insert(SSRC, 10, 10 * 1920, 880.0, [TokenFrame(0, toks(10))])
    assert (first.status, first.restarted, first.improved) == (A.STORED, False, 1)
    assert jb.insert(SSRC, 10, 10 * 1920, 890.0, [TokenFrame(0, toks(10))]).status is A.DUPLICATE
    assert jb.insert(SSRC, 9, 9 * 1920, 895.0, [TokenFrame(0, toks(9))]).reordered
    assert [jb.pull(880.0 + i * FRAME).kind for i in range(3)] == [K.NORMAL, K.NORMAL, K.CONCEAL]  # 9, 10, 11
    late = jb.insert(SSRC, 11, 11 * 1920, 1050.0, [TokenFrame(0, toks(11))])
    assert late.status is A.LATE and jb.take_late() == [TokenFrame(11, toks(11))]
    new = jb.insert(0x55, 1, 777 * 1920, 1200.0, [TokenFrame(0, toks(777))])
    assert (new.status, new.restarted) == (A.STORED, True)
    assert jb.insert(SSRC, 12, 12 * 1920, 1210.0, [TokenFrame(0, toks(12))]).status is A.STALE
    held = jb.insert(0x55, 2, 5 * 1920 + 7, 1280.0, [TokenFrame(0, toks(5))])
    assert held.status is A.HELD
    s = jb.stats()
    assert (s.packets, s.duplicates, s.reordered, s.late, s.restarts, s.discarded) == (4, 1, 1, 1, 1, 1)


@pytest.mark.parametrize(
    "args",
    [
        (SSRC, 70000, 0, 0.0, [TokenFrame(0, (1,))], []),
        (SSRC, 1, -1, 0.0, [TokenFrame(0, (1,))], []),
        (2**32, 1, 0, 0.0, [TokenFrame(0, (1,))], []),
        (SSRC, 1, 0, float("inf"), [TokenFrame(0, (1,))], []),
        (SSRC, 1, 0, 0.0, [], []),
        (SSRC, 1, 0, 0.0, [TokenFrame(1, (1,))], []),
        (SSRC, 1, 0, 0.0, [TokenFrame(0, (1,))], [TokenFrame(0, (1,))]),
        (SSRC, 1, 0, 0.0, [(1, 2)], []),
        (SSRC, True, 0, 0.0, [TokenFrame(0, (1,))], []),
    ],
)
def test_invalid_packets_raise_value_error(args: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        JitterBuffer().insert(*args)


def test_invalid_settings_and_clock_raise_value_error() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(comfort_after=-1)
    with pytest.raises(ValueError):
        JitterBuffer(max_delay_ms=400.0, jump_ms=300.0)
    jb = jbuf()
    jb.pull(100.0)
    with pytest.raises(ValueError, match="went back"):
        jb.pull(99.0)


# -- due_ms(): when the next frame becomes playable, for a caller that chooses its pull phase -------------
EPS = 1e-6


@pytest.mark.parametrize("jittered", [False, True])
def test_due_ms_agrees_with_pull(jittered: bool) -> None:
    # A free clock (phase 17 ms) pulls; before each pull, copies of the buffer are probed around due_ms().
    rng = random.Random(5)
    pkts = sorted(stream(120, delay=30.0, jitter=(lambda i: rng.uniform(0.0, 120.0)) if jittered else
                         (lambda i: 0.0), codebooks=lambda i: 1 if i % 15 == 0 else 8), key=lambda p: p.at)
    jb = JitterBuffer()
    assert jb.due_ms() is None  # idle: nothing known
    a, t, last = 0, 17.0, -math.inf
    checked = {"early": 0, "due": 0}
    while t <= 125 * FRAME:
        while a < len(pkts) and pkts[a].at <= t:
            p = pkts[a]
            jb.insert(p.ssrc, p.seq, p.ts, p.at, p.primary, p.redundant)
            a += 1
        due = jb.due_ms()
        if due is None:
            assert not jb.playing and jb.pull(t).kind is K.WAIT
        else:
            on_time = copy.deepcopy(jb).pull(max(due + EPS, t))
            assert on_time.plays and on_time.reason != "hold", (t, due, on_time)
            if due + EPS >= t:  # playing frame cursor exactly at due: its delay is the target
                assert on_time.current_delay_ms == pytest.approx(on_time.target_delay_ms, abs=1e-3)
            if due - 20.0 > last:  # somewhat early: buffering waits, playing is below the target
                early = copy.deepcopy(jb).pull(due - 20.0)
                checked["early"] += 1
                if jb.playing:
                    assert early.current_delay_ms < early.target_delay_ms, early
                else:
                    assert early.kind is K.WAIT and early.reason == "buffering", early
            d = jb.pull(t)
            if due <= t - EPS:
                checked["due"] += 1
                assert d.plays, (t, due, d)
        last = t
        t += FRAME
    assert checked["early"] > 50 and checked["due"] > 0, checked
    assert jb.playing and jb.stats().played.get("normal", 0) > 90


def test_a_pull_clock_phased_from_due_ms_plays_at_the_target() -> None:
    # The SIP engine's use: at the first packet, choose the phase of the pull clock from due_ms() + a margin.
    margin = 2.0
    pkts = stream(100, delay=43.0, codebooks=lambda i: 1 if i % 12 in (0, 1) else 8)
    jb = JitterBuffer()
    first = pkts[0]
    jb.insert(first.ssrc, first.seq, first.ts, first.at, first.primary, first.redundant)
    due = jb.due_ms()
    assert due is not None and due == pytest.approx(first.at + jb.stats().target_delay_ms)  # waits the 10 ms target
    ds = play(jb, pkts[1:], 102 * FRAME, t0=due + margin)
    p = played(ds)
    assert [d.index for d in p[:99]] == list(range(99))
    assert all(d.current_delay_ms == pytest.approx(d.target_delay_ms + margin) for d in p[:99])
