"""``largesc bench latency``: mouth-to-ear latency through the real pipeline.

Zero network delay and jitter. Time is simulated but every processing stage
runs for real and its measured duration moves the clock:

  frame k's first sample is spoken at k*80 ms; the frame is complete at (k+1)*80
  -> sender (features, controller, Mimi encode, packetise) takes e_k
  -> the packet arrives at once; depacketise + jitter-buffer insert takes i_k
  -> the receiver's playout clock (phased to frame 0's typical arrival) pulls frame k
     at P_k; the buffer's delay is whatever its adaptive target makes it
  -> concealment at the deadline (none needed: the LM's prediction is prepared
     while the previous frame plays) + Mimi decode takes d_k
  mouth-to-ear(k) = P_k + d_k - k*80

A loss pattern can be applied so concealed frames are part of the figures.
The LM's speculative work (prepare/update) does not add latency but must fit
into the 80 ms of compute per frame: it is reported as CPU per frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .types import FRAME_MS, FRAME_SAMPLES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures (latency)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_subparsers(dest="bench", metavar="BENCH")
    which.required = True
    lat = which.add_parser("latency", help="mouth-to-ear latency breakdown per stage")
    lat.add_argument("input", nargs="?", default="/usr/share/pocketsphinx/test/data/librivox/"
                     "sense_and_sensibility_01_austen_64kb-0870.wav", help="speech file")
    lat.add_argument("--weights", default="hub", help="weights for the LM (and Mimi unless --mimi full)")
    lat.add_argument("--mimi", choices=["weights", "full"], default="full",
                     help="full: moshi's full-size Mimi, random weights (real compute); weights: from --weights")
    lat.add_argument("--plc", choices=["lm", "repeat", "none"], default="lm")
    lat.add_argument("--loss", type=float, default=0.0, help="uniform loss applied (seeded)")
    lat.add_argument("--frames", type=int, default=80)
    lat.add_argument("--threads", type=int, default=2)
    lat.add_argument("--json", default=None, help="also write the figures as JSON here")
    lat.set_defaults(func=run)


def _mimi_factory(kind: str, models: Any) -> Any:
    if kind == "weights":
        return models.new_mimi
    import copy

    from moshi.models import loaders

    full = loaders.get_mimi(None, device="cpu")
    return lambda: copy.deepcopy(full)


def _warm_up(new_mimi: Any) -> None:
    """First calls into torch are slow (allocation, kernel selection): keep them out of the figures."""
    from .decoder import MimiDecoder
    from .encoder import MimiEncoder

    enc, dec = MimiEncoder(new_mimi()), MimiDecoder(new_mimi())
    for _ in range(5):
        dec.decode(enc.encode(np.zeros(FRAME_SAMPLES, np.float32)))


def run(args: argparse.Namespace) -> int:
    import torch

    from .framing import frames_from_file
    from .model import load_models
    from .receiver import LargeSCReceiver
    from .sender import LargeSCSender
    from .transmit import build_concealer

    torch.set_num_threads(args.threads)
    models = load_models(args.weights)
    new_mimi = _mimi_factory(args.mimi, models)
    _warm_up(new_mimi)
    sender = LargeSCSender(new_mimi())
    receiver = LargeSCReceiver(new_mimi(), build_concealer(args.plc, models))
    frames = frames_from_file(args.input)
    frames = (frames * (args.frames // max(len(frames), 1) + 1))[: args.frames]
    rng = np.random.default_rng(0)
    arrivals: list[tuple[float, int, bytes]] = []
    send_ms, insert_ms, decode_ms, cpu_ms, m2e = [], [], [], [], []
    for k, pcm in enumerate(frames):
        t0 = time.perf_counter()
        sender.push(pcm)
        pkts = sender.pull()
        e = (time.perf_counter() - t0) * 1e3
        send_ms.append(e)
        for p in pkts:
            if rng.random() >= args.loss:
                arrivals.append(((k + 1) * FRAME_MS + e, p.first_index, p.payload))
    # Receiver on its own playout clock, phased to when frame 0 arrives with a typical
    # (median) encode time: a one-off slow first encode must not shift the whole call.
    now = FRAME_MS + float(np.median(send_ms))
    a, pulled, seq = 0, 0, 0
    by_stage: dict[str, list[float]] = {}
    while pulled < len(frames) and now < (len(frames) + 50) * FRAME_MS:
        while a < len(arrivals) and arrivals[a][0] <= now:
            t0 = time.perf_counter()
            receiver.push(1, seq, arrivals[a][1] * FRAME_SAMPLES, arrivals[a][2], arrivals[a][0])
            insert_ms.append((time.perf_counter() - t0) * 1e3)
            seq, a = seq + 1, a + 1
        t0 = time.perf_counter()
        got = receiver.pull(now)
        d = (time.perf_counter() - t0) * 1e3
        t1 = time.perf_counter()
        receiver.prepare_next()
        spec = (time.perf_counter() - t1) * 1e3
        if got is not None:
            decode_ms.append(d)
            k = got.frame.index
            m2e.append(now + d - k * FRAME_MS)
            by_stage.setdefault(got.frame.source, []).append(now + d - k * FRAME_MS)
            cpu_ms.append(send_ms[min(k, len(send_ms) - 1)] + d + spec)
            pulled = k + 1
        now += FRAME_MS
    jit = receiver.jitter.stats()
    med = lambda v: float(np.median(v)) if v else 0.0  # noqa: E731
    steady = m2e[len(m2e) // 4 :] or m2e
    result = {
        "mimi": args.mimi, "plc": args.plc, "loss": args.loss, "frames": len(frames), "threads": args.threads,
        "accumulation_ms": float(FRAME_MS),
        "send_ms_median": med(send_ms), "insert_ms_median": med(insert_ms),
        "buffer_ms_median": med(steady) - FRAME_MS - med(send_ms) - med(decode_ms),
        "decode_and_conceal_ms_median": med(decode_ms),
        "mouth_to_ear_ms_median": med(steady), "mouth_to_ear_ms_p95": float(np.percentile(steady, 95)),
        "mouth_to_ear_ms_by_source": {k: med(v) for k, v in by_stage.items()},
        "cpu_ms_per_frame_median": med(cpu_ms), "jitter_target_ms": jit.target_delay_ms,
        "plc_timing_ms": {k: med(v) for k, v in getattr(receiver.concealer, "timings_ms", {}).items()},
        "untrained_weights": models.untrained,
    }
    print(f"mouth-to-ear latency, zero network delay/jitter, {args.mimi} Mimi, plc={args.plc}, "
          f"loss {args.loss:.0%}, {len(frames)} frames, {args.threads} threads")
    print(f"  frame accumulation      {FRAME_MS:7.1f} ms")
    print(f"  send (features, controller, encode, packetise) {result['send_ms_median']:7.1f} ms")
    print(f"  depacketise + insert    {result['insert_ms_median']:7.2f} ms")
    print(f"  jitter buffer (rest)    {result['buffer_ms_median']:7.1f} ms  (target {jit.target_delay_ms:.0f} ms)")
    print(f"  conceal + decode        {result['decode_and_conceal_ms_median']:7.1f} ms")
    print(f"  mouth-to-ear            {result['mouth_to_ear_ms_median']:7.1f} ms median, "
          f"{result['mouth_to_ear_ms_p95']:.1f} ms p95")
    print(f"  CPU per 80 ms frame     {result['cpu_ms_per_frame_median']:7.1f} ms (send + receive + LM speculation)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
