"""Streaming Mimi encoder: exactly one 80 ms frame in, one token column out."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from largesc_codec.fast.mimi import Acceleration, accelerate, resolve_precision
from largesc_codec.types import FRAME_SAMPLES, MAX_CODEBOOKS


class FrameEncoder(Protocol):
    """What a sender needs: one 80 ms frame in, ``num_codebooks`` tokens out (``MimiEncoder``, a batch row)."""

    num_codebooks: int

    def encode(self, frame: np.ndarray) -> np.ndarray: ...


class MimiEncoder:
    """Owns one Mimi copy in streaming mode (batch 1) and encodes frame by frame.

    Args:
        mimi: a MimiModel this encoder owns (``Models.new_mimi()``).
        num_codebooks: codebooks produced per frame (1..32); the first n are the
            same as when encoding with more (residual quantisation).
        fast: run the faster CPU path (fastmimi.py; same tokens as moshi's own
            code up to float rounding); False keeps moshi's modules untouched.
        precision: ``fp32`` (default), ``bf16``, ``fp16`` or ``auto`` for the fast path;
            bf16 and fp16 (weights) are faster and change some tokens (docs/performance.md).
    """

    def __init__(self, mimi: Any, num_codebooks: int = 8, *, fast: bool = True, precision: str = "fp32") -> None:
        total = int(mimi.total_codebooks)
        if not 1 <= num_codebooks <= min(total, MAX_CODEBOOKS):
            raise ValueError(f"num_codebooks must be in 1..{min(total, MAX_CODEBOOKS)}, got {num_codebooks}")
        resolve_precision(precision)  # a bad name fails here, fast or not
        self.num_codebooks = num_codebooks
        self.acceleration: Acceleration | None = accelerate(mimi, precision, side="encode") if fast else None
        self._mimi = mimi
        self._mimi.set_num_codebooks(num_codebooks)
        self._device = next(mimi.parameters()).device
        self._mimi.streaming_forever(1)
        # A new copy's first step costs ~3x a later one (state allocation, oneDNN
        # primitives): take it here, not on the first real frame of a call.
        self.encode(np.zeros(FRAME_SAMPLES, np.float32))
        self.reset()

    def encode(self, frame: np.ndarray) -> np.ndarray:
        """float32 (1920,) at 24 kHz -> int64 tokens (num_codebooks,), each in 0..2047."""
        pcm = np.asarray(frame, dtype=np.float32)
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(
                f"the encoder takes exactly one frame of shape ({FRAME_SAMPLES},), got {pcm.shape}; "
                "cut audio with largesc_codec.neural.framing.Framer first"
            )
        x = torch.from_numpy(pcm).to(self._device).view(1, 1, FRAME_SAMPLES)
        with torch.inference_mode():
            codes = self._mimi.encode(x)
        return codes[0, :, 0].cpu().numpy().astype(np.int64)

    def reset(self) -> None:
        """Forget the streaming state (new talker / new stream)."""
        # In inference mode: moshi replaces some state tensors inside it while encoding,
        # and such tensors only take in-place updates there.
        with torch.inference_mode():
            self._mimi.reset_streaming()
