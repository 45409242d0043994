"""Many calls per machine: LM concealment and Mimi decoding for N streams at once.

Theory of operation. ``BatchedLMConcealer`` keeps, per stream (call), exactly
the state machine of ``LMConcealer`` (invariant S(n), speculate in
``prepare``, commit on ``observe``/``conceal``, redo on arrival, fade in long
bursts, late frames; see lm_concealer.py), over one shared Moshi LM in
streaming mode with batch N (step.py: masked steps, per-stream rewind
and reset). What changes is *when* the LM runs: every per-stream call only
writes the token cache and queues the steps it needs; ``run()`` then empties
the queues round by round, one batched LM step per round, streams without work
in that round masked out. The playout clock of a receiver with N calls does,
every 80 ms tick:

    for each call s: observe(s, ...) or conceal(s, ...)   # no LM step
    for each call s: prepare(s)                           # queued
    run()       # round 1: redo steps of calls whose frame arrived
                # round 2: speculation for every call

so the LM cost per tick is two batched steps whatever N is. A call that needs a
result that is still queued (its speculation, say, after a gap) flushes the
queues itself, so any call order stays correct; it only batches less.
Per stream the results equal a lone ``LMConcealer`` fed the same events
(tests/largesc_codec/batched/test_batched.py). ``BatchedStream`` gives one stream the
Concealer interface of the receiver.

``BatchedMimiDecoder`` (mimi.py) does the same for Mimi decoding.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from largesc_codec.batched.mimi import BatchedMimiDecoder
from largesc_codec.batched.step import BatchedStepper
from largesc_codec.neural.concealers import Concealer, Concealment
from largesc_codec.neural.lm_concealer import LMContext
from largesc_codec.neural.lmstep import UNFORCED

__all__ = ["BatchedLMConcealer", "BatchedMimiDecoder", "BatchedStream"]

TIMING_WINDOW = 4096  # timing samples kept (a bounded window: long calls must not grow memory)


@dataclass
class _Step:
    """One queued LM step of one stream, with its cache edits before and after."""

    reset: bool = False  # restart the stream first (new call)
    rewind: int = 0  # steps to undo first
    cb0: int | None = None  # true cb0 written at the (rewound) current position
    acoustic: tuple[int, ...] | None = None  # forced cb1..7 (UNFORCED = sample)
    tail: tuple[int, tuple[int, ...]] | None = None  # (first_cb, tokens) written after the step
    speculate: bool = False  # prepare(): keep the cb0 guess, erase it, keep the step's output
    known: tuple[int, ...] = ()  # with speculate: leading codebooks of the frame already held (forced)


@dataclass
class _Stream:
    played: int = -1
    spec: tuple[int, ...] | None = None
    spec_known: int = 0  # leading codebooks of spec that were forced when it was made
    run: int = 0
    stepped: bool = False
    queue: list[_Step] = field(default_factory=list)


class BatchedLMConcealer:
    """LM concealment for ``streams`` independent calls over one batched Moshi LM.

    Args:
        lm: a moshi LMModel in eval mode (``Models.load_lm()``), owned by this object.
        streams: number of concurrent streams (the LM batch size).
        fade_after, silence_after, greedy, temp, context: as ``LMConcealer``.
    """

    def __init__(
        self,
        lm: Any,
        streams: int,
        fade_after: int = 3,
        silence_after: int = 8,
        greedy: bool = True,
        temp: float = 0.8,
        context: LMContext | str = "erased",
    ) -> None:
        mode = LMContext.parse(context)
        if streams < 1:
            raise ValueError(f"streams must be >= 1, got {streams}")
        self.stepper = BatchedStepper(lm, batch_size=streams, greedy=greedy, temp=temp)
        self.streams = streams
        self.dep_q = self.stepper.dep_q
        self.erase = mode is LMContext.ERASED
        self._zero = int(lm.zero_token_id)
        self.fade_after = fade_after
        self.silence_after = silence_after
        # (ms, streams stepped) per batched LM step, last TIMING_WINDOW only.
        self.step_log: deque[tuple[float, int]] = deque(maxlen=TIMING_WINDOW)
        self._st = [_Stream() for _ in range(streams)]
        for s in range(streams):
            self.reset(s)
        self.run()

    # -- per-stream API (LMConcealer's, with the stream index first) ---------
    def reset(self, stream: int, next_index: int = 0) -> None:
        """Forget stream ``stream`` (new call); its next frame is ``next_index``. Queued."""
        st = self._st[stream]
        self._st[stream] = _Stream(played=next_index - 1, stepped=True, queue=[_Step(reset=st.stepped)])

    def observe(self, stream: int, index: int, tokens: tuple[int, ...]) -> None:
        """Frame ``index`` of ``stream`` played with these true tokens."""
        self._ready_for(stream, index)
        self._commit(stream, tokens[: self.dep_q], known=min(len(tokens), self.dep_q))
        self._st[stream].run = 0

    def conceal(self, stream: int, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        """Tokens for frame ``index`` of ``stream``: ``known`` kept, the rest from the speculation."""
        self._ready_for(stream, index)
        st = self._st[stream]
        spec = st.spec or (0,) * self.dep_q
        want = max(len(known), min(codebooks, self.dep_q))
        tokens = tuple(known) + spec[len(known) : want]
        self._commit(stream, tokens, known=min(len(known), self.dep_q))
        if known:
            st.run = 0
            return Concealment(tokens)
        st.run += 1
        return Concealment(tokens, gain=self._gain(st.run))

    def prepare(self, stream: int, index: int | None = None, known: Sequence[int] = ()) -> None:
        """Queue the speculation of the stream's next frame (runs at the next ``run()``).

        ``known``: leading codebooks of frame ``index`` already held; when it is
        the next frame, the speculation is conditioned on them (as ``LMConcealer.prepare``).
        """
        st = self._st[stream]
        if st.spec is None and not any(q.speculate for q in st.queue):
            held = tuple(int(t) for t in known[: self.dep_q]) if index == st.played + 1 else ()
            st.queue.append(_Step(speculate=True, known=held))

    def observe_late(self, stream: int, index: int, tokens: tuple[int, ...]) -> bool:
        """A frame arrived after it was played. True if the LM context now holds it."""
        st = self._st[stream]
        if st.queue:
            self.run()
        if index != st.played or st.spec is None:
            return False
        # Undo the speculative step and the step that wrote frame ``index``'s acoustics.
        st.spec = None
        known = min(len(tokens), self.dep_q)
        st.queue += [self._redo(tokens[: self.dep_q], known, rewind=2), _Step(speculate=True)]
        return True

    def stream(self, stream: int) -> "BatchedStream":
        """A Concealer view of one stream (what ``Receiver`` takes)."""
        return BatchedStream(self, stream)

    @property
    def pending(self) -> bool:
        """True if some stream has LM steps queued."""
        return any(st.queue for st in self._st)

    def steps_of(self, stream: int) -> int:
        """LM steps the stream has taken since its last reset (after ``run()``)."""
        return self.stepper.steps_of(stream)

    # -- the batched work ------------------------------------------------------
    def run(self) -> int:
        """Run every queued step, one batched LM step per round. Returns the rounds run."""
        rounds = 0
        while self.pending:
            heads = [st.queue.pop(0) if st.queue else None for st in self._st]
            self._round(heads)
            rounds += 1
        return rounds

    def _round(self, heads: list[_Step | None]) -> None:
        t0 = time.perf_counter()
        sp = self.stepper
        mask = torch.tensor([h is not None for h in heads])
        resets = torch.tensor([h is not None and h.reset for h in heads])
        if bool(resets.any()):
            sp.reset_streams(resets)
        ks = torch.tensor([h.rewind if h is not None else 0 for h in heads], dtype=torch.long)
        if bool(ks.any()):
            sp.rewind_streams(ks)
        forced = torch.full((self.streams, self.dep_q), UNFORCED, dtype=torch.long)
        guesses: dict[int, tuple[int, int]] = {}  # stream -> (cb0, codebooks forced)
        for b, h in enumerate(heads):
            if h is None:
                continue
            if h.cb0 is not None:
                sp.write_at(b, 0, 0, [h.cb0])
            if h.speculate and h.known:
                guesses[b] = (h.known[0], len(h.known))
                sp.write_at(b, 0, 0, [h.known[0]])  # the truth replaces the LM's cb0 guess
                if len(h.known) > 1:
                    forced[b, 1 : len(h.known)] = torch.tensor(h.known[1:], dtype=torch.long)
            elif h.speculate:
                guesses[b] = (sp.read_at(b, 0)[0], 0)
                if self.erase:
                    sp.write_at(b, 0, 0, [self._zero])
            if h.acoustic is not None:
                forced[b, 1:] = torch.tensor(h.acoustic, dtype=torch.long)
        out = sp.step_masked(forced, mask).tolist()
        for b, h in enumerate(heads):
            if h is not None and h.tail is not None:
                sp.write_at(b, 0, h.tail[0], h.tail[1])
        for b, (cb0, k) in guesses.items():
            self._st[b].spec = (cb0,) + tuple(int(t) for t in out[b][1:])
            self._st[b].spec_known = k
        self.step_log.append(((time.perf_counter() - t0) * 1e3, len(heads) - heads.count(None)))

    # -- per-stream internals (LMConcealer's logic) ---------------------------
    def _gain(self, run: int) -> float:
        if run <= self.fade_after:
            return 1.0
        if run >= self.silence_after:
            return 0.0
        return 1.0 - (run - self.fade_after) / (self.silence_after - self.fade_after)

    def _ensure_spec(self, stream: int) -> None:
        if self._st[stream].spec is None:
            self.prepare(stream)
            self.run()

    def _ready_for(self, stream: int, index: int) -> None:
        """Bring the stream to S(index - 1) with a speculation for ``index`` ready."""
        st = self._st[stream]
        if index <= st.played:
            raise ValueError(f"frame {index} comes after frame {st.played} was played: frames go forward")
        while st.played < index - 1:
            # Frames the stream never saw (a gap in indices): treat them as lost.
            self._ensure_spec(stream)
            self._commit(stream, (), known=0)
        self._ensure_spec(stream)

    def _commit(self, stream: int, tokens: tuple[int, ...], known: int) -> None:
        """Make frame played + 1 final in the stream's context; reaches S(played + 1)."""
        st = self._st[stream]
        ks, spec = st.spec_known, st.spec or ()
        if ks and (known == 0 or (known == ks and tokens[:ks] == spec[:ks])):
            # The speculative step ran with these codebooks forced: it is the redo already.
            if self.erase and ks < self.dep_q:
                self.stepper.write_at(stream, 0, ks, [self._zero] * (self.dep_q - ks))
        elif known > 0 and (self.erase or tokens != st.spec):
            # The speculative step read an erased or wrong cb0: redo it with the truth.
            st.queue.append(self._redo(tokens, known, rewind=1))
        elif self.erase:
            self.stepper.write_at(stream, 0, 1, [self._zero] * (self.dep_q - 1))
        st.played += 1
        st.spec, st.spec_known = None, 0

    def _redo(self, tokens: tuple[int, ...], known: int, rewind: int) -> _Step:
        """The step writing this frame's acoustics with what is known forced."""
        acoustic = tuple(tokens[1:known]) + (UNFORCED,) * (self.dep_q - known)
        if self.erase and known < self.dep_q:
            tail: tuple[int, tuple[int, ...]] | None = (known, (self._zero,) * (self.dep_q - known))
        else:
            rest = tuple(tokens[known : self.dep_q])
            tail = (known, rest) if rest else None
        return _Step(rewind=rewind, cb0=int(tokens[0]), acoustic=acoustic, tail=tail)


class BatchedStream(Concealer):
    """One stream of a BatchedLMConcealer behind the ``Concealer`` interface (writes every member).

    ``prepare()`` only queues; the owner calls ``BatchedLMConcealer.run()`` once
    per tick after every stream was served. The LM belongs to the owner:
    ``close()`` leaves it alone, and stage timings are the owner's ``step_log``.
    """

    def __init__(self, owner: BatchedLMConcealer, stream: int) -> None:
        self.owner = owner
        self.index = stream

    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        self.owner.observe(self.index, index, tokens)

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        return self.owner.conceal(self.index, index, known, codebooks)

    def prepare(self, index: int | None = None, known: Sequence[int] = ()) -> None:
        self.owner.prepare(self.index, index, known)

    def observe_late(self, index: int, tokens: tuple[int, ...]) -> bool:
        return self.owner.observe_late(self.index, index, tokens)

    def reset(self, next_index: int = 0) -> None:
        self.owner.reset(self.index, next_index)

    def close(self) -> None:
        """Nothing to release: the owner holds the LM and its streaming state."""

    @property
    def timings_ms(self) -> Mapping[str, Sequence[float]]:
        """No per-stream timings (the owner logs each batched step in ``step_log``)."""
        return {}
