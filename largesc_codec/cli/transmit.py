"""``largesc transmit``: a speech file through sender, seeded lossy channel, receiver.

Time is simulated (the run is faster than real time): packet k carrying frames
f..f+n-1 leaves when its last frame is complete, at (f + n) * 80 ms, and
arrives ``--delay-ms`` later unless the channel drops it. The receiver pulls on
its own 80 ms playout clock. Everything in the pipeline is the real code a
call uses; only the network is the in-process channel model (channel.py).

OUT is what the listener hears, in play order: a frame the jitter buffer
skipped (to shrink its delay) is not in it, so OUT is then shorter than the
input, and each pull where the buffer held (to grow its delay) is 80 ms of
silence. The report counts both (frames_skipped, frames_held), and
output_frames = frames - frames_skipped + frames_held.

Report counts, per played frame: frames_primary (its own packet arrived),
frames_recovered (a redundant copy held all the codebooks the frame was sent
with: a whole frame), frames_partial (a copy held fewer; the concealer filled
the rest), frames_concealed / frames_comfort (nothing arrived). Each has a
channel ground truth next to it (truth_frames_*, from what was sent and which
packets had arrived by the frame's playout time: transmit_sim.Truth), and
truth_mismatches counts frames where the receiver's label differs (0 expected).
Skipped frames are split into those that had arrived (delivered) or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from largesc_codec.cli.options import HelpFormatter, add_weights_argument
from largesc_codec.neural import plc
from largesc_codec.neural.concealers import Concealer
from largesc_codec.neural.framing import check_audio_file
from largesc_codec.sim.simulate import MAX_DELAY_MS, FrameTruth, Simulation, SkipTruth, check_delay_ms, simulate
from largesc_codec.types import (
    FRAME_RATE_HZ,
    FRAME_SAMPLES,
    MAX_CODEBOOKS,
    MIN_SPEECH_CODEBOOKS,
    SAMPLE_RATE,
    TOKEN_BITS,
    WIRE_OVERHEAD_BYTES,
    FrameSource,
)

__all__ = ["WIRE_OVERHEAD_BYTES", "Simulation", "build_concealer", "register", "run", "simulate"]


@dataclass
class TransmitReport:
    """The JSON report of one ``largesc transmit`` run (fields described in the module doc)."""

    input: str
    output: str
    weights: str
    untrained_weights: bool
    channel: str
    seed: int
    plc: str
    max_bps: float
    max_codebooks: int
    delay_ms: float
    max_delay_ms: float
    frames: int
    duration_s: float
    output_frames: int
    packets_sent: int
    packets_lost: int
    loss_rate: float
    payload_bps: float  # every payload byte (what --max-bps caps)
    token_bps: float  # 11 bits a token, primary and redundant (what the research counts)
    wire_bps: float
    mean_codebooks: float
    frames_primary: int
    frames_recovered: int
    frames_partial: int
    frames_concealed: int
    frames_comfort: int
    frames_skipped: int
    frames_skipped_delivered: int
    frames_skipped_missing: int
    frames_held: int
    late_used: int
    truth_frames_primary_lost: int
    truth_frames_primary: int
    truth_frames_recovered: int
    truth_frames_partial: int
    truth_frames_lost: int
    truth_mismatches: int
    realtime_factor: float
    warnings: list[str] = field(default_factory=list)
    jitter: dict[str, Any] = field(default_factory=dict)
    plc_timing_ms: dict[str, float] = field(default_factory=dict)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "transmit",
        help="send a speech file through sender, seeded lossy channel and receiver",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("input", help="speech file (WAV, FLAC, MP3, OGG or any format PyAV reads; 8-48 kHz, mono "
                                 "or stereo)")
    p.add_argument("output", help="output WAV (24 kHz mono): what the listener hears, in play order")
    add_weights_argument(p)
    p.add_argument("--channel", default="uniform:0.1",
                   help="loss channel: none, uniform:P, ge:P,R[,H,K] or lossgen:P (Opus 1.5 real-trace loss)")
    p.add_argument("--seed", type=int, default=0, help="channel seed")
    p.add_argument("--max-bps", type=float, default=2062.5,
                   help="payload token budget in bit/s (2062.5 = 15 tokens a frame; at least "
                        "137.5 x min(4, --max-codebooks))")
    p.add_argument("--max-codebooks", type=int, default=8,
                   help=f"most codebooks per frame, 1..{MAX_CODEBOOKS}; speech frames get at least "
                        f"min({MIN_SPEECH_CODEBOOKS}, this)")
    p.add_argument("--plc", choices=plc.PLC_CHOICES, default="lm", help="concealer")
    p.add_argument("--adapter", default=None, help="LoRA adapter directory from `largesc finetune` (with --plc lm)")
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help=f"one-way network delay, 0..{MAX_DELAY_MS:g} ms")
    p.add_argument("--max-delay-ms", type=float, default=400.0,
                   help=f"the jitter buffer's largest target delay, 0..{MAX_DELAY_MS:g} ms")
    p.add_argument("--report", default=None, help="write the JSON report here")
    p.set_defaults(func=run)


def build_concealer(name: str, models: Any, adapter: str | None = None) -> Concealer:
    """The ``--plc`` concealer (registry: neural.plc); the LM from ``models``, tuned by ``adapter``."""
    return plc.build_concealer(name, models.load_lm, partial(_tuned, adapter_dir=adapter) if adapter else None)


def _tuned(lm: Any, adapter_dir: str) -> Any:
    from largesc_codec.train.finetune import load_adapter  # peft: only when an LM is tuned

    return load_adapter(lm, adapter_dir)


def check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values before any work, naming the option and its valid range."""
    check_audio_file(args.input, "input")
    check_delay_ms("--delay-ms", args.delay_ms)
    check_delay_ms("--max-delay-ms", args.max_delay_ms)
    if not 1 <= args.max_codebooks <= MAX_CODEBOOKS:
        raise ValueError(f"--max-codebooks must be 1..{MAX_CODEBOOKS} (default 8), got {args.max_codebooks}")
    floor = min(MIN_SPEECH_CODEBOOKS, args.max_codebooks) * TOKEN_BITS * FRAME_RATE_HZ
    if not (np.isfinite(args.max_bps) and args.max_bps >= floor):
        raise ValueError(f"--max-bps must be at least {floor:g} bit/s with --max-codebooks {args.max_codebooks} "
                         f"(a speech frame's min(4, --max-codebooks) tokens at 137.5 bit/s each), got {args.max_bps:g}")
    paths = {"input": Path(args.input).resolve(), "OUT": Path(args.output).resolve()}
    if args.report:
        paths["--report"] = Path(args.report).resolve()
    if paths["OUT"] == paths["input"]:
        raise ValueError(f"OUT {args.output} is the input file: give another output name")
    if paths.get("--report") in (paths["OUT"], paths["input"]):
        raise ValueError(f"--report {args.report} is the input or OUT file: give another report name")
    _check_writable("OUT", Path(args.output))
    if args.report:
        _check_writable("--report", Path(args.report))


