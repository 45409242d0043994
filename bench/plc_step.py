"""Per-frame LM concealment cost: speculative prepare, update and the deadline path.

Small LM (the `largesc make-test-weights` config) on CPU by default; with
--full, moshi's own 7B LM config with random weights on the GPU (bf16) when
one is present. Prints median and p95 in ms per 80 ms frame for:
  prepare    all LM work off the deadline path, once per played frame, run
             while that frame plays: update + speculate
  update     committing the frame just played to the LM context: for a real
             frame, rewind + the redo step with its tokens forced; for a lost
             one, token-cache writes only (no LM step)
  speculate  the speculative LM step that predicts the next frame
  conceal    the work at the playout deadline for a lost frame (no LM step)
The receiver skips the redo when the next frame's copy was already in the
jitter buffer at prepare time (the speculation is then conditioned on it);
this benchmark prepares blind, the worst case: two LM steps per real frame.

    .venv/bin/python bench/plc_step.py [--frames 200] [--loss 0.2] [--threads 2] [--full]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np
import torch


def _pct(v: list[float]) -> str:
    a = np.asarray(v)
    if a.size == 0:
        return "no samples (n=0)"
    return f"median {np.median(a):7.2f} ms  p95 {np.percentile(a, 95):7.2f} ms  (n={len(a)})"


def build_lm(full: bool, device: str) -> torch.nn.Module:
    from moshi.models import loaders

    if full:
        return loaders.get_moshi_lm(None, device=device, dtype=torch.bfloat16)
    from largesc_codec.neural.model import load_models
    from largesc_codec.train.testweights import make_test_weights

    tmp = tempfile.mkdtemp(prefix="largesc-bench-")
    make_test_weights(tmp)
    return load_models(tmp, device=device).load_lm()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--loss", type=float, default=0.2, help="fraction of frames lost (uniform, seeded)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="moshi's full-size LM config (needs a GPU)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.full and device == "cpu":
        print("--full needs a GPU: none here (torch.cuda.is_available() is False); nothing measured")
        return 2
    from largesc_codec.neural.lm_concealer import LMConcealer

    lm = build_lm(args.full, device if args.full else "cpu")
    params = sum(p.numel() for p in lm.parameters()) / 1e6
    where = torch.cuda.get_device_name() if args.full else f"CPU, {args.threads} threads"
    print(f"LM {'full-size' if args.full else 'small'} ({params:.1f} M params) on {where}, "
          f"{args.frames} frames x {args.runs} runs, {args.loss:.0%} uniform loss")
    rng = np.random.default_rng(0)
    totals: dict[str, list[float]] = {"prepare": [], "update": [], "speculate": [], "conceal": []}
    for r in range(args.runs):
        c = LMConcealer(lm)
        for i in range(args.frames):
            if rng.random() < args.loss:
                c.conceal(i, (), 8)
            else:
                c.observe(i, tuple(int(x) for x in rng.integers(0, 2048, 8)))
            if args.full:
                torch.cuda.synchronize()
            c.prepare()
        c.close()
        for k in totals:
            totals[k] += list(c.timings_ms[k])[5:]
        print(f"run {r + 1}: prepare {_pct(list(c.timings_ms['prepare'])[5:])}  "
              f"update {_pct(list(c.timings_ms['update'])[5:])}")
    for k, v in totals.items():
        print(f"all  {k:<9} {_pct(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
