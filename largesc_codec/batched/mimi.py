"""Mimi encoding and decoding for N concurrent streams, each in one batched streaming step.

Theory of operation. One Mimi copy runs in streaming mode with batch N (one
row per call). Every 80 ms tick each active stream brings one frame; idle
streams (no call, or a call on hold) are masked out with moshi's execution
mask, so their convolution and attention states do not move, and
``reset(stream)`` restarts one row (a new call) with moshi's reset mask.
Streams may carry different numbers of codebooks: each group is de-quantised
on its own (embedding sums, cheap); the upsampler, decoder transformer and
SEANet decoder (the expensive part) then run once for the whole batch.

On CPU the decoder runs the fast path (fastmimi.py) by default. Without it
(``fast=False``) a batch of one is slower than a batch of two: for batch 1
torch skips oneDNN for Mimi's 1-D (transposed) convolutions and takes its slow
reference kernels (``slow_conv_transpose2d``; measured 87 vs 66 ms CPU per
decode step, full-size Mimi, 1 thread), so one stream then runs as a batch of
two with a spare row that is always masked out.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from largesc_codec.fast.mimi import Acceleration, accelerate, resolve_precision
from largesc_codec.types import CARDINALITY, FRAME_SAMPLES


class _BatchedMimi:
    """One Mimi copy (one side accelerated) in streaming mode with a row per stream; resets one row."""

    def __init__(self, mimi: Any, streams: int, side: str, fast: bool, precision: str) -> None:
        if streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        resolve_precision(precision)
        self.acceleration: Acceleration | None = accelerate(mimi, precision, side=side) if fast else None
        self._mimi = mimi
        self.streams = streams
        self._total = int(mimi.total_codebooks)
        self._device = next(mimi.parameters()).device
        slow_batch1 = self._device.type == "cpu" and (self.acceleration is None or self.acceleration.precision == "stock")
        self._rows = max(streams, 2) if slow_batch1 else streams

    def reset(self, stream: int) -> None:
        """Restart one stream's state (new call); the others go on."""
        if not 0 <= stream < self.streams:
            raise ValueError(f"stream must be in 0..{self.streams - 1}, got {stream}")
        mask = torch.zeros(self._rows, dtype=torch.bool, device=self._device)
        mask[stream] = True
        with torch.inference_mode():  # as MimiEncoder.reset
            self._mimi.reset_streaming(mask)


class BatchedMimiDecoder(_BatchedMimi):
    """One Mimi copy in streaming mode with batch ``streams``; one frame per active stream per call.

    ``fast`` and ``precision`` as for ``MimiDecoder`` (the fast path keeps exec and reset masks).
    """

    def __init__(self, mimi: Any, streams: int, *, fast: bool = True, precision: str = "fp32") -> None:
        super().__init__(mimi, streams, "decode", fast, precision)
        # Decoding more codebooks than the active count needs the full quantiser.
        self._mimi.set_num_codebooks(self._total)
        self._mimi.streaming_forever(self._rows)
        self.decode([[0] * self._total] * streams)  # first step of a new copy is slow: as MimiEncoder
        with torch.inference_mode():
            self._mimi.reset_streaming()

    @torch.inference_mode()
    def decode(self, frames: Sequence[Sequence[int] | None]) -> np.ndarray:
        """One frame per stream: tokens of codebooks 0..k-1 (1 <= k <= 32), or None (stream idle).

        Returns float32 PCM [streams, 1920] at 24 kHz; rows of idle streams are zero
        and their decoder state does not move.
        """
        if len(frames) != self.streams:
            raise ValueError(f"decode takes one entry per stream ({self.streams}), got {len(frames)}")
        groups: dict[int, list[int]] = {}
        for b, f in enumerate(frames):
            if f is None:
                continue
            arr = np.asarray(f, dtype=np.int64)
            if arr.ndim != 1 or not 1 <= len(arr) <= self._total:
                raise ValueError(f"stream {b}: decode takes 1..{self._total} tokens of one frame, got shape {arr.shape}")
            if arr.min() < 0 or arr.max() >= CARDINALITY:
                raise ValueError(f"stream {b}: tokens must be in 0..{CARDINALITY - 1}, got {arr.min()}..{arr.max()}")
            groups.setdefault(len(arr), []).append(b)
        out = np.zeros((self.streams, FRAME_SAMPLES), dtype=np.float32)
        if not groups:
            return out
        mimi = self._mimi
        latents: list[torch.Tensor] = []
        rows: list[int] = []
        for k, members in groups.items():
            codes = torch.tensor([list(frames[b] or ()) for b in members], dtype=torch.long, device=self._device)
            latents.append(mimi.decode_latent(codes.view(len(members), k, 1)))
            rows += members
        active = torch.cat(latents)
        emb = active.new_zeros((self._rows,) + tuple(active.shape[1:]))
        emb[rows] = active
        live = [f is not None for f in frames]
        mask = torch.tensor(live + [False] * (self._rows - self.streams), device=self._device)
        mimi.set_exec_mask(mask)
        # The rest of MimiModel.decode (streaming branch), once for the whole batch.
        state = mimi._streaming_state
        emb = mimi._to_encoder_framerate(emb)
        if mimi.decoder_transformer is not None:
            (emb,) = state.graphed_tr_dec(emb)
        pcm = state.graphed_decoder(emb).clone()[: self.streams, 0].float().cpu().numpy()
        if pcm.shape != (self.streams, FRAME_SAMPLES):
            raise RuntimeError(f"Mimi returned {pcm.shape} samples, expected ({self.streams}, {FRAME_SAMPLES})")
        out[live] = pcm[live]
        return out