def _check_writable(what: str, path: Path) -> None:
    """Open ``path`` for appending (creating nothing that stays) so a bad path fails before the run."""
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory: give a file name")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write {what} {path}: {exc.strerror or exc}. Give a path in a writable "
                         "directory") from exc
    if not existed:
        path.unlink()


def run(args: argparse.Namespace) -> int:
    from largesc_codec.neural.framing import decode_audio, write_wav
    from largesc_codec.neural.model import load_models
    from largesc_codec.sim.channel import parse_channel

    channel = parse_channel(args.channel, seed=args.seed)
    check_options(args)
    audio = decode_audio(args.input, "input")
    warnings = [w for w in [audio.truncation_warning(args.input)] if w]
    for w in warnings:
        print(f"largesc transmit: warning: {w}", file=sys.stderr)
    models = load_models(args.weights, num_codebooks=args.max_codebooks)
    sim = simulate(audio.pcm, audio.rate, models, channel, build_concealer(args.plc, models, args.adapter),
                   args.max_bps, args.max_codebooks, args.delay_ms, args.max_delay_ms)
    write_wav(args.output, sim.pcm, SAMPLE_RATE)
    report = make_report(args, models, sim, warnings)
    if args.report:
        Path(args.report).write_text(json.dumps(asdict(report), indent=1))
    _summary(report)
    return 0


