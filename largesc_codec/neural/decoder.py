"""Streaming Mimi decoder: one token column (any leading codebooks) in, 80 ms out."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import torch

from largesc_codec.fast.mimi import Acceleration, accelerate, resolve_precision
from largesc_codec.types import CARDINALITY, FRAME_SAMPLES


class FrameDecoder(Protocol):
    """What a receiver needs: one frame's tokens in, 80 ms of PCM out (``MimiDecoder``, a batch row)."""

    def decode(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray: ...


class MimiDecoder:
    """Owns one Mimi copy in streaming mode (batch 1) and decodes frame by frame.

    Frames may carry different numbers of codebooks (1..total): the quantiser
    sums the given residual levels, so fewer codebooks means coarser audio, not
    a broken stream. ``fast`` and ``precision`` as for ``MimiEncoder``.
    """

    def __init__(self, mimi: Any, *, fast: bool = True, precision: str = "fp32") -> None:
        resolve_precision(precision)
        self.acceleration: Acceleration | None = accelerate(mimi, precision, side="decode") if fast else None
        self._mimi = mimi
        self._total = int(mimi.total_codebooks)
        self._device = next(mimi.parameters()).device
        # Decoding more codebooks than the active count needs the full quantiser.
        self._mimi.set_num_codebooks(self._total)
        self._mimi.streaming_forever(1)
        self.decode(np.zeros(self._total, np.int64))  # first step of a new copy is slow: as MimiEncoder
        self.reset()

    def decode(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
        """Tokens of codebooks 0..k-1 (1 <= k <= 32) -> float32 PCM (1920,) at 24 kHz."""
        arr = np.asarray(tokens, dtype=np.int64)
        if arr.ndim != 1 or not 1 <= len(arr) <= self._total:
            raise ValueError(f"decode takes 1..{self._total} tokens of one frame, got shape {arr.shape}")
        if arr.min() < 0 or arr.max() >= CARDINALITY:
            raise ValueError(f"tokens must be in 0..{CARDINALITY - 1}, got {arr.min()}..{arr.max()}")
        codes = torch.from_numpy(arr).to(self._device).view(1, -1, 1)
        with torch.inference_mode():
            out = self._mimi.decode(codes)
        pcm = out[0, 0].float().cpu().numpy()
        if pcm.shape != (FRAME_SAMPLES,):
            raise RuntimeError(f"Mimi returned {pcm.shape} samples for one frame, expected {FRAME_SAMPLES}")
        return pcm

    def reset(self) -> None:
        """Forget the streaming state (new stream)."""
        with torch.inference_mode():  # as MimiEncoder.reset
            self._mimi.reset_streaming()