class BatchedMimiEncoder(_BatchedMimi):
    """One Mimi copy in streaming mode with batch ``streams``; one frame per active stream per call.

    Each stream keeps its own convolution and attention state (moshi's execution
    mask: an idle row does not move). ``encode`` produces the most codebooks any
    active stream asks for and cuts each row to its own count: residual
    quantisation makes the first n codebooks the same whatever the total.
    ``fast`` and ``precision`` as for ``MimiEncoder``.
    """

    def __init__(self, mimi: Any, streams: int, *, fast: bool = True, precision: str = "fp32") -> None:
        super().__init__(mimi, streams, "encode", fast, precision)
        self._mimi.streaming_forever(self._rows)
        silence = np.zeros(FRAME_SAMPLES, np.float32)
        self.encode([(silence, 1)] * streams)  # first step of a new copy is slow: as MimiEncoder
        with torch.inference_mode():
            self._mimi.reset_streaming()

    @torch.inference_mode()
    def encode(self, frames: Sequence[tuple[np.ndarray, int] | None]) -> list[np.ndarray | None]:
        """One entry per stream: (float32 PCM (1920,) at 24 kHz, codebooks wanted 1..32), or None (idle).

        Returns per stream int64 tokens (codebooks,) each in 0..2047, or None for an idle stream
        (whose encoder state did not move).
        """
        if len(frames) != self.streams:
            raise ValueError(f"encode takes one entry per stream ({self.streams}), got {len(frames)}")
        live = [f is not None for f in frames]
        if not any(live):
            return [None] * self.streams
        x = np.zeros((self._rows, 1, FRAME_SAMPLES), dtype=np.float32)
        most = 1
        for b, f in enumerate(frames):
            if f is None:
                continue
            pcm, wanted = np.asarray(f[0], dtype=np.float32), int(f[1])
            if pcm.shape != (FRAME_SAMPLES,):
                raise ValueError(f"stream {b}: the encoder takes one frame of shape ({FRAME_SAMPLES},), got {pcm.shape}")
            if not 1 <= wanted <= self._total:
                raise ValueError(f"stream {b}: codebooks must be in 1..{self._total}, got {wanted}")
            x[b, 0] = pcm
            most = max(most, wanted)
        mimi = self._mimi
        mimi.set_num_codebooks(most)
        mimi.set_exec_mask(torch.tensor(live + [False] * (self._rows - self.streams), device=self._device))
        codes = mimi.encode(torch.from_numpy(x).to(self._device)).cpu().numpy().astype(np.int64)
        return [codes[b, : int(f[1]), 0] if f is not None else None for b, f in enumerate(frames)]