def make_report(args: argparse.Namespace, models: Any, sim: Simulation, warnings: list[str]) -> TransmitReport:
    """The report of a finished simulation."""
    duration = sim.duration_s
    src, truth = sim.sources, sim.truth
    timings, status = sim.receiver.concealer.timings_ms, sim.receiver.status()
    return TransmitReport(
        input=str(args.input), output=str(args.output), weights=args.weights, untrained_weights=models.untrained,
        channel=args.channel, seed=args.seed, plc=args.plc, max_bps=args.max_bps,
        max_codebooks=args.max_codebooks, delay_ms=args.delay_ms, max_delay_ms=args.max_delay_ms,
        frames=sim.frames, duration_s=duration, output_frames=len(sim.pcm) // FRAME_SAMPLES,
        packets_sent=sim.sent, packets_lost=sim.lost, loss_rate=sim.lost / max(sim.sent, 1),
        payload_bps=sim.payload_bytes * 8 / duration if duration else 0.0,
        token_bps=sim.tokens * TOKEN_BITS / duration if duration else 0.0,
        wire_bps=(sim.payload_bytes + WIRE_OVERHEAD_BYTES * sim.sent) * 8 / duration if duration else 0.0,
        mean_codebooks=float(np.mean(sim.codebooks)) if sim.codebooks else 0.0,
        frames_primary=src[FrameSource.PRIMARY], frames_recovered=src[FrameSource.RECOVERED],
        frames_partial=src[FrameSource.PARTIAL], frames_concealed=src[FrameSource.CONCEALED],
        frames_comfort=src[FrameSource.COMFORT], frames_skipped=sim.skipped,
        frames_skipped_delivered=truth.skipped[SkipTruth.DELIVERED],
        frames_skipped_missing=truth.skipped[SkipTruth.MISSING], frames_held=sim.held, late_used=status.late_used,
        truth_frames_primary_lost=sim.primary_lost_frames, truth_frames_primary=truth.played[FrameTruth.PRIMARY],
        truth_frames_recovered=truth.played[FrameTruth.RECOVERED],
        truth_frames_partial=truth.played[FrameTruth.PARTIAL], truth_frames_lost=truth.played[FrameTruth.LOST],
        truth_mismatches=len(truth.mismatches),
        realtime_factor=sim.wall_s / duration if duration else 0.0,
        warnings=warnings, jitter=asdict(status.jitter),
        plc_timing_ms={k: float(np.median(v)) for k, v in timings.items() if v},
    )


def _summary(r: TransmitReport) -> None:
    note = " (UNTRAINED test weights: audio is not speech)" if r.untrained_weights else ""
    print(f"{r.input} -> {r.output}{note}")
    print(f"  {r.frames} frames ({r.duration_s:.1f} s), channel {r.channel} seed {r.seed}: "
          f"{r.packets_lost}/{r.packets_sent} packets lost ({r.loss_rate:.1%})")
    print(f"  payload {r.payload_bps:.0f} bit/s (tokens {r.token_bps:.0f}), on the wire {r.wire_bps:.0f} bit/s, "
          f"{r.mean_codebooks:.2f} codebooks/frame on average")
    print(f"  frames: {r.frames_primary} primary, {r.frames_recovered} recovered whole by redundancy, "
          f"{r.frames_partial} partial, {r.frames_concealed} concealed ({r.plc}), {r.frames_comfort} comfort")
    print(f"  jitter buffer: {r.frames_skipped} frames skipped ({r.frames_skipped_delivered} had arrived), "
          f"{r.frames_held} held (80 ms silence each); OUT has {r.output_frames} frames "
          f"({r.output_frames * FRAME_SAMPLES / SAMPLE_RATE:.2f} s)")
    check = "match" if r.truth_mismatches == 0 else f"DIFFER on {r.truth_mismatches} frames from"
    print(f"  receiver counts {check} the channel's ground truth; real-time factor {r.realtime_factor:.2f}")
