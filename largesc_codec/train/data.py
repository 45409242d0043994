"""Training data for LoRA concealment fine-tuning: Mimi tokens and seeded loss masks.

Pure data preparation (no LM): speech files -> token arrays, loss masks from
the channel's seeded loss models, and the checks that keep a run from
training on nothing (a regime that drops no frames, files too short for a
training window).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from numpy.typing import NDArray

Tokens = NDArray[np.int64]  # (frames, codebooks)
Mask = NDArray[np.bool_]  # (frames,) True = lost

# Draws used to tell whether a loss model drops anything at all.
_PROBE_DRAWS = 100_000


def encode_files(paths: Iterable[str | Path], models: Any, codebooks: int = 8) -> list[Tokens]:
    """Speech files -> token arrays int64 (frames, codebooks), batch Mimi encoding.

    ``paths`` may be any iterable (a tqdm bar over the file list, for progress).
    """
    from largesc_codec.neural.framing import frames_from_file

    mimi = models.new_mimi()
    mimi.set_num_codebooks(codebooks)
    out = []
    for p in paths:
        pcm = np.concatenate(frames_from_file(p))
        with torch.inference_mode():
            codes = mimi.encode(torch.from_numpy(pcm).view(1, 1, -1).to(models.device))
        out.append(codes[0].T.cpu().numpy().astype(np.int64))
    return out


def loss_mask(frames: int, channel: str, seed: int) -> Mask:
    """bool (frames,): True where the seeded loss model drops the frame's packet."""
    from largesc_codec.sim.channel import parse_channel

    model = parse_channel(channel, seed=seed)
    return np.array([model.lost() for _ in range(frames)], dtype=bool)


def check_regime(channel: str) -> None:
    """ValueError unless ``channel`` is a valid spec whose loss model drops frames.

    Training on a regime that never loses a frame would save an adapter that
    learnt nothing; testing on one would measure nothing.
    """
    if not loss_mask(_PROBE_DRAWS, channel, seed=0).any():
        raise ValueError(
            f"--channel {channel} drops no frames (none in {_PROBE_DRAWS} draws): fine-tuning learns from "
            "lost frames; give a lossy regime such as uniform:0.2 or ge:0.1,0.3"
        )


def split_by_length(seqs: list[Tokens], min_frames: int) -> tuple[list[int], list[int]]:
    """Indices of sequences with at least ``min_frames`` frames, and of the shorter ones."""
    keep = [i for i, s in enumerate(seqs) if len(s) >= min_frames]
    short = [i for i, s in enumerate(seqs) if len(s) < min_frames]
    return keep, short
