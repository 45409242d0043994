"""LM concealment on the small Moshi LM: alignment, speculation, rewind, bursts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from largesc_codec.lm_concealer import LMConcealer
from largesc_codec.lmstep import UNFORCED, LMStepper

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
    state = c.stepper.gen._streaming_state
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

    from largesc_codec.testweights import SMALL_LM

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
