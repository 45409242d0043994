"""Many calls per machine: batched receiver (and sender) work for N concurrent streams.

Every 80 ms tick a machine with N calls does, for all of them at once:
  LM     BatchedLMConcealer.run(): a redo round (calls whose frame arrived) and
         a speculation round = two batched LM steps
  decode BatchedMimiDecoder.decode(): one batched Mimi streaming step (8 codebooks)
  encode one batched Mimi streaming encode, if the machine also sends
Mimi runs the fast CPU path (fastmimi.py, exact up to rounding) unless
--mimi-path stock; --precision bf16 gives it bf16 transformer weights.
Per N it prints the wall time (median, p95) and the CPU time of this process
(median) per batched LM step, LM tick, decode and encode step. The N values
are interleaved within each run, so load from other jobs hits them alike.

Capacity. Wall time is what a dedicated machine would see, but other jobs
share these CPUs, so the estimate uses CPU time: with --threads 1 the work of
one tick runs on one core, and a machine with C cores carries C processes
(one per core), each with the largest N whose CPU time per tick fits 80 ms.

Defaults: the small LM (`largesc make-test-weights` config) and full-size Mimi
(moshi's own config, random weights: the real compute cost) on CPU.
--full: moshi's full-size 7B LM and Mimi (bf16 LM) on the GPU when one is present.

    .venv/bin/python bench/many_calls.py [--streams 1,2,4,8,16] [--ticks 30] [--loss 0.1]
        [--threads 1] [--runs 3] [--mimi full|small|none] [--mimi-path fast|stock]
        [--precision fp32|bf16|auto] [--cores 2] [--full]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np
import torch

FRAME = 1920
TICK_MS = 80.0
WARM = 4


class Times:
    """Wall and process-CPU milliseconds of repeated calls."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time(self, fn: Callable[[], Any], device: str, keep: bool = True) -> None:
        _sync(device)
        w, c = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        if keep:
            self.wall.append((time.perf_counter() - w) * 1e3)
            self.cpu.append((time.process_time() - c) * 1e3)

    def row(self, per: float = 1.0) -> str:
        w, c = np.asarray(self.wall) / per, np.asarray(self.cpu) / per
        return f"{np.median(w):7.1f} {np.percentile(w, 95):7.1f} {np.median(c):7.1f}"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build(full: bool, mimi_kind: str, device: str) -> tuple[Any, Any]:
    """The LM to batch and the Mimi template (or None)."""
    from moshi.models import loaders

    if full:
        return loaders.get_moshi_lm(None, device=device, dtype=torch.bfloat16), loaders.get_mimi(None, device=device)
    from largesc_codec.neural.model import load_models
    from largesc_codec.train.testweights import make_test_weights

    models = load_models(str(make_test_weights(tempfile.mkdtemp(prefix="largesc-bench-"))), device=device)
    mimi = {"full": lambda: loaders.get_mimi(None, device=device), "small": models.new_mimi, "none": lambda: None}
    return models.load_lm(), mimi[mimi_kind]()


def lm_ticks(lm: Any, n: int, ticks: int, loss: float, seed: int, device: str, out: Times) -> int:
    """Time ``ticks`` LM ticks (run()) of N streams under seeded uniform loss; returns state bytes."""
    from largesc_codec.batched.lm import BatchedLMConcealer

    rng = np.random.default_rng(seed)
    c = BatchedLMConcealer(lm, n)
    for i in range(ticks + WARM):
        for s in range(n):
            if rng.random() < loss:
                c.conceal(s, i, (), 8)
            else:
                c.observe(s, i, tuple(int(x) for x in rng.integers(0, 2048, 8)))
            c.prepare(s)
        out.time(c.run, device, keep=i >= WARM)
    state = c.stepper.state_bytes()
    c.stepper.close()
    return state


def lone_ticks(lm: Any, ticks: int, loss: float, seed: int, out: Times) -> None:
    """Baseline: one lone LMConcealer's tick (observe/conceal + prepare); N in turn cost N times it."""
    from largesc_codec.neural.lm_concealer import LMConcealer

    rng = np.random.default_rng(seed)
    c = LMConcealer(lm)
    for i in range(ticks + WARM):
        lost = rng.random() < loss
        toks = tuple(int(x) for x in rng.integers(0, 2048, 8))

        def tick() -> None:
            if lost:
                c.conceal(i, (), 8)
            else:
                c.observe(i, toks)
            c.prepare()

        out.time(tick, "cpu", keep=i >= WARM)
    c.close()


