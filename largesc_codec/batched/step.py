"""LMStepper for N independent streams: masked steps, per-stream rewind and reset.

Theory of operation. moshi keeps one counter per batch item everywhere that
matters (LMGen ``offsets``, attention ``offset``, transformer ``offsets``,
``RingKVCache.end_offset``) and honours an execution mask: a stream whose mask
bit is False keeps its counters and token cache through a step. Three gaps are
closed here so that every stream behaves exactly as if it ran alone:

- Masked steps still write keys/values of the idle stream into its ring slot
  ``end_offset % capacity`` (the slot of its next position, holding the position
  ``capacity`` steps back). Harmless until that stream rewinds, because the
  rewound query attends to that old position again. The slot is saved before
  each step and put back for idle streams.
- ``LMStepper.rewind`` moves every stream. ``rewind_streams`` takes one count per
  stream and subtracts it from each per-stream counter.
- Past the ring wrap an undone step has overwritten the oldest position the
  redone step still attends to. Each executed step's overwritten slot is kept
  (``depth`` = LMGen's rewind limit, 2 for Moshi) and put back on rewind, so
  rewinds stay exact after 3000 steps, too (plain LMStepper is exact there only
  for one-step rewinds).

Token-cache reads and writes take a stream index; ``reset_streams`` restarts
some streams (moshi's ``reset_streaming(mask)``) while the others go on.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from largesc_codec.neural.lmstep import LMStepper


class BatchedStepper(LMStepper):
    """LMStepper whose steps, rewinds, reads and writes address single streams."""

    def __init__(self, lm: Any, batch_size: int, greedy: bool = True, temp: float = 0.8, top_k: int = 250) -> None:
        super().__init__(lm, batch_size=batch_size, greedy=greedy, temp=temp, top_k=top_k)
        states = [st for st in lm.get_streaming_state().values() if st is not None]
        self._counters = [
            val for st in states for name in ("offset", "offsets")
            if isinstance(val := getattr(st, name, None), torch.Tensor)
        ]
        self._caches = [st.kv_cache for st in states if getattr(st, "kv_cache", None) is not None]
        for c in self._caches:
            if not c.respect_exec_mask:
                raise ValueError("the LM's attention caches must keep one offset per stream")
        gen_state = self.gen_state
        self.depth = int(gen_state.cache.shape[2]) - 1
        dev = lm.device
        self._ar = torch.arange(batch_size, device=dev)
        # history[i][j, b]: the slot contents (2, heads, dim) that stream b's j-th step overwrote.
        self._history = [
            torch.zeros((self.depth, batch_size, 2, c.cache.shape[2], c.cache.shape[4]), dtype=c.cache.dtype, device=dev)
            for c in self._caches
        ]
        self._executed = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self._rewindable = torch.zeros(batch_size, dtype=torch.long, device=dev)

    def steps_of(self, stream: int) -> int:
        """Steps stream ``stream`` has taken since its last reset (its LMGen offset)."""
        return int(self.gen_state.offsets[stream])

    @torch.no_grad()
    def step_masked(self, forced: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One batched step for the streams where ``mask`` (bool [B]) is True.

        ``forced``: long [B, 8], UNFORCED = sample. Returns long [B, 8]: per
        stream, the audio tokens it just wrote (rows of idle streams are stale).
        """
        mask = mask.to(self._ar.device)
        saved = [c.cache[:, self._ar, :, c.end_offset % c.capacity, :].clone() for c in self._caches]
        self.gen.set_exec_mask(mask)
        self._forced = forced.to(self.lm.device)
        self.gen.step(self._user)
        idle = ~mask
        if bool(idle.any()):
            ib = self._ar[idle]
            for c, s in zip(self._caches, saved):
                c.cache[:, ib, :, c.end_offset[ib] % c.capacity, :] = s[ib]
        ex = self._ar[mask]
        slot = self._executed[ex] % self.depth
        for hist, s in zip(self._history, saved):
            hist[slot, ex] = s[ex]
        self._executed[ex] += 1
        self._rewindable[ex] = torch.clamp(self._rewindable[ex] + 1, max=self.depth)
        state = self.gen_state
        pos = state.offsets % state.cache.shape[2]
        return state.cache[self._ar, 1 : self.dep_q + 1, pos].clone()

    def rewind_streams(self, ks: torch.Tensor) -> None:
        """Undo the last ``ks[b]`` steps of each stream b exactly (long [B], 0 = leave alone)."""
        ks = ks.to(self._ar.device)
        if bool((ks < 0).any()) or bool((ks > self._rewindable).any()):
            raise ValueError(f"cannot rewind {ks.tolist()} steps: at most {self._rewindable.tolist()} here")
        for j in range(1, int(ks.max()) + 1):
            b = self._ar[ks >= j]
            slot = (self._executed[b] - j) % self.depth
            for c, hist in zip(self._caches, self._history):
                c.cache[:, b, :, (c.end_offset[b] - j) % c.capacity, :] = hist[slot, b]
        self._executed -= ks
        self._rewindable -= ks
        self.gen_state.offsets -= ks
        for val in self._counters:
            val -= ks
        for c in self._caches:
            c.end_offset -= ks

    def reset_streams(self, mask: torch.Tensor) -> None:
        """Restart the streams where ``mask`` (bool [B]) is True; the others are untouched."""
        mask = mask.to(self._ar.device)
        self.gen.reset_streaming(mask)
        self._rewindable[mask] = 0

    def write_at(self, stream: int, steps_back: int, first_cb: int, tokens: Sequence[int]) -> None:
        """Overwrite audio codebooks first_cb.. of ``stream`` at its position ``steps_back`` steps ago."""
        state = self.gen_state
        pos = (int(state.offsets[stream]) - steps_back) % state.cache.shape[2]
        vals = torch.tensor(list(tokens), dtype=torch.long, device=state.cache.device)
        state.cache[stream, 1 + first_cb : 1 + first_cb + len(vals), pos] = vals

    def read_at(self, stream: int, steps_back: int) -> list[int]:
        """The audio tokens (8) of ``stream`` at its position written ``steps_back`` steps ago."""
        state = self.gen_state
        pos = (int(state.offsets[stream]) - steps_back) % state.cache.shape[2]
        return [int(t) for t in state.cache[stream, 1 : 1 + self.dep_q, pos]]

    def state_bytes(self) -> int:
        """Bytes held in streaming tensors (LM caches, counters, rewind history): constant in time."""
        gen_state = self.gen_state
        total = gen_state.cache.numel() * gen_state.cache.element_size()
        total += sum(c.cache.numel() * c.cache.element_size() for c in self._caches)
        total += sum(h.numel() * h.element_size() for h in self._history)
        return total
