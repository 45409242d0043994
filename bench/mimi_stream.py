"""Per-frame streaming Mimi encode/decode time (full-size, moshi's own config).

Random weights have the real compute cost (79.3 M parameters). Prints median
and p95 per 80 ms frame and real-time factors (time / 80 ms) for encode,
decode and both (one endpoint of a call does both).

    .venv/bin/python bench/mimi_stream.py [--threads 2] [--frames 100] [--codebooks 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

FRAME = 1920
FRAME_MS = 80.0


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"median {np.median(a):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  RTF {np.median(a) / FRAME_MS:.2f}"


def run_once(mimi: torch.nn.Module, frames: int, codebooks: int, warmup: int = 5) -> tuple[list[float], list[float]]:
    from moshi.models import loaders  # noqa: F401  (keeps import cost out of timings)

    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(1, 1, FRAME * (frames + warmup), generator=gen) * 0.1
    enc_ms: list[float] = []
    dec_ms: list[float] = []
    mimi.set_num_codebooks(codebooks)
    with torch.inference_mode(), mimi.streaming(1):
        for i in range(frames + warmup):
            x = audio[:, :, i * FRAME : (i + 1) * FRAME]
            t0 = time.perf_counter()
            codes = mimi.encode(x)
            t1 = time.perf_counter()
            mimi.decode(codes)
            t2 = time.perf_counter()
            if i >= warmup:
                enc_ms.append((t1 - t0) * 1e3)
                dec_ms.append((t2 - t1) * 1e3)
    return enc_ms, dec_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--codebooks", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from moshi.models import loaders

    mimi = loaders.get_mimi(None, device="cpu")
    params = sum(p.numel() for p in mimi.parameters()) / 1e6
    print(f"full-size Mimi, random weights ({params:.1f} M params), {args.threads} threads, "
          f"{args.codebooks} codebooks, {args.frames} frames x {args.runs} runs, torch {torch.__version__}")
    all_enc: list[float] = []
    all_dec: list[float] = []
    for r in range(args.runs):
        enc, dec = run_once(mimi, args.frames, args.codebooks)
        both = [a + b for a, b in zip(enc, dec)]
        print(f"run {r + 1}: encode {_stats(enc)} | decode {_stats(dec)} | both {_stats(both)}")
        all_enc += enc
        all_dec += dec
    print(f"all  : encode {_stats(all_enc)}")
    print(f"all  : decode {_stats(all_dec)}")
    print(f"all  : both   {_stats([a + b for a, b in zip(all_enc, all_dec)])}")


if __name__ == "__main__":
    main()