def mimi_steps(mimi: Any, n: int, steps: int, device: str, dec_t: Times, enc_t: Times,
               fast: bool = True, precision: str = "fp32") -> None:
    """Time batched streaming decode (8 codebooks) and encode steps for N streams."""
    from largesc_codec.batched.lm import BatchedMimiDecoder
    from largesc_codec.fast.mimi import accelerate

    gen = torch.Generator().manual_seed(n)
    enc = copy.deepcopy(mimi)
    if fast:
        accelerate(enc, precision, side="encode")
    dec = BatchedMimiDecoder(copy.deepcopy(mimi), n, fast=fast, precision=precision)
    enc.set_num_codebooks(8)
    with torch.inference_mode(), enc.streaming(n):
        for i in range(steps + WARM):
            frames = [tuple(int(x) for x in torch.randint(0, 2048, (8,), generator=gen)) for _ in range(n)]
            pcm = (torch.randn(n, 1, FRAME, generator=gen) * 0.1).to(device)
            dec_t.time(lambda: dec.decode(frames), device, keep=i >= WARM)
            enc_t.time(lambda: enc.encode(pcm), device, keep=i >= WARM)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,2,4,8,16")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--loss", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mimi", choices=("full", "small", "none"), default="full")
    ap.add_argument("--mimi-path", choices=("fast", "stock"), default="fast", help="fastmimi CPU path or moshi's own")
    ap.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32", help="fast path precision")
    ap.add_argument("--cores", type=int, default=2, help="cores of the machine to size (one process per core)")
    ap.add_argument("--full", action="store_true", help="moshi's full-size LM config (needs a GPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if args.full and torch.cuda.is_available() else "cpu"
    if args.full and device == "cpu":
        print("--full needs a GPU: none here (torch.cuda.is_available() is False); nothing measured")
        return 2
    ns = [int(x) for x in args.streams.split(",")]
    lm, mimi = build(args.full, args.mimi, device)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"LM {'full-size' if args.full else 'small'} ({sum(p.numel() for p in lm.parameters()) / 1e6:.1f} M params), "
          f"Mimi {args.mimi} ({args.mimi_path} path, {args.precision}), on {where}; {args.ticks} ticks x {args.runs} runs per N (interleaved), "
          f"{args.loss:.0%} uniform loss per call; load average before: {os.getloadavg()[0]:.1f}")
    lm_t = {n: Times() for n in ns}
    dec_t = {n: Times() for n in ns}
    enc_t = {n: Times() for n in ns}
    lone = Times()
    state: dict[int, int] = {}
    for r in range(args.runs):
        if not args.full:
            lone_ticks(lm, args.ticks, args.loss, seed=r, out=lone)
        for n in ns:
            state[n] = lm_ticks(lm, n, args.ticks, args.loss, seed=r, device=device, out=lm_t[n])
            if mimi is not None:
                mimi_steps(mimi, n, max(8, args.ticks // 3), device, dec_t[n], enc_t[n],
                           fast=args.mimi_path == "fast", precision=args.precision)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if lone.wall:
        print(f"\nlone LMConcealer (batch 1), per tick: wall med/p95 {lone.row()[:15]} ms, CPU {lone.row()[16:]} ms")
    print(f"\n{'':>3}   {'LM step (2 per tick)':^23} {'LM tick':^23} {'Mimi decode':^23} {'Mimi encode':^23}")
    print(f"{'N':>3} | " + " | ".join(["wall med  p95    CPU"] * 4) + " | LM state MiB")
    for n in ns:
        cols = [lm_t[n].row(per=2.0), lm_t[n].row()]
        cols += [dec_t[n].row(), enc_t[n].row()] if dec_t[n].wall else ["   -"] * 2
        print(f"{n:>3} | " + " | ".join(f"{c:<21}" for c in cols) + f" | {state[n] / 2**20:.1f}")
    print("\nPer tick (80 ms budget), medians: receive = LM tick + decode, both = + encode")
    fits: dict[str, int] = {"rx wall": 0, "both wall": 0, "rx cpu": 0, "both cpu": 0}
    for n in ns:
        have = bool(dec_t[n].wall)
        rxw = np.median(lm_t[n].wall) + (np.median(dec_t[n].wall) if have else 0.0)
        rxc = np.median(lm_t[n].cpu) + (np.median(dec_t[n].cpu) if have else 0.0)
        bw = rxw + (np.median(enc_t[n].wall) if have else 0.0)
        bc = rxc + (np.median(enc_t[n].cpu) if have else 0.0)
        for key, v in (("rx wall", rxw), ("both wall", bw), ("rx cpu", rxc), ("both cpu", bc)):
            fits[key] = n if v < TICK_MS else fits[key]
        print(f"{n:>3} | receive wall {rxw:7.1f} CPU {rxc:7.1f} ms | send+receive wall {bw:7.1f} CPU {bc:7.1f} ms"
              f" | per call CPU {rxc / n:6.1f} / {bc / n:6.1f} ms")
    print(f"largest N measured whose tick fits 80 ms in one process: receive {fits['rx wall']} (wall), "
          f"{fits['rx cpu']} (CPU); send+receive {fits['both wall']} (wall), {fits['both cpu']} (CPU)")
    if args.threads == 1 and enc_t[ns[0]].cpu:
        # A sender process (encode for its N calls) beside a receiver process (LM + decode), one core each.
        pair = max([n for n in ns if np.median(enc_t[n].cpu) < TICK_MS
                    and np.median(lm_t[n].cpu) + np.median(dec_t[n].cpu) < TICK_MS], default=0)
        print(f"{args.cores}-core machine, 1-thread processes, one per core (CPU-time medians): receive-only "
              f"{args.cores * fits['rx cpu']} calls ({args.cores} x {fits['rx cpu']}); send+receive "
              f"{(args.cores // 2) * pair} calls ({args.cores // 2} sender+receiver pair(s) x {pair})"
              " (at the N values measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
