"""``largesc eval``: LargeSC against Opus and no-concealment baselines, one command.

Every condition runs at the same channel seeds (evaluation/runner.py): clean
reference, Opus at 6..24 kbit/s through libopus (its own PLC and in-band FEC),
and LargeSC at several payload budgets with LM, repeat and no concealment. With
untrained test weights the LargeSC rows are labelled "untrained weights"; with
the hub weights the same command gives the real comparison.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import numpy.typing as npt

from largesc_codec.cli.options import HelpFormatter, add_weights_argument
from largesc_codec.neural.plc import PLC_CHOICES
from largesc_codec.types import FrameSource

DEFAULT_BPS = (550.0, 1100.0, 2062.5)
DEFAULT_PLC = PLC_CHOICES


class LargeSCCodec:
    """Evaluation codec callable: PCM -> LargeSC over the given channel -> PCM (24 kHz)."""

    def __init__(self, models: Any, max_bps: float, plc: str, adapter: str | None = None) -> None:
        self.models, self.max_bps, self.plc, self.adapter = models, max_bps, plc, adapter

    def __call__(self, pcm: npt.NDArray[Any], sample_rate: int, channel: Any) -> Any:
        from largesc_codec.cli.transmit import WIRE_OVERHEAD_BYTES, build_concealer, simulate
        from largesc_codec.evaluation.runner import CodecOutput

        concealer = build_concealer(self.plc, self.models, self.adapter)
        sim = simulate(np.asarray(pcm, np.float32), sample_rate, self.models, channel, concealer, self.max_bps)
        seconds = max(sim.duration_s, 1e-9)
        rescued = sim.sources[FrameSource.RECOVERED] + sim.sources[FrameSource.PARTIAL]
        invented = sim.sources[FrameSource.CONCEALED] + sim.sources[FrameSource.COMFORT]
        return CodecOutput(
            sim.pcm, 24_000, sim.payload_bytes * 8 / seconds,
            (sim.payload_bytes + WIRE_OVERHEAD_BYTES * sim.sent) * 8 / seconds,
            invented / max(sim.frames, 1),
            {"lost_fraction": sim.lost / max(sim.sent, 1), "rescued_fraction": rescued / max(sim.frames, 1),
             "mean_codebooks": float(np.mean(sim.codebooks))},
        )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    from largesc_codec.evaluation.cli import add_arguments

    p = sub.add_parser("eval", help="paper-style comparison: LargeSC vs Opus vs no concealment (PLCMOS, ViSQOL, WER)",
                       description=__doc__, formatter_class=HelpFormatter)
    add_arguments(p)
    p.add_argument("--data", dest="speech", help="same as --speech: a LibriSpeech-layout directory, or librivox/asterisk")
    p.add_argument("--losses", nargs="+", default=None, metavar="SPEC", help="loss specs (same as repeated --loss)")
    add_weights_argument(p, "model weights of the LargeSC rows")
    p.add_argument("--largesc-bps", type=float, nargs="*", default=list(DEFAULT_BPS),
                   help="LargeSC payload budgets in bit/s (none given: no LargeSC rows)")
    p.add_argument("--plc", nargs="+", choices=list(DEFAULT_PLC), default=list(DEFAULT_PLC),
                   help="LargeSC concealers to compare (default: lm repeat none)")
    p.add_argument("--adapter", default=None, help="LoRA adapter from `largesc finetune` for --plc lm")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from largesc_codec.evaluation.cli import run as run_eval
    from largesc_codec.evaluation.runner import Condition
    from largesc_codec.neural.model import load_models

    if args.losses:
        args.loss = (args.loss or []) + list(args.losses)
    conditions = []
    if args.largesc_bps:
        models = load_models(args.weights)
        tag = " (untrained weights)" if models.untrained else ""
        for bps in args.largesc_bps:
            for plc in args.plc:
                name = f"largesc-{bps:g}-{plc}{tag}"
                conditions.append(Condition(name, LargeSCCodec(models, bps, plc, args.adapter), "largesc", bps))
    run_eval(args, extra_conditions=conditions, command="largesc eval " + " ".join(_argv_tail()))
    return 0


def _argv_tail() -> list[str]:
    import shlex
    import sys

    return [shlex.quote(a) for a in sys.argv[2:]]
