"""Moshi language-model concealment in token space, speculative one frame ahead.

Theory of operation (frame n = the codec's 80 ms frame; see lmstep.py for how
Moshi's delayed acoustic codebooks map to LM steps):

Invariant S(n), after frame n was played:
  steps 0..n+1 have run; the last step wrote cb1..7 of frame n and a guess
  for cb0 of frame n+1.

Context: the LM is fed every frame actually played with its TRUE tokens;
codebooks that were concealed are written as moshi's "erased" token (the
``erased`` context, default), exactly as fine-tuning presents lost frames
(finetune.py). ``context="predicted"`` feeds the predictions instead.

``observe()`` and ``conceal()`` only choose a frame's tokens; the LM work
for that frame (committing it to the context) is deferred to ``prepare()``,
called right after the frame went to the decoder, off the deadline path.
``prepare()`` then keeps the cb0 guess for frame n+1, erases it in the
context, and runs step n+2 speculatively: its output is cb1..7 of frame n+1. The full prediction for
frame n+1 is then ready before its deadline, so ``conceal()`` serves a loss
with no LM work at all.

If the jitter buffer already holds a copy of frame n+1 when ``prepare()``
runs (``prepare(n + 1, known)``: a primary, or the first codebooks from
redundancy), the speculation is conditioned on it: the true cb0 goes into the
context and the known acoustic codebooks are forced in step n+2, so the
codebooks still missing are predicted from the ones that are known.

At frame n+1's deadline (``observe`` / ``conceal``):
  - lost: the speculative step is kept, its acoustic output erased in the
    context; S(n+1) holds with no further LM step.
  - arrived (fully or partly), and the speculation was conditioned on exactly
    these codebooks: that step is already the one with the truth forced; only
    the codebooks not known are erased in the context. No LM step.
  - arrived otherwise: the true cb0 is written into the context, the
    speculative step is rewound and redone with the known codebooks forced.
    This runs after the frame's tokens were chosen: no waiting at the
    deadline, only work overlapping the frame's playout.
  - a long burst (more than ``fade_after`` concealed frames in a row) fades to
    comfort silence instead of letting the LM babble; real frames resync it.
  - a late frame (arrives just after its deadline) for the last played frame
    rewinds two steps and redoes them with the truth.

Only 8 codebooks (Moshi's dep_q) are modelled; codebooks beyond 8 of a
concealed frame are not predicted (the frame plays with 8).
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch

from largesc_codec.neural.concealers import Concealer, Concealment
from largesc_codec.neural.lmstep import UNFORCED, LMStepper

TIMING_WINDOW = 2000  # frames of stage timings kept (about 160 s)


class LMContext(str, enum.Enum):
    """What the LM is fed for codebooks the concealer filled: moshi's erased token, or the prediction."""

    ERASED = "erased"
    PREDICTED = "predicted"

    @classmethod
    def parse(cls, value: "LMContext | str") -> "LMContext":
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"context must be 'erased' or 'predicted', got {value!r}") from None


