"""Batched Mimi for the whole process: every call's encode and decode steps as batched streaming steps.

Theory of operation. Each call's codec thread keeps its own clocks, jitter
buffer, controller and concealer; only its Mimi steps come here. ``attach``
gives a call one row of a ``BatchedMimiEncoder`` and a ``BatchedMimiDecoder``
(reset when the call joins, moshi's reset mask; idle rows are masked out and
do not move) as two handles with ``MimiEncoder``'s and ``MimiDecoder``'s
interfaces: ``encode``/``decode`` hand one frame to a lane and wait
for its result. A call leaving frees its row; the others go on untouched.

Two threads (lanes) run rounds, one of encodes and one of decodes, each on
its own Mimi copy: on two cores an encode round and a decode round run side
by side. A round starts with its lane's first request and runs as soon as every
call that used the lane in the last ``EXPECT_S`` has a request in it, or
``GATHER_MS`` after that first request, whichever comes first: all its
requests as one batched step. Masked rows cost as much compute as live
ones, so a round that runs half full wastes half a step: waiting a little
for the late calls is cheaper, and a machine that falls behind pulls its
calls into the same rounds instead of apart.

So that the requests of different calls meet, calls run their clocks on one
process-wide grid: send ticks on the 80 ms grid (``align``: the first send
tick of a call is the grid tick at or before its start), pulls on multiples
of ``PULL_QUANTUM_MS`` past it (a pull waits at most that much longer than
its frame needs: the price, in mouth-to-ear delay, of sharing a step).

A step that fails fails every request of its round (each call's codec then
stops with that error; the lane goes on with the next round).
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from largesc_codec.types import CARDINALITY, FRAME_MS, FRAME_SAMPLES

GATHER_MS = 30.0  # a round waits at most this long after its first request for the other calls' ones
EXPECT_S = 0.2  # ... from calls whose last request to the lane came this recently (an idle call is not waited for)
PULL_QUANTUM_MS = 80.0  # pull phases are multiples of this past the send grid


@dataclass
class _Lane:
    """One kind of step (encode or decode) with its thread and the requests waiting for its next round."""

    name: str
    step: Callable[[list[Any]], Sequence[Any]]  # one entry per row (None: idle) -> one result per row
    reset: Callable[[int], None]
    pending: dict[int, tuple[Any, Future[Any]]] = field(default_factory=dict)
    resets: set[int] = field(default_factory=set)
    opened_at: float | None = None  # time.monotonic() of the round's first request
    last: dict[int, float] = field(default_factory=dict)  # row -> when its last round ran
    steps: int = 0


class MimiBatch:
    """Batched Mimi for up to ``streams`` calls at once (module docstring).

    Encode and decode steps run on two threads (lanes) of their own, one model
    copy each: an encode round never waits for a decode round, and on two cores
    the two run side by side.

    Args:
        encode_mimi, decode_mimi: two Mimi copies this batch owns (``Models.new_mimi()``).
        streams: most calls at once (rows).
        precision: the fast path's arithmetic (``largesc_codec.types.MIMI_PRECISIONS``).
    """

    def __init__(self, encode_mimi: Any, decode_mimi: Any, streams: int, precision: str = "fp32") -> None:
        from largesc_codec.batched.mimi import BatchedMimiDecoder, BatchedMimiEncoder

        self.streams = streams
        self.encoder = BatchedMimiEncoder(encode_mimi, streams, precision=precision)
        self.decoder = BatchedMimiDecoder(decode_mimi, streams, precision=precision)
        self.total_codebooks = int(decode_mimi.total_codebooks)
        self.grid_ms = time.monotonic() * 1000.0
        self.pull_quantum_ms = PULL_QUANTUM_MS
        self._cond = threading.Condition()
        self._free = list(range(streams))[::-1]
        self._attached: set[int] = set()
        self._encode = _Lane("encode", self.encoder.encode, self.encoder.reset)
        self._decode = _Lane("decode", lambda rows: list(self.decoder.decode(rows)), self.decoder.reset)
        for lane in (self._encode, self._decode):
            threading.Thread(target=self._main, args=(lane,), name=f"largesc-batch-{lane.name}", daemon=True).start()

    @property
    def steps_encode(self) -> int:
        return self._encode.steps

    @property
    def steps_decode(self) -> int:
        return self._decode.steps

    # -- calls ------------------------------------------------------------------------------
    def attach(self, codebooks: int) -> tuple["BatchEncoder", "BatchDecoder"]:
        """A free row for one call: its encoder (``codebooks`` per frame) and decoder handles.

        Raises RuntimeError when all rows are taken (the agent's ``--max-calls`` keeps calls below it).
        """
        if not 1 <= codebooks <= self.total_codebooks:
            raise ValueError(f"codebooks must be in 1..{self.total_codebooks}, got {codebooks}")
        with self._cond:
            if not self._free:
                raise RuntimeError(f"all {self.streams} batch rows are in use: lower the calls at once (--max-calls)")
            row = self._free.pop()
            self._attached.add(row)
            for lane in (self._encode, self._decode):
                lane.resets.add(row)  # done by the lane's thread before the row's first step
        return BatchEncoder(self, row, codebooks), BatchDecoder(self, row)

    def detach(self, row: int) -> None:
        """Free a call's row (its handles must not be used again)."""
        with self._cond:
            if row in self._attached:
                self._attached.discard(row)
                self._free.append(row)
                self._cond.notify_all()  # a round may now have every call it expects

    def align(self, start_ms: float) -> float:
        """The grid tick at or before ``start_ms`` (monotonic ms): a call's send tick 0."""
        return self.grid_ms + math.floor((start_ms - self.grid_ms) / FRAME_MS) * FRAME_MS

    def _submit(self, lane: _Lane, row: int, item: Any) -> Any:
        done: Future[Any] = Future()
        with self._cond:
            if lane.opened_at is None:
                lane.opened_at = time.monotonic()
            lane.pending[row] = (item, done)
            self._cond.notify_all()
        return done.result()

    # -- lane threads -----------------------------------------------------------------------
    def _main(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                while True:
                    if lane.opened_at is not None:
                        now = time.monotonic()
                        left = lane.opened_at + GATHER_MS / 1000.0 - now
                        expected = {r for r in self._attached if now - lane.last.get(r, -1e9) < EXPECT_S}
                        if left <= 0 or expected <= set(lane.pending):
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                pending, resets = lane.pending, lane.resets
                lane.pending, lane.resets, lane.opened_at = {}, set(), None
                for row in pending:
                    lane.last[row] = now
            self._run(lane, pending, resets)

    def _run(self, lane: _Lane, pending: dict[int, tuple[Any, Future[Any]]], resets: set[int]) -> None:
        try:
            for row in resets:  # joined since the last round
                lane.reset(row)
            rows: list[Any] = [None] * self.streams
            for row, (item, _) in pending.items():
                rows[row] = item
            out = lane.step(rows)
            for row, (_, done) in pending.items():
                done.set_result(out[row])
            lane.steps += 1
        except Exception as exc:  # every call of this round sees the failure
            for _, done in pending.values():
                if not done.done():
                    done.set_exception(exc)


class BatchEncoder:
    """One call's encoder on a ``MimiBatch`` row (``MimiEncoder``'s interface)."""

    def __init__(self, batch: MimiBatch, row: int, codebooks: int) -> None:
        self.batch, self.row, self.num_codebooks = batch, row, codebooks

    def encode(self, frame: np.ndarray) -> np.ndarray:
        """float32 (1920,) at 24 kHz -> int64 tokens (num_codebooks,), computed in the next batched step."""
        pcm = np.asarray(frame, dtype=np.float32)
        if pcm.shape != (FRAME_SAMPLES,):  # here, not in the step: one call's mistake must not fail the others
            raise ValueError(f"the encoder takes exactly one frame of shape ({FRAME_SAMPLES},), got {pcm.shape}")
        return self.batch._submit(self.batch._encode, self.row, (pcm, self.num_codebooks))  # type: ignore[no-any-return]


class BatchDecoder:
    """One call's decoder on a ``MimiBatch`` row (``MimiDecoder``'s interface)."""

    def __init__(self, batch: MimiBatch, row: int) -> None:
        self.batch, self.row = batch, row

    def decode(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
        """Tokens of codebooks 0..k-1 -> float32 PCM (1920,) at 24 kHz, computed in the next batched step."""
        arr = np.asarray(tokens, dtype=np.int64)
        if arr.ndim != 1 or not 1 <= len(arr) <= self.batch.total_codebooks or arr.min() < 0 or arr.max() >= CARDINALITY:
            raise ValueError(f"decode takes 1..{self.batch.total_codebooks} tokens in 0..{CARDINALITY - 1}, "
                             f"got {arr.tolist()}")
        pcm = self.batch._submit(self.batch._decode, self.row, arr.tolist())
        return np.array(pcm, dtype=np.float32)  # a copy: the batch's output rows are not ours
