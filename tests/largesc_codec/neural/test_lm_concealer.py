"""LM concealment on the small Moshi LM: alignment, speculation, rewind, bursts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from largesc_codec.neural.lm_concealer import LMConcealer
from largesc_codec.neural.lmstep import UNFORCED, LMStepper

pytestmark = pytest.mark.model


@pytest.fixture()
def lm(models):  # type: ignore[no-untyped-def]
    return models.load_lm()


def _frames(n: int, seed: int = 0) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(x) for x in rng.integers(0, 2048, 8)) for _ in range(n)]


def _run_logits(lm, forced: list[torch.Tensor], spec_at: int | None = None, k: int = 1) -> torch.Tensor:  # type: ignore[no-untyped-def]
    stepper = LMStepper(lm)
    logs: list[torch.Tensor] = []
    stepper.gen.on_text_logits_hook = lambda logits: logs.append(logits.flatten().clone())
    for o, f in enumerate(forced):
        if o == spec_at:
            for _ in range(k):
                stepper.step(torch.full((1, 8), UNFORCED))
            stepper.rewind(k)
            del logs[-k:]
        stepper.step(f)
    stepper.close()
    return torch.stack(logs)


@pytest.mark.parametrize("k", [1, 2])
def test_rewind_is_exact(lm, k: int) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(3)
    forced = [torch.randint(0, 2048, (1, 8), generator=gen) for _ in range(10)]
    plain = _run_logits(lm, forced)
    speculated = _run_logits(lm, forced, spec_at=6, k=k)
    assert torch.equal(plain, speculated)


def test_rewind_too_deep_is_refused(lm) -> None:  # type: ignore[no-untyped-def]
    stepper = LMStepper(lm)
    for _ in range(4):
        stepper.step(torch.full((1, 8), UNFORCED))
    with pytest.raises(ValueError, match="rewind 3"):
        stepper.rewind(3)


def test_known_codebooks_kept_and_shapes(lm) -> None:  # type: ignore[no-untyped-def]
    c = LMConcealer(lm)
    frames = _frames(6)
    for i in range(3):
        c.observe(i, frames[i])
        c.prepare()
    full = c.conceal(3, (), 8)
    assert len(full.tokens) == 8 and all(0 <= t < 2048 for t in full.tokens)
    c.prepare()
    part = c.conceal(4, frames[4][:3], 8)
    assert part.tokens[:3] == frames[4][:3] and len(part.tokens) == 8 and part.gain == 1.0
    c.prepare()
    fewer = c.conceal(5, (), 4)
    assert len(fewer.tokens) == 4


def test_conceal_at_deadline_runs_no_lm_step(lm) -> None:  # type: ignore[no-untyped-def]
    c = LMConcealer(lm)
    frames = _frames(4)
    for i in range(3):
        c.observe(i, frames[i])
        c.prepare()
    before = c.stepper.steps
    c.conceal(3, (), 8)
    assert c.stepper.steps == before  # the prediction was made by prepare()
    c.observe(4, frames[3])
    assert c.stepper.steps == before  # a real frame costs no LM step before it is decoded either
    assert c.timings_ms["conceal"][-1] < c.timings_ms["prepare"][-1]


def _history(lm, frames: list[tuple[int, ...]], held: tuple[int, ...] = (), **kw):  # type: ignore[no-untyped-def]
    """A concealer that played frames 0..2; ``held``: what the buffer held of frame 3 at prepare."""
    c = LMConcealer(lm, **kw)
    for i in range(3):
        c.observe(i, frames[i])
        c.prepare(i + 1, held if i == 2 else ())
    return c


def _spy_steps(c: LMConcealer) -> list[torch.Tensor]:
    """Record what each LM step of ``c`` writes (the real step runs)."""
    outs: list[torch.Tensor] = []
    step = c.stepper.step

    def spy(forced: torch.Tensor) -> torch.Tensor:
        outs.append(step(forced))
        return outs[-1]

    c.stepper.step = spy  # type: ignore[method-assign]
    return outs


def test_partial_frame_rest_is_predicted_from_its_known_codebooks(lm) -> None:  # type: ignore[no-untyped-def]
    frames = _frames(6, seed=2)
    g = _history(lm, frames)
    guess = g.conceal(3, (), 8).tokens  # speculation before anything of frame 3 was seen
    g.stepper.close()  # one stepper streams on the LM at a time
    known = tuple((t + 1) % 2048 for t in guess[:3])  # the copy that arrived disagrees with the guess
    # Before: the speculation is made blind; the redo with the known codebooks forced comes after.
    blind = _history(lm, frames)
    blind_tokens = blind.conceal(3, known, 8).tokens
    blind_steps = _spy_steps(blind)
    blind.prepare()
    blind_ctx = [blind.stepper.read_audio(k) for k in range(3)]
    blind.stepper.close()
    # Now: prepare() already saw the partial copy in the buffer.
    c = _history(lm, frames, held=known)
    before = c.stepper.steps
    got = c.conceal(3, known, 8)
    assert c.stepper.steps == before  # still no LM step at the deadline
    assert got.tokens[:3] == known and len(got.tokens) == 8
    assert blind_tokens[3:] == guess[3:]  # the old prediction ignored the known codebooks
    # The rest is what the LM predicts with the known codebooks forced (the blind path's redo step),
    # which differs from the blind guess here.
    assert got.tokens[3:] == tuple(int(t) for t in blind_steps[0][0, 3:]) and got.tokens[3:] != guess[3:]
    steps = _spy_steps(c)
    c.prepare()
    assert len(steps) == 1 and len(blind_steps) == 2  # the conditioned speculation was the redo
    assert [c.stepper.read_audio(k) for k in range(3)] == blind_ctx
    c.stepper.close()
    # A copy that grew after prepare() (the primary came) is redone with everything forced.
    c2 = _history(lm, frames, held=frames[3][:2])
    c2.observe(3, frames[3])
    steps2 = _spy_steps(c2)
    c2.prepare()
    assert len(steps2) == 2 and steps2[0][0, 1:].tolist() == list(frames[3][1:])
    c2.stepper.close()


@pytest.mark.parametrize("context", ["erased", "predicted"])
def test_context_holds_erased_or_predicted_codebooks_of_concealed_frames(lm, context: str) -> None:  # type: ignore[no-untyped-def]
    c = _history(lm, _frames(4, seed=4), context=context)
    def played() -> tuple[int, ...]:
        # Right after prepare() following frame n: its cb0 two steps back, its cb1..7 one step back (lmstep.py).
        return (c.stepper.read_audio(2)[0], *c.stepper.read_audio(1)[1:])

    lost = c.conceal(3, (), 8).tokens
    c.prepare()
    ctx3 = played()
    part = c.conceal(4, (5, 6, 7), 8).tokens
    c.prepare()
    ctx4 = played()
    c.stepper.close()
    z = int(lm.zero_token_id)
    if context == "predicted":
        assert ctx3 == lost and ctx4 == part
    else:
        assert ctx3 == (z,) * 8 and ctx4 == (5, 6, 7) + (z,) * 5
    assert part[:3] == (5, 6, 7)


def test_burst_fades_to_silence_then_resyncs(lm) -> None:  # type: ignore[no-untyped-def]
    c = LMConcealer(lm, fade_after=2, silence_after=5)
    frames = _frames(20)
    c.observe(0, frames[0])
    c.prepare()
    gains = []
    for i in range(1, 9):
        gains.append(c.conceal(i, (), 8).gain)
        c.prepare()
    assert gains[:2] == [1.0, 1.0] and gains[4:] == [0.0] * 4
    assert all(a >= b for a, b in zip(gains, gains[1:]))  # monotone fade
    # Invariant S(n): bootstrap + one step per frame + one speculative step.
    assert c.stepper.steps == 1 + 9 + 1
    # Concealed frames are erased in the LM context.
    state = c.stepper.gen_state
    assert int(state.cache[0, 2, int(state.offsets[0] - 1) % state.cache.shape[2]]) == lm.zero_token_id
    c.observe(9, frames[9])
    c.prepare()
    assert c.conceal(10, (), 8).gain == 1.0  # a real frame resets the fade


def test_gap_in_indices_is_treated_as_loss(lm) -> None:  # type: ignore[no-untyped-def]
    c = LMConcealer(lm)
    frames = _frames(10)
    c.observe(0, frames[0])
    c.observe(5, frames[5])  # frames 1..4 never reached the concealer
    c.prepare()
    assert c.stepper.steps == 1 + 6 + 1
    with pytest.raises(ValueError, match="frames go forward"):
        c.observe(5, frames[5])


def test_late_frame_updates_context_like_an_on_time_one(lm) -> None:  # type: ignore[no-untyped-def]
    frames = _frames(6, seed=1)

    def context(late: bool) -> list[list[int]]:
        c = LMConcealer(lm)
        for i in range(3):
            c.observe(i, frames[i])
            c.prepare()
        if late:
            c.conceal(3, (), 8)
            c.prepare()
            assert c.observe_late(3, frames[3])
        else:
            c.observe(3, frames[3])
            c.prepare()
        ctx = [c.stepper.read_audio(1), c.stepper.read_audio(2)]
        c.stepper.close()
        return ctx

    assert context(late=True) == context(late=False)


def test_two_step_rewind_refused_after_the_attention_ring_wraps() -> None:
    from moshi.models import loaders

    from largesc_codec.train.testweights import SMALL_LM

    torch.manual_seed(0)
    lm = loaders.get_moshi_lm(None, lm_kwargs={**SMALL_LM, "context": 8}, device="cpu", dtype=torch.float32)
    c = LMConcealer(lm)
    frames = _frames(12)
    for i in range(11):
        c.observe(i, frames[i])
        c.prepare()
    assert c.stepper.steps > 8
    with pytest.raises(ValueError, match="at most 1"):
        c.stepper.rewind(2)
    c.conceal(11, (), 8)
    c.prepare()
    assert c.observe_late(11, frames[11]) is False  # not used rather than used inexactly