class LMConcealer(Concealer):
    """Concealer backed by a Moshi LMModel (batch 1); writes every member of ``Concealer``.

    Args:
        lm: a moshi LMModel in eval mode (``Models.load_lm()``), owned by this object.
        fade_after: concealed frames in a row played at full gain.
        silence_after: concealed frames in a row after which output is silent.
        greedy: argmax decoding (reproducible); False samples with ``temp``.
        context: "erased" (concealed codebooks erased in the LM context) or "predicted".
    """

    def __init__(
        self,
        lm: Any,
        fade_after: int = 3,
        silence_after: int = 8,
        greedy: bool = True,
        temp: float = 0.8,
        context: LMContext | str = "erased",
    ) -> None:
        mode = LMContext.parse(context)
        self.stepper = LMStepper(lm, batch_size=1, greedy=greedy, temp=temp)
        self.dep_q = self.stepper.dep_q
        self.erase = mode is LMContext.ERASED
        self._zero = int(lm.zero_token_id)
        self.fade_after = fade_after
        self.silence_after = silence_after
        # Recent timings only: a one-hour call must not grow memory.
        # prepare = update (commit of the last frame) + speculate (the step for the next one).
        self._timings: dict[str, deque[float]] = {
            k: deque(maxlen=TIMING_WINDOW) for k in ("prepare", "update", "speculate", "conceal")}
        self.reset()

    def reset(self, next_index: int = 0) -> None:
        """Forget the stream (new SSRC / restart); the next frame is ``next_index``."""
        if self.stepper.steps:
            self.stepper.reset()
        self._played = next_index - 1
        self._spec: tuple[int, ...] | None = None
        self._spec_known = 0  # leading codebooks of _spec that were known (forced) when it was made
        self._pending: tuple[int, tuple[int, ...], int] | None = None
        self._run = 0
        # Reach S(next_index - 1): one step writes the first cb0 guess.
        self.stepper.step(self._unforced())

    # -- Concealer protocol -------------------------------------------------
    # observe()/conceal() only choose tokens and record them; the LM work for
    # them (commit) runs in prepare(), after the frame was handed to the decoder.
    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        """Frame ``index`` played with these true tokens."""
        self._check_forward(index)
        self._flush()
        self._pending = (index, tuple(tokens[: self.dep_q]), min(len(tokens), self.dep_q))
        self._run = 0

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        """Tokens for frame ``index``: ``known`` leading codebooks kept, the rest predicted."""
        t0 = time.perf_counter()
        self._check_forward(index)
        self._flush()
        self._ready_for(index)  # no LM step when prepare() ran after the previous frame
        spec = self._spec or (0,) * self.dep_q
        want = max(len(known), min(codebooks, self.dep_q))
        tokens = tuple(known) + spec[len(known) : want]
        self._pending = (index, tokens, min(len(known), self.dep_q))
        self._timings["conceal"].append((time.perf_counter() - t0) * 1e3)
        if known:
            self._run = 0
            return Concealment(tokens)
        self._run += 1
        return Concealment(tokens, gain=self._gain())

    def prepare(self, index: int | None = None, known: Sequence[int] = ()) -> None:
        """Commit the last frame to the LM context and speculate the next one (off the deadline).

        ``known``: the leading codebooks of frame ``index`` already held (the
        jitter buffer's ``next_frame()``); when ``index`` is the next frame the
        speculation predicts only the rest, conditioned on them.
        """
        t0 = time.perf_counter()
        self._flush()
        t1 = time.perf_counter()
        self._speculate(tuple(known) if index == self._played + 1 else ())
        t2 = time.perf_counter()
        self._timings["speculate"].append((t2 - t1) * 1e3)
        self._timings["prepare"].append((t2 - t0) * 1e3)

    def observe_late(self, index: int, tokens: tuple[int, ...]) -> bool:
        """A frame arrived after it was played. True if the LM context now holds it."""
        self._flush()
        if index != self._played or self._spec is None:
            return False
        # Undo the speculative step and the step that wrote frame ``index``'s acoustics
        # (exact only before the attention ring wraps; after that the late frame is dropped).
        try:
            self.stepper.rewind(2)
        except ValueError:
            return False
        self.stepper.write_audio(0, 0, [tokens[0]])
        self._spec = None
        self._redo(tokens[: self.dep_q], known=min(len(tokens), self.dep_q))
        self._speculate()
        return True

    def close(self) -> None:
        """Leave streaming mode: the LM can then serve another concealer (or be trained)."""
        self.stepper.close()

    @property
    def timings_ms(self) -> dict[str, deque[float]]:
        """Recent stage durations (ms): prepare = update (commit) + speculate; conceal. Bounded windows."""
        return self._timings

    # -- internals ----------------------------------------------------------
    def _unforced(self) -> torch.Tensor:
        return torch.full((1, self.dep_q), UNFORCED, dtype=torch.long)

    def _gain(self) -> float:
        if self._run <= self.fade_after:
            return 1.0
        if self._run >= self.silence_after:
            return 0.0
        return 1.0 - (self._run - self.fade_after) / (self.silence_after - self.fade_after)

    def _check_forward(self, index: int) -> None:
        last = self._pending[0] if self._pending is not None else self._played
        if index <= last:
            raise ValueError(f"frame {index} comes after frame {last} was played: frames go forward")

    def _flush(self) -> None:
        if self._pending is None:
            return
        index, tokens, known = self._pending
        self._pending = None
        self._ready_for(index)
        self._commit(tokens, known)

    def _ready_for(self, index: int) -> None:
        """Bring the LM to S(index - 1) with a speculation for ``index`` ready."""
        while self._played < index - 1:
            # Frames the LM never saw (a gap in indices): treat them as lost.
            self._speculate()
            self._commit((), known=0)
        self._speculate()

    def _speculate(self, known: tuple[int, ...] = ()) -> None:
        """Run the step that writes frame _played + 1's acoustics, with ``known`` codebooks forced."""
        if self._spec is not None:
            return
        k = min(len(known), self.dep_q)
        if k:
            cb0 = int(known[0])
            self.stepper.write_audio(0, 0, [cb0])  # the truth replaces the LM's cb0 guess
        else:
            cb0 = self.stepper.read_audio(0)[0]
            if self.erase:
                self.stepper.write_audio(0, 0, [self._zero])
        forced = [UNFORCED] + [int(t) for t in known[1:k]] + [UNFORCED] * (self.dep_q - max(k, 1))
        out = self.stepper.step(torch.tensor([forced], dtype=torch.long))
        self._spec = (cb0,) + tuple(int(t) for t in out[0, 1:])
        self._spec_known = k

    def _commit(self, tokens: tuple[int, ...], known: int) -> None:
        """Make frame _played + 1 final in the LM context; reaches S(_played + 1)."""
        t0 = time.perf_counter()
        ks, spec = self._spec_known, self._spec or ()
        if ks and (known == 0 or (known == ks and tokens[:ks] == spec[:ks])):
            # The speculative step ran with these codebooks forced: it is the redo already.
            if self.erase and ks < self.dep_q:
                self.stepper.write_audio(0, ks, [self._zero] * (self.dep_q - ks))
        elif known > 0 and (self.erase or tokens != self._spec):
            # The speculative step read an erased or wrong cb0: redo it with the truth.
            self.stepper.rewind(1)
            self.stepper.write_audio(0, 0, [tokens[0]])
            self._redo(tokens, known)
        elif self.erase:
            self.stepper.write_audio(0, 1, [self._zero] * (self.dep_q - 1))
        self._played += 1
        self._spec, self._spec_known = None, 0
        self._timings["update"].append((time.perf_counter() - t0) * 1e3)

    def _redo(self, tokens: tuple[int, ...], known: int) -> None:
        """Run the step writing this frame's acoustics with what is known forced."""
        acoustic = list(tokens[1:known]) + [UNFORCED] * (self.dep_q - known)
        self.stepper.step(torch.tensor([[UNFORCED] + acoustic], dtype=torch.long))
        tail = list(tokens[known : self.dep_q])
        if self.erase and known < self.dep_q:
            self.stepper.write_audio(0, known, [self._zero] * (self.dep_q - known))
        elif tail:
            self.stepper.write_audio(0, known, tail)
