"""Batched concealment and decoding for N streams equal N lone runs; long runs stay bounded."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
import torch

from largesc_codec.batched.lm import BatchedLMConcealer, BatchedMimiDecoder
from largesc_codec.batched.step import BatchedStepper
from largesc_codec.neural.decoder import MimiDecoder
from largesc_codec.neural.lm_concealer import LMConcealer
from largesc_codec.neural.lmstep import UNFORCED

pytestmark = pytest.mark.model

Event = tuple[Any, ...] | None  # ("obs", i, tokens) ("con", i, known, cbs) ("late", i, tokens) ("reset", i)


@pytest.fixture()
def lm(models):  # type: ignore[no-untyped-def]
    return models.load_lm()


def _small_context(lm: Any, context: int) -> Any:
    from moshi.modules.transformer import set_attention_context

    set_attention_context(lm.transformer, context)
    return lm


def _frame(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(x) for x in rng.integers(0, 2048, 8))


def _traces(ticks: int, seed: int = 0) -> list[list[Event]]:
    """Per stream, one event per tick: different loss patterns, partial frames, gaps, idle ticks, late frames, a reset."""
    rng = np.random.default_rng(seed)
    out: list[list[Event]] = []
    for kind in ("clean", "uniform", "burst", "mixed"):
        evs: list[Event] = []
        idx = 0
        for t in range(ticks):
            f = _frame(rng)
            if kind == "clean" or (kind == "uniform" and rng.random() > 0.3):
                evs.append(("obs", idx, f))
            elif kind == "burst" and not 5 <= t < 13:
                evs.append(("obs", idx, f))
            elif kind == "mixed" and t in (4, 5):
                evs.append(None)  # no frame this tick: the stream sits masked out
                continue
            elif kind == "mixed" and t == 8:
                idx += 2  # two frames never reached the concealer
                evs.append(("obs", idx, f))
            elif kind == "mixed" and t == 11:
                evs.append(("con", idx, f[:3], 8))  # partial frame
            elif kind == "mixed" and t == 13:
                evs.append(("late", idx - 1, f))  # the frame played at t=12 arrives late
                continue
            elif kind == "mixed" and t == 16:
                idx = 100
                evs.append(("reset", idx))  # new call on this stream
                continue
            else:
                evs.append(("con", idx, (), 8))
            idx += 1
        out.append(evs)
    return out


def _apply(c: Any, stream: int | None, ev: Event) -> Any:
    """Apply one event to an LMConcealer (stream None) or one stream of a BatchedLMConcealer."""
    args: tuple[int, ...] = () if stream is None else (stream,)
    assert ev is not None
    if ev[0] == "obs":
        c.observe(*args, ev[1], ev[2])
        return ev[2]
    if ev[0] == "con":
        r = c.conceal(*args, ev[1], ev[2], ev[3])
        return (r.tokens, r.gain)
    if ev[0] == "late":
        return c.observe_late(*args, ev[1], ev[2])
    c.reset(*args, ev[1])
    return "reset"


def _held(evs: list[Event], t: int) -> tuple[Any, ...]:
    """What the jitter buffer holds of the next frame at prepare time: (index, known) or () for nothing.

    The partial copy of a partial frame; for some arrived frames the whole primary, for
    others only their first 2 codebooks (the primary then comes before the deadline).
    """
    nxt = evs[t + 1] if t + 1 < len(evs) else None
    if nxt is None or nxt[0] not in ("obs", "con") or (nxt[0] == "con" and not nxt[2]):
        return ()
    if nxt[0] == "con":
        return (nxt[1], nxt[2])
    return (nxt[1], nxt[2]) if t % 3 == 0 else (nxt[1], nxt[2][:2]) if t % 3 == 1 else ()


def _lone(lm: Any, evs: list[Event]) -> tuple[list[Any], list[torch.Tensor], list[list[int]]]:
    c = LMConcealer(lm)
    logits: list[torch.Tensor] = []
    c.stepper.gen.on_text_logits_hook = lambda x: logits.append(x[0].flatten().clone())
    outs = []
    for t, ev in enumerate(evs):
        if ev is not None:
            outs.append(_apply(c, None, ev))
            c.prepare(*_held(evs, t))
    ctx = [c.stepper.read_audio(k) for k in range(3)]
    c.stepper.close()
    return outs, logits, ctx


def _batched(lm: Any, traces: list[list[Event]]) -> tuple[list[list[Any]], list[list[torch.Tensor]], list[list[list[int]]], BatchedLMConcealer]:
    n = len(traces)
    b = BatchedLMConcealer(lm, n)
    logits: list[list[torch.Tensor]] = [[] for _ in range(n)]
    state = b.stepper.gen_state

    def hook(x: torch.Tensor) -> None:
        for s in range(n):
            if bool(state.exec_mask[s]):
                logits[s].append(x[s].flatten().clone())

    b.stepper.gen.on_text_logits_hook = hook
    outs: list[list[Any]] = [[] for _ in range(n)]
    for t in range(len(traces[0])):
        for s, evs in enumerate(traces):
            if evs[t] is not None:
                outs[s].append(_apply(b, s, evs[t]))
                b.prepare(s, *_held(evs, t))
        b.run()
    ctx = [[b.stepper.read_at(s, k) for k in range(3)] for s in range(n)]
    return outs, logits, ctx, b


def test_batched_equals_lone_concealers(lm) -> None:  # type: ignore[no-untyped-def]
    traces = _traces(20)
    outs, logits, ctx, b = _batched(lm, traces)
    b.stepper.close()
    for s, evs in enumerate(traces):
        lone_outs, lone_logits, lone_ctx = _lone(lm, evs)
        assert outs[s] == lone_outs, f"stream {s}"
        assert ctx[s] == lone_ctx, f"stream {s}"
        assert len(logits[s]) == len(lone_logits), f"stream {s}"
        torch.testing.assert_close(torch.stack(logits[s]), torch.stack(lone_logits), rtol=1e-4, atol=1e-4, msg=f"stream {s}")
    # The late frame was taken, and the mixed stream's reset restarted its positions.
    assert True in outs[3] and "reset" in outs[3]


def test_two_batched_steps_per_tick(lm) -> None:  # type: ignore[no-untyped-def]
    b = BatchedLMConcealer(lm, 3)
    rng = np.random.default_rng(1)
    for s in range(3):
        b.prepare(s)
    assert b.run() == 1
    for i in range(3):
        b.observe(0, i, _frame(rng))
        b.conceal(1, i, (), 8)
        b.conceal(2, i, _frame(rng)[:2], 8)
        for s in range(3):
            b.prepare(s)
        assert b.run() == 2  # redo round (streams 0, 2) + speculation round
    # Lost stream 1 needs no redo: its speculation rides in the first round.
    assert [n for _, n in list(b.step_log)[-2:]] == [3, 2]
    with pytest.raises(ValueError, match="frames go forward"):
        b.observe(0, 1, _frame(rng))


def _logits_run(lm: Any, forced: list[torch.Tensor], spec_at: int | None, k: int, idle: set[int]) -> torch.Tensor:
    """Stream 0 steps ``forced``; stream 1 runs beside it, idle on ticks in ``idle``."""
    sp = BatchedStepper(lm, batch_size=2)
    logs: list[torch.Tensor] = []
    sp.gen.on_text_logits_hook = lambda x: logs.append(x[0].flatten().clone())
    both = torch.tensor([True, True])
    for o, f in enumerate(forced):
        mask = torch.tensor([True, o not in idle])
        if o == spec_at:
            for _ in range(k):
                sp.step_masked(torch.full((2, 8), UNFORCED), both)
            sp.rewind_streams(torch.tensor([k, 0]))
            del logs[-k:]
        sp.step_masked(torch.cat([f, torch.full((1, 8), UNFORCED)]), mask)
    sp.close()
    return torch.stack(logs)


@pytest.mark.parametrize("k", [1, 2])
def test_rewind_exact_past_the_ring_wrap(lm, k: int) -> None:  # type: ignore[no-untyped-def]
    lm = _small_context(lm, 6)
    gen = torch.Generator().manual_seed(5)
    forced = [torch.randint(0, 2048, (1, 8), generator=gen) for _ in range(18)]
    plain = _logits_run(lm, forced, None, k, idle=set())
    # Speculate k steps and rewind well after the 6-slot ring wrapped, beside a stream that idles.
    # (A plain LMStepper gets k=2 wrong here: the undone step overwrote the oldest attended slot.)
    spec = _logits_run(lm, forced, 13, k, idle={3, 4, 12, 13, 14})
    assert torch.equal(plain, spec)
    sp = BatchedStepper(lm, batch_size=2)
    sp.step_masked(torch.full((2, 8), UNFORCED), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="cannot rewind"):
        sp.rewind_streams(torch.tensor([0, 1]))  # stream 1 never stepped
    sp.close()


def test_long_run_state_is_bounded(lm) -> None:  # type: ignore[no-untyped-def]
    """Far past a small LM context window: same state sizes, no growing Python objects, equal to lone runs."""
    lm = _small_context(lm, 6)
    rng = np.random.default_rng(2)
    n, ticks = 2, 40
    lost = rng.random((n, ticks)) < 0.1
    frames = [[_frame(rng) for _ in range(ticks)] for _ in range(n)]
    traces: list[list[Event]] = [
        [("con", i, (), 8) if lost[s, i] else ("obs", i, frames[s][i]) for i in range(ticks)] for s in range(n)
    ]
    b = BatchedLMConcealer(lm, n)
    sizes: list[int] = []
    objects: list[int] = []
    for t in range(ticks):
        for s in range(n):
            _apply(b, s, traces[s][t])
            b.prepare(s)
        b.run()
        if t in (15, 27, 39):  # context 6: the ring wrapped long before t=15
            gc.collect()
            sizes.append(b.stepper.state_bytes())
            objects.append(len(gc.get_objects()))
    assert b.steps_of(0) > 6 * 6  # positions went far past the window
    assert sizes[0] == sizes[1] == sizes[2]
    assert objects[2] - objects[0] < 40  # nothing accumulates per frame (about 48 rounds between checks)
    assert len(b.step_log) <= b.step_log.maxlen  # type: ignore[operator]
    ctx = [b.stepper.read_at(1, k) for k in range(3)]
    b.stepper.close()
    assert _lone(lm, traces[1])[2] == ctx


def test_batched_mimi_equals_lone_decoders(models) -> None:  # type: ignore[no-untyped-def]
    n = 3
    batched = BatchedMimiDecoder(models.new_mimi(), n)
    lone = [MimiDecoder(models.new_mimi()) for _ in range(n)]
    rng = np.random.default_rng(3)
    for t in range(6):
        frames: list[tuple[int, ...] | None] = [
            tuple(int(x) for x in rng.integers(0, 2048, k)) for k in (8, 4 if t % 2 else 8, 1)
        ]
        if t == 2:
            frames[1] = None  # stream 1 idle this tick: its state must not move
        if t == 4:
            batched.reset(2)
            lone[2].reset()
        pcm = batched.decode(frames)
        assert pcm.shape == (n, 1920) and pcm.dtype == np.float32
        for s in range(n):
            f = frames[s]
            if f is None:
                assert not pcm[s].any()
            else:
                np.testing.assert_allclose(pcm[s], lone[s].decode(f), rtol=1e-4, atol=1e-5)
    # One stream runs as a batch of two on CPU (a masked spare row): same audio as MimiDecoder.
    one, ref = BatchedMimiDecoder(models.new_mimi(), 1), MimiDecoder(models.new_mimi())
    for _ in range(3):
        f = tuple(int(x) for x in rng.integers(0, 2048, 8))
        np.testing.assert_allclose(one.decode([f])[0], ref.decode(f), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="one entry per stream"):
        batched.decode([(1, 2)])
    with pytest.raises(ValueError, match="stream 1"):
        batched.decode([(1,), (4096,), None])


def test_batched_mimi_encoder_equals_lone_encoders(models) -> None:  # type: ignore[no-untyped-def]
    from largesc_codec.batched.mimi import BatchedMimiEncoder
    from largesc_codec.neural.encoder import MimiEncoder

    n, counts = 3, (8, 4, 1)
    batched = BatchedMimiEncoder(models.new_mimi(), n)
    lone = [MimiEncoder(models.new_mimi(), k) for k in counts]
    rng = np.random.default_rng(5)
    for t in range(6):
        frames: list[tuple[np.ndarray, int] | None] = [
            ((rng.standard_normal(1920) * 0.1).astype(np.float32), k) for k in counts]
        if t == 2:
            frames[1] = None  # stream 1 idle this tick: its state must not move
        if t == 4:
            batched.reset(2)
            lone[2].reset()
        out = batched.encode(frames)
        for s in range(n):
            f = frames[s]
            if f is None:
                assert out[s] is None
            else:
                np.testing.assert_array_equal(out[s], lone[s].encode(f[0]))
    with pytest.raises(ValueError, match="one entry per stream"):
        batched.encode([None])
    with pytest.raises(ValueError, match="stream 0: codebooks"):
        batched.encode([(np.zeros(1920, np.float32), 0), None, None])
