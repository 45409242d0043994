"""A Moshi ``LMGen`` driven one frame at a time, with forced tokens and rewind.

Moshi's LM generates 8 audio codebooks per step, the acoustic ones delayed one
step behind the semantic one. With this codec's frame ``n``:

    step o reads cache position o  = (text, cb0 of frame o-1, cb1..7 of frame o-2)
    step o writes cache position o+1 = (text, cb0 of frame o,   cb1..7 of frame o-1)

``LMStepper`` runs those steps with any subset of the written audio tokens
forced to known values (-1 = sample), exposes the cache so a known cb0 can be
written after the fact, and can rewind the last k steps exactly: every
streaming counter (LMGen offsets, attention offsets, ring KV-cache end offsets)
goes back by k, so the next step overwrites the same slots with the same
positions. That is what makes speculation cheap: predict ahead, and if the
real tokens arrive, rewind one step and redo it with the truth.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

UNFORCED = -1


class LMStepper:
    """Owns an LMGen in streaming mode for ``batch_size`` independent streams."""

    def __init__(self, lm: Any, batch_size: int = 1, greedy: bool = True, temp: float = 0.8, top_k: int = 250) -> None:
        from moshi.models.lm import LMGen

        self.lm = lm
        self.gen = LMGen(lm, use_sampling=not greedy, temp=temp, top_k=top_k, temp_text=temp)
        zero = int(lm.zero_token_id)

        def erase_text(text: torch.Tensor) -> None:
            text.fill_(zero)

        # No transcript rides with the audio: the text stream stays erased, as in fine-tuning.
        self.gen.on_text_hook = erase_text
        self.dep_q = int(lm.dep_q)
        self.batch_size = batch_size
        self._streaming = self.gen.streaming(batch_size)
        # Replace the depformer call with one that honours per-codebook forcing.
        self.gen_state.graphed_depth = self._depformer_step
        self._forced: torch.Tensor | None = None
        self._user = torch.full(
            (batch_size, lm.num_codebooks - self.dep_q - 1, 1), lm.zero_token_id, dtype=torch.long, device=lm.device
        )

    @property
    def gen_state(self) -> Any:
        """LMGen's streaming state (token cache, per-stream offsets, exec mask)."""
        state = self.gen._streaming_state
        if state is None:
            raise RuntimeError("the stepper was closed")
        return state

    @property
    def steps(self) -> int:
        """Steps taken so far (the LMGen offset)."""
        return int(self.gen_state.offset_cpu)

    @torch.no_grad()
    def step(self, forced: torch.Tensor) -> torch.Tensor:
        """One LM step. ``forced``: long [B, 8] audio tokens to write (UNFORCED = sample).

        Returns the written audio tokens [B, 8]: cb0 of the next frame, then
        cb1..7 of the current one (see the module header for the alignment).
        """
        self._forced = forced.to(self.lm.device)
        self.gen.step(self._user)
        state = self.gen_state
        pos = int(state.offsets[0]) % state.cache.shape[2]
        return state.cache[:, 1 : self.dep_q + 1, pos].clone()

    def write_audio(self, steps_back: int, first_cb: int, tokens: Sequence[int]) -> None:
        """Overwrite audio codebooks first_cb.. at the position written ``steps_back`` steps ago."""
        state = self.gen_state
        pos = (int(state.offsets[0]) - steps_back) % state.cache.shape[2]
        for j, tok in enumerate(tokens):
            state.cache[:, 1 + first_cb + j, pos] = int(tok)

    def read_audio(self, steps_back: int) -> list[int]:
        """The audio tokens at the position written ``steps_back`` steps ago (batch item 0)."""
        state = self.gen_state
        pos = (int(state.offsets[0]) - steps_back) % state.cache.shape[2]
        return [int(t) for t in state.cache[0, 1 : 1 + self.dep_q, pos]]

    def _kv_capacity(self) -> int:
        caps = [st.kv_cache.capacity for st in self.lm.get_streaming_state().values()
                if st is not None and getattr(st, "kv_cache", None) is not None]
        return min(caps) if caps else 1 << 62

    def rewind(self, k: int) -> None:
        """Undo the last ``k`` steps exactly (counters only; slots get overwritten)."""
        if k <= 0:
            return
        gen_state = self.gen_state
        # LMGen's token cache holds max_delay + 2 positions; deeper rewinds would
        # need positions that later steps already overwrote.
        limit = min(self.steps, gen_state.cache.shape[2] - 1)
        # Once the attention ring has wrapped, each undone step overwrote a slot
        # still inside the window of the step before it: only one step is exact.
        if self.steps > self._kv_capacity():
            limit = min(limit, 1)
        if k > limit:
            raise ValueError(f"cannot rewind {k} steps: at most {limit} here")
        gen_state.offsets -= k
        gen_state.offset_cpu -= k
        for st in self.lm.get_streaming_state().values():
            if st is None:
                continue
            for name in ("offset", "offsets"):
                val = getattr(st, name, None)
                if isinstance(val, torch.Tensor):
                    val -= k
            if hasattr(st, "offset_cpu"):
                st.offset_cpu -= k
            cache = getattr(st, "kv_cache", None)
            if cache is not None:
                cache.end_offset -= k

    def close(self) -> None:
        """Leave streaming mode so the LM can be used by another stepper or trained."""
        self._streaming.close()

    def reset(self) -> None:
        """Restart the stream (counters and caches back to step 0)."""
        self.gen.reset_streaming()
        self.gen_state.graphed_depth = self._depformer_step

    def _depformer_step(self, text_token: torch.Tensor, transformer_out: torch.Tensor) -> torch.Tensor:
        from moshi.utils.sampling import sample_token

        lm = self.lm
        forced = self._forced
        prev = text_token
        out: list[torch.Tensor] = []
        with lm.depformer.streaming(text_token.shape[0]):
            for cb in range(self.dep_q):
                want = None if forced is None else forced[:, cb]
                if want is not None and bool((want >= 0).all()) and cb == self.dep_q - 1:
                    nxt = want  # last codebook forced: its logits are never needed
                else:
                    logits = lm.forward_depformer(cb, prev[:, None, None], transformer_out)
                    sampled = sample_token(logits.float(), self.gen.use_sampling, self.gen.temp, self.gen.top_k)[:, 0, 0]
                    nxt = sampled if want is None else torch.where(want >= 0, want, sampled)
                out.append(nxt)
                prev = nxt
        return torch.stack(out, dim=1)
