"""Command line of the baseline evaluation: ``python -m largesc_codec.evaluation``.

The ``largesc eval`` command can reuse it: ``add_arguments(parser)`` adds the
options, ``run(args, extra_conditions)`` runs the built-in conditions plus any
others (e.g. LargeSC) and writes the report.

    python -m largesc_codec.evaluation --speech librivox --seeds 0 1 2 --out out/eval
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from largesc_codec.evaluation.data import load_clips
from largesc_codec.evaluation.losses import default_losses, parse_profile
from largesc_codec.evaluation.opus_baseline import OPUS_BITRATES
from largesc_codec.evaluation.runner import (
    Condition,
    baseline_conditions,
    opus_conditions,
    reference_condition,
    run_conditions,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speech", default="librivox",
                   help="'librivox' (default), 'asterisk' or a LibriSpeech-layout directory")
    p.add_argument("--max-clips", type=int, default=None, help="use at most this many clips")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="channel seeds (default 0 1 2)")
    p.add_argument("--loss", action="append", default=None, metavar="SPEC",
                   help="channel spec 'none', 'uniform:P', 'ge:P[,R[,1-H[,1-K]]]' or 'lossgen:P' (Opus 1.5's "
                        "real-trace loss generator) (repeatable; default: uniform 0/5/10/20/30/40 %% and GE 10 %% "
                        "with mean bursts 2, 4, 8)")
    p.add_argument("--opus-kbps", type=float, nargs="*", default=[b / 1000 for b in OPUS_BITRATES],
                   help="Opus 1.3.1 bitrates in kbit/s, rows opus13-*k (default 6 9 12 16 24; none: no such rows)")
    p.add_argument("--baselines", nargs="*", default=[], metavar="NAME",
                   help="more baselines by name or pattern: opus15-{6,9,12,16,24}k (deep PLC + NoLACE), "
                        "opus15-dred-{16,24,32}k, codec2-{3200,2400,1600,1300,700c}, e.g. 'opus15-*' 'codec2-*'")
    p.add_argument("--no-reference", action="store_true", help="leave out the clean reference rows")
    p.add_argument("--metrics", nargs="+", default=["plcmos", "visqol", "wer"],
                   choices=["plcmos", "visqol", "wer"], help="metrics to compute (default all)")
    p.add_argument("--out", type=Path, default=Path("out/eval"), help="output directory (default out/eval)")
    p.add_argument("--title", default=None,
                   help="heading of results.md (default: the families compared, e.g. 'Evaluation: reference, Opus')")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


_FAMILY_NAMES = {"reference": "reference", "opus": "Opus 1.3.1", "opus15": "Opus 1.5.2", "codec2": "Codec 2",
                 "largesc": "LargeSC"}


def default_title(conditions: Sequence[Condition]) -> str:
    """'Evaluation: reference, Opus, LargeSC' from the families of ``conditions``."""
    families = dict.fromkeys(_FAMILY_NAMES.get(c.family, c.family or c.name) for c in conditions)
    return "Evaluation: " + ", ".join(families)


def run(args: argparse.Namespace, extra_conditions: Sequence[Condition] = (),
        command: str | None = None) -> list[dict[str, Any]]:
    """Run the conditions the options name (+ ``extra_conditions``); write the report to ``args.out``."""
    clips = load_clips(args.speech, args.max_clips)
    losses = [parse_profile(s) for s in args.loss] if args.loss else default_losses()
    conds: list[Condition] = [] if args.no_reference else [reference_condition()]
    conds += opus_conditions([int(round(k * 1000)) for k in args.opus_kbps])
    conds += baseline_conditions(args.baselines) if args.baselines else []
    conds += list(extra_conditions)
    start = time.time()
    rows = run_conditions(clips, conds, losses, args.seeds, out_dir=None,
                          progress=not args.quiet, metrics=args.metrics)
    elapsed = time.time() - start
    from largesc_codec.evaluation.libopus import version as opus_version
    from largesc_codec.evaluation.metrics import metric_versions
    from largesc_codec.evaluation.report import write_report

    cmd = command or " ".join(shlex.quote(a) for a in sys.argv)
    versions = {"libopus": opus_version().removeprefix("libopus "), **_baseline_versions(conds), **metric_versions()}
    notes = "\n".join([
        f"Command: `{cmd}`",
        "",
        f"{len(clips)} clips ({sum(c.seconds for c in clips):.1f} s of speech, source `{args.speech}`), "
        f"{len(conds)} conditions, {len(losses)} loss profiles, seeds {list(args.seeds)}: "
        f"{len(rows)} runs in {elapsed / 60:.1f} min wall-clock.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ])
    paths = write_report(rows, args.out, title=args.title or default_title(conds), notes=notes)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({elapsed / 60:.1f} min)")
    return rows


def _baseline_versions(conds: Sequence[Condition]) -> dict[str, str]:
    families = {c.family for c in conds}
    out: dict[str, str] = {}
    if "opus15" in families:
        from largesc_codec.evaluation.libopus import version
        from largesc_codec.evaluation.libopus15 import libopus15

        out["libopus (opus15 rows)"] = version(libopus15()).removeprefix("libopus ") + " (DRED, deep PLC, OSCE)"
    if "codec2" in families:
        from importlib.metadata import version as dist_version

        out["pycodec2"] = dist_version("pycodec2") + " (libcodec2 1.2)"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m largesc_codec.evaluation",
                                     description="Opus + reference baseline: PLCMOS, ViSQOL, WER over lossy channels.")
    add_arguments(parser)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv_list)
    command = "python -m largesc_codec.evaluation " + " ".join(shlex.quote(a) for a in argv_list)
    try:
        run(args, command=command)
    except (FileNotFoundError, ImportError, ValueError) as exc:
        print(f"evaluation: error: {exc}", file=sys.stderr)
        return 2
    return 0
