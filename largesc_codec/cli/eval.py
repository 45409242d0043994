"""``largesc eval``: LargeSC against Opus and no-concealment baselines, one command.

Every condition runs at the same channel seeds (evaluation/runner.py): clean
reference, Opus at 6..24 kbit/s through libopus (its own PLC and in-band FEC),
and LargeSC at several payload budgets with LM, repeat and no concealment. With
untrained test weights the LargeSC rows are labelled "untrained weights"; with
the hub weights the same command gives the real comparison.

``--paper`` runs the whole table of the research (evaluation/paper.py: LargeSC
at 550 / 1100 / 2062.5 bit/s with every concealer, every baseline this
installation has, uniform, bursty and real-trace loss, all three metrics);
``--jobs N`` runs conditions in N processes.
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
    p.add_argument("--paper", action="store_true",
                   help="the research's table: LargeSC at 550/1100/2062.5 bit/s x lm/repeat/none, every baseline "
                        "(Opus 1.3.1, Opus 1.5.2 with deep PLC/NoLACE and DRED, Codec 2, as installed), uniform "
                        "0-40 %%, GE bursts 2/4/8 and lossgen 5/10/20 %%, PLCMOS + ViSQOL + WER")
    p.add_argument("--jobs", type=int, default=1, help="run the conditions in this many processes (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from largesc_codec.evaluation.cli import run as run_eval
    from largesc_codec.neural.model import load_models

    if args.jobs < 1:
        raise SystemExit(f"largesc eval: error: --jobs {args.jobs}: give 1 or more processes")
    if args.losses:
        args.loss = (args.loss or []) + list(args.losses)
    if args.paper:
        return run_paper(args)
    conditions = []
    if args.largesc_bps:
        conditions = largesc_conditions(load_models(args.weights), args.largesc_bps, args.plc, args.adapter)
    run_eval(args, extra_conditions=conditions, command="largesc eval " + " ".join(_argv_tail()))
    return 0


def largesc_conditions(models: Any, budgets: Any, plcs: Any, adapter: str | None) -> list[Any]:
    """One condition per budget x concealer, labelled when the weights are untrained."""
    from largesc_codec.evaluation.runner import Condition

    tag = " (untrained weights)" if models.untrained else ""
    return [Condition(f"largesc-{bps:g}-{plc}{tag}", LargeSCCodec(models, bps, plc, adapter), "largesc", bps)
            for bps in budgets for plc in plcs]


def _one_torch_thread() -> None:
    """In each --jobs worker: one core per process."""
    import torch

    torch.set_num_threads(1)


def paper_command(args: argparse.Namespace) -> str:
    """The ``--paper`` command line that makes this report (from the parsed options, however they came)."""
    import shlex

    parts = ["largesc", "eval", "--paper", "--weights", str(args.weights), "--speech", str(args.speech)]
    if args.max_clips is not None:
        parts += ["--max-clips", str(args.max_clips)]
    parts += ["--seeds", *map(str, args.seeds)]
    if args.loss:
        parts += ["--losses", *args.loss]
    if list(args.metrics) != ["plcmos", "visqol", "wer"]:
        parts += ["--metrics", *args.metrics]
    parts += ["--jobs", str(args.jobs), "--out", str(args.out)]
    return " ".join(shlex.quote(p) for p in parts)


def run_paper(args: argparse.Namespace) -> int:
    """``--paper``: the whole table, in ``--jobs`` processes, written to ``--out``."""
    import time

    from largesc_codec.evaluation.data import load_clips
    from largesc_codec.evaluation.losses import parse_profile
    from largesc_codec.evaluation.metrics import metric_versions
    from largesc_codec.evaluation.paper import PAPER_BPS, baselines, paper_losses, run_parallel
    from largesc_codec.evaluation.report import write_report
    from largesc_codec.evaluation.runner import reference_condition
    from largesc_codec.neural.model import load_models

    clips = load_clips(args.speech, args.max_clips)  # cheap checks before the models load
    losses = [parse_profile(spec) for spec in args.loss] if args.loss else paper_losses()
    if args.jobs > 1:
        import torch

        torch.set_num_threads(1)  # no OpenMP pool before the workers fork (libgomp hangs in a forked child)
    models = load_models(args.weights)
    conds = [reference_condition(), *baselines(), *largesc_conditions(models, PAPER_BPS, DEFAULT_PLC, args.adapter)]
    start = time.time()
    rows = run_parallel(clips, conds, losses, args.seeds, jobs=args.jobs, metrics=args.metrics,
                        progress=not args.quiet, worker_init=_one_torch_thread)
    elapsed = time.time() - start
    weights = "UNTRAINED test weights: the LargeSC rows are not speech" if models.untrained else f"weights {args.weights}"
    notes = "\n".join([
        f"Command: `{paper_command(args)}`",
        "",
        f"{len(clips)} clips ({sum(c.seconds for c in clips):.1f} s of speech, source `{args.speech}`), "
        f"{len(conds)} conditions, {len(losses)} loss profiles, seeds {list(args.seeds)}: {len(rows)} runs in "
        f"{elapsed / 60:.1f} min wall-clock on {args.jobs} process(es); {weights}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in metric_versions().items()),
    ])
    title = args.title or ("Paper table" + (" (untrained test weights)" if models.untrained else ""))
    paths = write_report(rows, args.out, title=title, notes=notes)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({elapsed / 60:.1f} min)")
    return 0


def _argv_tail() -> list[str]:
    import shlex
    import sys

    return [shlex.quote(a) for a in sys.argv[2:]]
