"""Long calls: memory stays bounded over a one-hour call (45,000 frames), faster than real time.

One call (default): the small LM's LMConcealer (the product path, batch 1) and
the small-test-weights Mimi decoder step every frame of a seeded loss trace;
frames are decoded, lost ones concealed first. The LM context (3000 steps)
wraps 15 times in an hour. Every --every frames it prints: process RSS and
peak RSS (VmHWM), the LM position, the bytes held in streaming tensors (LM and
Mimi), the number of live Python objects and of timing entries kept
(LMConcealer.timings_ms, a bounded window since a0fc0f3; trimmed every frame
here unless --keep-timings, which shows the window filling and stopping).
With --held P (default 0.5) the next frame, when it is not lost, is already
"in the jitter buffer" at prepare time for a share P of frames, so the
speculation is conditioned on it, as the receiver does (both paths run).

--streams N runs N calls through BatchedLMConcealer + BatchedMimiDecoder instead.
--per-call 1,2,4,8,16 runs a short call (--frames, default 300 there) with N
streams in a fresh process per N and prints the peak memory per additional call.

    .venv/bin/python bench/long_call.py [--frames 45000] [--every 5000] [--channel uniform:0.1]
        [--streams 1] [--keep-timings] [--threads 1] [--per-call 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch


def _status(key: str) -> float:
    """A /proc/self/status entry (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def streaming_bytes(module: Any) -> int:
    """Bytes in the tensors of a streaming module's state (incl. ring KV caches), batch included."""
    total = 0
    for st in module.get_streaming_state().values():
        if st is None:
            continue
        for val in list(vars(st).values()) + [getattr(getattr(st, "kv_cache", None), "cache", None)]:
            if isinstance(val, torch.Tensor):
                total += val.numel() * val.element_size()
    return total


def _trace(channel: str, streams: int, frames: int) -> np.ndarray:
    from largesc_codec.sim.channel import parse_channel

    return np.stack([parse_channel(channel, seed=s).losses(frames) for s in range(streams)])


def run_call(args: argparse.Namespace, weights: str) -> None:
    from largesc_codec.batched.lm import BatchedLMConcealer, BatchedMimiDecoder
    from largesc_codec.neural.decoder import MimiDecoder
    from largesc_codec.neural.lm_concealer import LMConcealer
    from largesc_codec.neural.model import load_models

    models = load_models(weights)
    lm = models.load_lm()
    n = args.streams
    lost = _trace(args.channel, n, args.frames)
    rng = np.random.default_rng(0)
    base_rss = _status("VmRSS")
    if n == 1 and not args.batched:
        lone = LMConcealer(lm)
        dec = MimiDecoder(models.new_mimi())
        lm_state, mimi_mod = lone.stepper.lm, dec._mimi
    else:
        bc = BatchedLMConcealer(lm, n)
        bdec = BatchedMimiDecoder(models.new_mimi(), n)
        lm_state, mimi_mod = bc.stepper.lm, bdec._mimi
    print(f"{n} call(s), {args.frames} frames ({args.frames * 0.08 / 60:.1f} min of audio), channel {args.channel} "
          f"(lost {lost.mean():.1%}), LM context {lm.transformer.layers[0].self_attn.context}, "
          f"RSS after loading {base_rss:.0f} MiB")
    print(f"{'frame':>6} {'wall s':>7} {'RSS MiB':>8} {'peak MiB':>8} {'LM pos':>7} {'LM state B':>11} "
          f"{'Mimi state B':>12} {'py objs':>8} {'timing entries':>14}")
    t0 = time.perf_counter()
    held_rng = np.random.default_rng(1)
    nxt = [tuple(int(x) for x in rng.integers(0, 2048, 8)) for _ in range(n)]
    for i in range(args.frames):
        toks, nxt = nxt, [tuple(int(x) for x in rng.integers(0, 2048, 8)) for _ in range(n)]
        # What the buffer holds of frame i + 1 at prepare time: its primary, or nothing.
        held = [(i + 1, nxt[s]) if i + 1 < args.frames and not lost[s, i + 1] and held_rng.random() < args.held
                else () for s in range(n)]
        if n == 1 and not args.batched:
            if lost[0, i]:
                toks[0] = lone.conceal(i, (), 8).tokens
            else:
                lone.observe(i, toks[0])
            dec.decode(toks[0])
            lone.prepare(*held[0])
            if not args.keep_timings:
                for v in lone.timings_ms.values():
                    v.clear()
        else:
            for s in range(n):
                if lost[s, i]:
                    toks[s] = bc.conceal(s, i, (), 8).tokens
                else:
                    bc.observe(s, i, toks[s])
                bc.prepare(s, *held[s])
            bdec.decode(toks)
            bc.run()
        if (i + 1) % args.every == 0 or i + 1 == args.frames:
            gc.collect()
            pos = lone.stepper.steps if n == 1 and not args.batched else bc.steps_of(0)
            entries = sum(len(v) for v in lone.timings_ms.values()) if n == 1 and not args.batched else len(bc.step_log)
            print(f"{i + 1:>6} {time.perf_counter() - t0:>7.0f} {_status('VmRSS'):>8.1f} {_status('VmHWM'):>8.1f} "
                  f"{pos:>7} {streaming_bytes(lm_state):>11} {streaming_bytes(mimi_mod):>12} "
                  f"{len(gc.get_objects()):>8} {entries:>14}", flush=True)
    print(f"MEM base={base_rss:.1f} peak={_status('VmHWM'):.1f} lm_state={streaming_bytes(lm_state)} "
          f"mimi_state={streaming_bytes(mimi_mod)}")


def per_call(args: argparse.Namespace, weights: str) -> None:
    """Fresh process per N: peak RSS over a short call, and its growth per added stream."""
    ns = [int(x) for x in args.per_call.split(",")]
    rows = []
    for n in ns:
        cmd = [sys.executable, __file__, "--weights", weights, "--streams", str(n), "--batched",
               "--frames", str(args.frames), "--every", str(args.frames), "--channel", args.channel,
               "--threads", str(args.threads), "--held", str(args.held)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = [x for x in out.splitlines() if x.startswith("MEM ")][-1]
        vals = dict(kv.split("=") for kv in line.split()[1:])
        rows.append((n, float(vals["base"]), float(vals["peak"]), int(vals["lm_state"]), int(vals["mimi_state"])))
    print(f"Peak memory of a {args.frames}-frame call, N streams batched (fresh process per N; small LM, small Mimi)")
    print(f"{'N':>3} {'RSS loaded MiB':>14} {'peak MiB':>9} {'peak-loaded':>11} {'LM state MiB':>12} {'Mimi state MiB':>14}")
    for n, base, peak, lm_b, mimi_b in rows:
        print(f"{n:>3} {base:>14.1f} {peak:>9.1f} {peak - base:>11.1f} {lm_b / 2**20:>12.2f} {mimi_b / 2**20:>14.2f}")
    if len(rows) > 1:
        n_arr = np.array([r[0] for r in rows], dtype=float)
        slope = np.polyfit(n_arr, np.array([r[2] - r[1] for r in rows]), 1)[0]
        state = (rows[-1][3] + rows[-1][4] - rows[0][3] - rows[0][4]) / (rows[-1][0] - rows[0][0]) / 2**20
        print(f"per additional call: peak RSS {slope:.2f} MiB (least-squares slope), streaming state {state:.2f} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None, help="45000 (one hour); 300 with --per-call")
    ap.add_argument("--every", type=int, default=5000)
    ap.add_argument("--channel", default="uniform:0.1", help="loss spec (largesc_codec.sim.channel), seeded per stream")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--batched", action="store_true", help="use the batched classes even for one stream")
    ap.add_argument("--keep-timings", action="store_true", help="leave LMConcealer.timings_ms untrimmed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--held", type=float, default=0.5, help="share of frames held before prepare (conditioned)")
    ap.add_argument("--per-call", default=None, help="comma list of N: peak memory per additional call")
    ap.add_argument("--weights", default=None, help="test-weights directory (made if absent)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.frames is None:
        args.frames = 300 if args.per_call else 45000
    weights = args.weights
    if weights is None:
        from largesc_codec.train.testweights import make_test_weights

        weights = str(make_test_weights(tempfile.mkdtemp(prefix="largesc-long-")))
    if args.per_call:
        per_call(args, weights)
    else:
        run_call(args, weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
