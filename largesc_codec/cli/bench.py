"""``largesc bench latency``: mouth-to-ear latency through the real pipeline.

Zero network delay and jitter. Time is simulated but every processing stage
runs for real and its measured duration moves the clock:

  frame k's first sample is spoken at k*80 ms; the frame is complete at (k+1)*80
  -> sender (features, controller, Mimi encode, packetise) takes e_k
  -> the packet arrives at once, at A_k = (k+1)*80 + e_k; depacketise + insert
  -> the receiver's playout clock pulls every 80 ms, at 80 + median(e) + phase
     + j*80; the jitter buffer decides which frame each pull plays (its
     adaptive target is the 95 % point of the measured arrival jitter, here
     the jitter of e_k)
  -> concealment at the deadline (none needed: the LM's prediction is prepared
     while the previous frame plays) + Mimi decode takes d
  mouth-to-ear(k) = pull time + d - k*80; buffer wait(k) = pull time - A_k

The playout clock is the receiver's own, so its phase against the arrivals is
not the buffer's to choose: a frame waits its target plus up to one 80 ms
tick. Each run replays the same sender output through fresh receivers at
``--phases`` evenly spaced phases: the best phase is a receiver whose clock
is aligned to the stream, the mean over phases one whose clock runs free.
Figures are medians over the frames after the first quarter (start-up),
then median and spread (min..max) over ``--runs`` runs, wall time and the
process's CPU time (all threads) side by side: the machine may be shared.
The start-up quarter must hold the jitter buffer's largest target delay
(400 ms, 5 frames), so ``--frames`` is at least 20; a run whose steady state
still played no frame from an arrived packet (a machine far slower than real
time, or a ``--loss`` that dropped them all) is an error, never a ``nan``.

A loss pattern can be applied so concealed frames are part of the figures.
The LM's speculative work (prepare) does not add latency but must fit into
the 80 ms of compute per frame: it is reported as CPU per frame.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from largesc_codec.cli.options import HelpFormatter, add_weights_argument
from largesc_codec.neural.concealers import Concealer
from largesc_codec.neural.framing import check_audio_file, frames_from_file
from largesc_codec.neural.plc import PLC_CHOICES, build_concealer, uses_lm
from largesc_codec.types import FRAME_MS, FRAME_SAMPLES, MIMI_PRECISIONS

# The first quarter of the frames is start-up; it must hold the jitter buffer's largest
# target delay (400 ms = 5 frames), else the "steady" frames still carry the start.
MIN_FRAMES = 4 * 5
SPEECH = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures (latency)", description=__doc__,
                       formatter_class=HelpFormatter)
    which = p.add_subparsers(dest="bench", metavar="BENCH")
    which.required = True
    lat = which.add_parser("latency", help="mouth-to-ear latency breakdown per stage", description=__doc__,
                           formatter_class=HelpFormatter)
    lat.add_argument("input", nargs="?", default=SPEECH, help="speech file (WAV, FLAC, MP3, OGG, ...)")
    add_weights_argument(lat, "weights for the LM (and Mimi with --mimi weights)")
    lat.add_argument("--mimi", choices=["weights", "full"], default="full",
                     help="full: moshi's full-size Mimi, random weights (real compute); weights: from --weights")
    lat.add_argument("--plc", choices=PLC_CHOICES, default="lm", help="receiver concealment")
    lat.add_argument("--loss", type=float, default=0.0, help="uniform loss applied (seeded), in [0, 1)")
    lat.add_argument("--frames", type=int, default=80,
                     help=f"80 ms frames sent per run, at least {MIN_FRAMES} (the first quarter is start-up)")
    lat.add_argument("--runs", type=int, default=3, help="runs (median and spread over them), at least 1")
    lat.add_argument("--phases", type=int, default=4,
                     help="playout-clock phases per run, evenly over 80 ms, at least 1")
    lat.add_argument("--threads", type=int, default=2, help="torch threads, at least 1")
    lat.add_argument("--mimi-precision", choices=MIMI_PRECISIONS, default="fp32",
                     help="Mimi's CPU arithmetic, as `call --mimi-precision` (fp32: tokens exact)")
    lat.add_argument("--json", default=None, help="also write the figures as JSON here")
    lat.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """ValueError naming the option and its minimum for settings that cannot be measured; before any work."""
    for flag, value, low in (("--frames", args.frames, MIN_FRAMES), ("--runs", args.runs, 1),
                             ("--phases", args.phases, 1), ("--threads", args.threads, 1)):
        if value < low:
            why = " (the first quarter is start-up and must hold the jitter buffer's 400 ms)" \
                if flag == "--frames" else ""
            raise ValueError(f"{flag} {value} is too small to measure: give at least {low}{why}")
    if not (math.isfinite(args.loss) and 0.0 <= args.loss < 1.0):
        raise ValueError(f"--loss {args.loss} must be in [0, 1)")
    check_audio_file(args.input, "input")


def _mimi_factory(kind: str, models: Any) -> Callable[[], Any]:
    if kind == "weights":
        return models.new_mimi  # type: ignore[no-any-return]
    import copy

    from moshi.models import loaders

    full = loaders.get_mimi(None, device="cpu")
    return lambda: copy.deepcopy(full)


def _warm_up(new_mimi: Callable[[], Any], precision: str) -> None:
    """First calls into torch are slow (allocation, kernel selection): keep them out of the figures."""
    from largesc_codec.neural.decoder import MimiDecoder
    from largesc_codec.neural.encoder import MimiEncoder

    enc, dec = MimiEncoder(new_mimi(), precision=precision), MimiDecoder(new_mimi(), precision=precision)
    for _ in range(5):
        dec.decode(enc.encode(np.zeros(FRAME_SAMPLES, np.float32)).tolist())


class _Clock:
    """Wall and process CPU time (ms) of a stretch of work."""

    def __enter__(self) -> "_Clock":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = (time.perf_counter() - self._w) * 1e3
        self.cpu = (time.process_time() - self._c) * 1e3


def _send(new_mimi: Callable[[], Any], frames: list[np.ndarray], loss: float, seed: int,
          precision: str) -> dict[str, Any]:
    """The real sender over every frame; arrival times at zero network delay."""
    from largesc_codec.neural.encoder import MimiEncoder
    from largesc_codec.sender import LargeSCSender

    sender = LargeSCSender(None, encoder=MimiEncoder(new_mimi(), precision=precision))
    rng = np.random.default_rng(seed)
    arrivals: list[tuple[float, int, bytes]] = []
    arrived: dict[int, float] = {}  # frame -> arrival of its packet
    wall, cpu = [], []
    for k, pcm in enumerate(frames):
        with _Clock() as c:
            sender.push(pcm)
            pkts = sender.pull()
        wall.append(c.wall)
        cpu.append(c.cpu)
        for p in pkts:
            if rng.random() >= loss:
                at = (k + 1) * FRAME_MS + c.wall
                arrivals.append((at, p.first_index, p.payload))
                arrived.update({p.first_index + i: at for i in range(len(p.decisions))})
    return {"arrivals": arrivals, "arrived": arrived, "wall": wall, "cpu": cpu}


def _receive(new_mimi: Callable[[], Any], concealer: Concealer, sent: dict[str, Any], n: int, phase: float,
             precision: str) -> dict[str, Any]:
    """Fresh receiver, playout clock at 80 + median(send) + phase + j*80; per-frame figures."""
    from largesc_codec.neural.decoder import MimiDecoder
    from largesc_codec.receiver import LargeSCReceiver

    receiver = LargeSCReceiver(None, concealer, decoder=MimiDecoder(new_mimi(), precision=precision))
    arrivals, arrived = sent["arrivals"], sent["arrived"]
    now = FRAME_MS + float(np.median(sent["wall"])) + phase
    a, pulled, seq = 0, 0, 0
    f: dict[str, list[float]] = {k: [] for k in ("insert", "decode", "decode_cpu", "prepare", "prepare_cpu",
                                                  "m2e", "wait", "cpu_frame")}
    sources: dict[str, int] = {}
    by_source: dict[str, list[float]] = {}  # steady mouth-to-ear per frame source (primary, concealed, ...)
    while pulled < n and now < (n + 50) * FRAME_MS:
        while a < len(arrivals) and arrivals[a][0] <= now:
            with _Clock() as c:
                receiver.push(1, seq, arrivals[a][1] * FRAME_SAMPLES, arrivals[a][2], arrivals[a][0])
            f["insert"].append(c.wall)
            seq, a = seq + 1, a + 1
        with _Clock() as dc:
            got = receiver.pull(now)
        if got is not None:
            with _Clock() as pc:
                receiver.prepare_next()
            k = got.frame.index
            source = got.frame.source.value  # the plain name: JSON and printed keys
            sources[source] = sources.get(source, 0) + 1
            if k >= n // 4:  # steady state: the buffer has measured the jitter
                f["decode"].append(dc.wall)
                f["decode_cpu"].append(dc.cpu)
                f["prepare"].append(pc.wall)
                f["prepare_cpu"].append(pc.cpu)
                f["m2e"].append(now + dc.wall - k * FRAME_MS)
                by_source.setdefault(source, []).append(now + dc.wall - k * FRAME_MS)
                if k in arrived:
                    f["wait"].append(now - arrived[k])
                f["cpu_frame"].append(sent["cpu"][min(k, n - 1)] + dc.cpu + pc.cpu)
            pulled = k + 1
        now += FRAME_MS
    stats = receiver.jitter.stats()
    concealer.close()  # an LM leaves streaming mode for the next receiver
    med = {k: float(np.median(v)) if v else float("nan") for k, v in f.items()}
    med["m2e_p95"] = float(np.percentile(f["m2e"], 95)) if f["m2e"] else float("nan")
    return {"phase_ms": phase, **med, "target_ms": stats.target_delay_ms, "skipped": stats.skipped,
            "holds": stats.holds, "sources": sources,
            "m2e_by_source": {k: float(np.median(v)) for k, v in by_source.items()}}


def _spread(values: list[float], digits: int = 1) -> str:
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):7.{digits}f} ms ({v.min():.{digits}f}..{v.max():.{digits}f})"


def _undefined(run: dict[str, Any]) -> list[str]:
    """The figures of a run that no steady-state frame measured (NaN)."""
    figures = {**run, **run["best"]}
    return sorted(k for k, v in figures.items() if isinstance(v, float) and not math.isfinite(v))


def run(args: argparse.Namespace) -> int:
    check_args(args)
    frames = frames_from_file(args.input, "input")  # a bad file fails before torch is even imported
    args.load_before = os.getloadavg()[0]  # before this benchmark adds its own threads
    import torch

    from largesc_codec.neural.model import load_models

    torch.set_num_threads(args.threads)
    models = load_models(args.weights)
    new_mimi = _mimi_factory(args.mimi, models)
    _warm_up(new_mimi, args.mimi_precision)
    lm = models.load_lm() if uses_lm(args.plc) else None
    frames = (frames * (args.frames // max(len(frames), 1) + 1))[: args.frames]
    phases = [i * FRAME_MS / args.phases for i in range(args.phases)]
    runs: list[dict[str, Any]] = []
    for r in range(args.runs):
        sent = _send(new_mimi, frames, args.loss, seed=r, precision=args.mimi_precision)
        recv = [_receive(new_mimi, build_concealer(args.plc, lambda: lm), sent, len(frames), ph, args.mimi_precision)
                for ph in phases]
        best = min(recv, key=lambda x: x["m2e"])
        steady = slice(len(frames) // 4, None)
        one = {
            "send_ms": float(np.median(sent["wall"][steady])), "send_cpu_ms": float(np.median(sent["cpu"][steady])),
            "best": best, "phase_mean_m2e_ms": float(np.mean([x["m2e"] for x in recv])),
            "phase_max_m2e_ms": float(max(x["m2e"] for x in recv)), "phases": recv,
        }
        undefined = _undefined(one)
        if undefined:
            print(f"largesc bench latency: error: run {r + 1} measured no {', '.join(undefined)}: no frame after "
                  f"the start-up quarter played from a packet that had arrived (sender {one['send_ms']:.0f} ms per "
                  "80 ms frame). Give more --frames, a lower --loss, or a less loaded machine", file=sys.stderr)
            return 1
        runs.append(one)
        print(f"run {r + 1}: mouth-to-ear {best['m2e']:.1f} ms at the best phase (+{best['phase_ms']:.0f} ms), "
              f"{one['phase_mean_m2e_ms']:.1f} ms mean over {len(phases)} phases; "
              f"buffer wait {best['wait']:.1f} ms (target {best['target_ms']:.0f})")
    _print(args, runs, len(phases))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "func"},
                                               "runs": runs,
                                               "untrained_weights": models.untrained}, indent=1))
    return 0


def _print(args: argparse.Namespace, runs: list[dict[str, Any]], phases: int) -> None:
    b = [r["best"] for r in runs]
    col = lambda key: [x[key] for x in b]  # noqa: E731
    print(f"mouth-to-ear latency, zero network delay/jitter, {args.mimi} Mimi ({args.mimi_precision}), plc={args.plc}, "
          f"loss {args.loss:.0%}, "
          f"{args.frames} frames, {args.threads} threads, {len(runs)} runs (median (min..max)), "
          f"load average {args.load_before:.2f} before")
    w = 40
    print(f"  {'stage':<{w}} {'wall':<26} CPU time (all threads)")
    print(f"  {'frame accumulation':<{w}} {FRAME_MS:7.1f} ms")
    print(f"  {'send: features, controller, encode, pack':<{w}} {_spread([r['send_ms'] for r in runs])}  "
          f"{_spread([r['send_cpu_ms'] for r in runs])}")
    print(f"  {'depacketise + jitter-buffer insert':<{w}} {_spread(col('insert'), 2)}")
    print(f"  {'jitter-buffer wait (best phase)':<{w}} {_spread(col('wait'))}  target {_spread(col('target_ms'), 0)}")
    print(f"  {'conceal + Mimi decode':<{w}} {_spread(col('decode'))}  {_spread(col('decode_cpu'))}")
    print(f"  {'MOUTH-TO-EAR, clock aligned (best phase)':<{w}} {_spread(col('m2e'))}  p95 {_spread(col('m2e_p95'))}")
    print(f"  {f'mouth-to-ear, free clock ({phases} phases)':<{w}} {_spread([r['phase_mean_m2e_ms'] for r in runs])}"
          f"  worst phase {_spread([r['phase_max_m2e_ms'] for r in runs])}")
    srcs = sorted({k for x in b for k in x["m2e_by_source"]})
    print(f"  {'mouth-to-ear by frame source (aligned)':<{w}} " + ", ".join(
        f"{k} {np.median([x['m2e_by_source'][k] for x in b if k in x['m2e_by_source']]):.1f} ms" for k in srcs))
    print(f"  {'LM work off the deadline (prepare)':<{w}} {_spread(col('prepare'))}  {_spread(col('prepare_cpu'))}")
    print(f"  {'CPU time per 80 ms frame, all stages':<{w}} {'':<26} {_spread(col('cpu_frame'))}")
