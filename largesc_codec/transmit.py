"""``largesc transmit``: a speech file through sender, seeded lossy channel, receiver.

Time is simulated (the run is faster than real time): packet k carrying frames
f..f+n-1 leaves when its last frame is complete, at (f + n) * 80 ms, and
arrives ``--delay-ms`` later unless the channel drops it. The receiver pulls on
its own 80 ms playout clock. Everything in the pipeline is the real code a
call uses; only the network is the in-process channel model (channel.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .types import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

WIRE_OVERHEAD_BYTES = 20 + 8 + 12  # IPv4 + UDP + RTP fixed header
SSRC = 0x4C534331  # "LSC1"
FEEDBACK_MS = 1040  # receiver reports every 13 frames (about 1 s, like reduced-minimum RTCP)
FEEDBACK_WINDOW = 100  # packets: the report follows the channel over ~8 s


@dataclass
class TransmitReport:
    input: str
    output: str
    weights: str
    untrained_weights: bool
    channel: str
    seed: int
    plc: str
    max_bps: float
    frames: int
    duration_s: float
    packets_sent: int
    packets_lost: int
    loss_rate: float
    payload_bps: float
    wire_bps: float
    mean_codebooks: float
    frames_primary: int
    frames_recovered: int
    frames_partial: int
    frames_concealed: int
    frames_comfort: int
    frames_skipped: int
    truth_frames_primary_lost: int
    realtime_factor: float
    jitter: dict[str, Any] = field(default_factory=dict)
    plc_timing_ms: dict[str, float] = field(default_factory=dict)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transmit",
        help="send a speech file through sender, seeded lossy channel and receiver",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="speech file (any format PyAV reads; 8-48 kHz, mono or stereo)")
    p.add_argument("output", help="output WAV (24 kHz mono)")
    p.add_argument("--weights", default="hub", help="hub (default), hf://owner/repo, or a local weights directory")
    p.add_argument("--channel", default="uniform:0.1", help="uniform:P or ge:P,R[,H,K] (default uniform:0.1)")
    p.add_argument("--seed", type=int, default=0, help="channel seed (default 0)")
    p.add_argument("--max-bps", type=float, default=2062.5, help="payload budget in bit/s (default 2062.5)")
    p.add_argument("--max-codebooks", type=int, default=8, help="most codebooks per frame (default 8)")
    p.add_argument("--plc", choices=["lm", "repeat", "none"], default="lm", help="concealer (default lm)")
    p.add_argument("--adapter", default=None, help="LoRA adapter directory from `largesc finetune` (with --plc lm)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way network delay (default 0)")
    p.add_argument("--report", default=None, help="write the JSON report here")
    p.set_defaults(func=run)


def build_concealer(plc: str, models: Any, adapter: str | None = None) -> Any:
    from .concealer import CONCEALERS

    if plc == "lm":
        from .lm_concealer import LMConcealer

        lm = models.load_lm()
        if adapter:
            from .finetune import load_adapter

            lm = load_adapter(lm, adapter)
        return LMConcealer(lm)
    if adapter:
        raise ValueError("--adapter only applies with --plc lm")
    return CONCEALERS[plc]()


@dataclass
class Simulation:
    """Outcome of one run through sender, channel and receiver (see ``simulate``)."""

    pcm: np.ndarray  # float32 (frames * 1920,) at 24 kHz, frame i at [i*1920, (i+1)*1920)
    frames: int
    sent: int
    lost: int
    primary_lost_frames: int
    payload_bytes: int
    codebooks: list[int]
    sources: Counter[str]
    wall_s: float
    receiver: Any

    @property
    def duration_s(self) -> float:
        return self.frames * FRAME_MS / 1000.0


def simulate(pcm: np.ndarray, rate: int, models: Any, channel: Any, concealer: Any,
             max_bps: float = 2062.5, max_codebooks: int = 8, delay_ms: float = 0.0) -> Simulation:
    """Run PCM (float32 (n, channels) at ``rate``) through the whole pipeline on a simulated clock."""
    from .channel import LossStats
    from .receiver import LargeSCReceiver
    from .sender import LargeSCSender

    if pcm.ndim == 1:
        pcm = pcm[:, None]
    if pcm.shape[1] > 2:
        pcm = pcm.mean(axis=1, keepdims=True)
    sender = LargeSCSender(models.new_mimi(), sample_rate=rate, channels=pcm.shape[1],
                           max_bps=max_bps, max_codebooks=max_codebooks)
    receiver = LargeSCReceiver(models.new_mimi(), concealer, codebooks=max_codebooks)
    t0 = time.perf_counter()
    sent, n_lost, lost_first, payload_bytes, codebooks = 0, 0, set(), 0, []
    in_flight: list[tuple[float, int, int, bytes]] = []  # (arrival_ms, seq, timestamp, payload)
    feedback = LossStats(window=FEEDBACK_WINDOW)
    next_seq = 0
    total_frames = -(-len(pcm) * SAMPLE_RATE // rate // FRAME_SAMPLES)  # ceil, after resampling
    out = np.zeros(max(total_frames, 1) * FRAME_SAMPLES * 2, dtype=np.float32)
    sources: Counter[str] = Counter()
    fed, now, played = 0, 0.0, 0
    while played < total_frames and now <= (total_frames + 200) * FRAME_MS:
        # Sender: the audio of the last 80 ms arrives from the "microphone".
        upto = min(len(pcm), int(round((now / 1000.0) * rate)))
        if upto > fed:
            sender.push(pcm[fed:upto])
            fed = upto
        elif fed >= len(pcm):
            sender.flush()
        for pkt in sender.pull():
            payload_bytes += len(pkt.payload)
            codebooks += [d.codebooks for d in pkt.decisions]
            seq = sent & 0xFFFF
            sent += 1
            if channel.lost():
                n_lost += 1
                lost_first.update(range(pkt.first_index, pkt.first_index + len(pkt.decisions)))
            else:
                in_flight.append((now + delay_ms, seq, pkt.first_index * FRAME_SAMPLES, pkt.payload))
        # Receiver: packets that have arrived, then one frame on the playout clock.
        while in_flight and in_flight[0][0] <= now:
            arrival, seq, ts, payload = in_flight.pop(0)
            feedback.update_run(True, (seq - next_seq) & 0xFFFF)  # a sequence gap = lost packets
            feedback.update(False)
            next_seq = (seq + 1) & 0xFFFF
            receiver.push(SSRC, seq, ts & 0xFFFFFFFF, payload, arrival)
        got = receiver.pull(now)
        if got is not None:
            idx = got.frame.index
            if 0 <= idx < len(out) // FRAME_SAMPLES:
                out[idx * FRAME_SAMPLES : (idx + 1) * FRAME_SAMPLES] = got.pcm
            played = max(played, idx + 1)
            sources[got.frame.source] += 1
            receiver.prepare_next()
        if int(now) % FEEDBACK_MS == 0 and now > 0:  # receiver report -> sender's controller
            sender.on_loss_report(feedback.report())
        now += FRAME_MS
    frames = len(codebooks)
    return Simulation(out[: frames * FRAME_SAMPLES], frames, sent, n_lost, len(lost_first), payload_bytes,
                      codebooks, sources, time.perf_counter() - t0, receiver)


def run(args: argparse.Namespace) -> int:
    from .channel import parse_channel
    from .framing import read_audio, write_wav
    from .model import load_models

    channel = parse_channel(args.channel, seed=args.seed)
    pcm, rate = read_audio(args.input)
    models = load_models(args.weights, num_codebooks=args.max_codebooks)
    sim = simulate(pcm, rate, models, channel, build_concealer(args.plc, models, args.adapter),
                   args.max_bps, args.max_codebooks, args.delay_ms)
    write_wav(args.output, sim.pcm, SAMPLE_RATE)
    duration = sim.duration_s
    sources = sim.sources
    timings = getattr(sim.receiver.concealer, "timings_ms", {})
    jitter = sim.receiver.jitter.stats()
    report = TransmitReport(
        input=str(args.input), output=str(args.output), weights=args.weights, untrained_weights=models.untrained,
        channel=args.channel, seed=args.seed, plc=args.plc, max_bps=args.max_bps, frames=sim.frames,
        duration_s=duration, packets_sent=sim.sent, packets_lost=sim.lost,
        loss_rate=sim.lost / max(sim.sent, 1),
        payload_bps=sim.payload_bytes * 8 / duration if duration else 0.0,
        wire_bps=(sim.payload_bytes + WIRE_OVERHEAD_BYTES * sim.sent) * 8 / duration if duration else 0.0,
        mean_codebooks=float(np.mean(sim.codebooks)) if sim.codebooks else 0.0,
        frames_primary=sources["primary"], frames_recovered=sources["recovered"],
        frames_partial=sources["partial"], frames_concealed=sources["concealed"],
        frames_comfort=sources["comfort"], frames_skipped=jitter.skipped,
        truth_frames_primary_lost=sim.primary_lost_frames,
        realtime_factor=sim.wall_s / duration if duration else 0.0,
        jitter=asdict(jitter),
        plc_timing_ms={k: float(np.median(v)) for k, v in timings.items() if v},
    )
    if args.report:
        Path(args.report).write_text(json.dumps(asdict(report), indent=1))
    _summary(report)
    return 0


def _summary(r: TransmitReport) -> None:
    note = " (UNTRAINED test weights: audio is not speech)" if r.untrained_weights else ""
    print(f"{r.input} -> {r.output}{note}")
    print(f"  {r.frames} frames ({r.duration_s:.1f} s), channel {r.channel} seed {r.seed}: "
          f"{r.packets_lost}/{r.packets_sent} packets lost ({r.loss_rate:.1%})")
    print(f"  payload {r.payload_bps:.0f} bit/s, on the wire {r.wire_bps:.0f} bit/s, "
          f"{r.mean_codebooks:.2f} codebooks/frame on average")
    print(f"  frames: {r.frames_primary} primary, {r.frames_recovered} recovered by redundancy, "
          f"{r.frames_partial} partial, {r.frames_concealed} concealed ({r.plc}), {r.frames_comfort} comfort, "
          f"{r.frames_skipped} skipped by the jitter buffer")
    print(f"  real-time factor {r.realtime_factor:.2f}")
