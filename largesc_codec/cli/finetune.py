"""``largesc finetune``: LoRA fine-tuning of the Moshi LM for concealment.

Speech files -> Mimi tokens -> seeded loss masks (one regime per --channel)
-> peft LoRA training -> adapters saved under OUT/<regime>/ -> held-out token
accuracy on lost frames with and without the adapter, for every regime on
every test channel (so uniform-trained and bursty-trained adapters can be
compared on both kinds of loss). Writes OUT/report.json (after every regime,
so a later failure keeps the earlier results). Pass OUT/<regime> to
`transmit --adapter` or `call/answer --adapter`.

One copy of the LM is held: the baseline is measured on it, then each
regime's adapters are added, trained, saved, evaluated and removed again.
On a GPU (--device cuda) the LM is bfloat16 by default (adapters train in
float32).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from largesc_codec.cli.options import HelpFormatter, add_weights_argument
from largesc_codec.neural.framing import check_audio_file
from largesc_codec.types import FRAME_MS

DEFAULT_CHANNELS = ["uniform:0.2", "ge:0.1,0.3"]
DTYPES = ("auto", "float32", "bfloat16")
FRAME_S = FRAME_MS / 1000.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "finetune",
        help="LoRA fine-tune the Moshi LM for token-domain packet-loss concealment",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="speech files or directories of them (wav/flac/ogg/mp3)")
    add_weights_argument(p)
    p.add_argument("--out", required=True, help="output directory: adapters in OUT/<regime>/, and report.json")
    p.add_argument("--channel", action="append", default=None,
                   help="training loss regime(s), e.g. uniform:0.2, ge:0.1,0.3 or lossgen:0.2 (repeatable; default: "
                        f"{' and '.join(DEFAULT_CHANNELS)})")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank")
    p.add_argument("--alpha", type=int, default=32, help="LoRA alpha (scale = alpha / rank)")
    p.add_argument("--targets", default=None, help="regex of module names to adapt (default: main transformer)")
    p.add_argument("--steps", type=int, default=300, help="training steps per regime")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (AdamW)")
    p.add_argument("--batch-size", type=int, default=4, help="training windows per step")
    p.add_argument("--seq-frames", type=int, default=64,
                   help="training window in 80 ms frames (64 = 5.1 s); shorter training files are skipped")
    p.add_argument("--heldout", type=float, default=0.2,
                   help="fraction of files held out for testing, in [0, 1) (at least one file)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the loss masks and the training")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="LM weights dtype (auto: float32 on CPU, bfloat16 on GPU)")
    p.set_defaults(func=run)


def _audio_files(inputs: list[str]) -> list[Path]:
    """The speech files named or found in the directories named; each opened once (a bad one fails here, cheaply)."""
    from largesc_codec.neural.audio_stream import AudioStream

    exts = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a"}
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in exts)
        else:
            files.append(check_audio_file(p, "input"))  # the shared wording: missing, empty, not a file
    for f in files:
        AudioStream(f, "input").close()  # decodes its first samples: the shared message for a bad file
    if len(files) < 2:
        raise ValueError(f"need at least 2 speech files (one is held out for testing), found {len(files)}")
    return files


def _slug(channel: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", channel).strip("_")


def check_args(args: argparse.Namespace) -> list[str]:
    """ValueError naming the option and the fix for anything that cannot train; returns the regimes.

    Runs before any model is loaded or file encoded.
    """
    import torch

    from largesc_codec.train.data import check_regime

    checks = [
        (args.rank >= 1, f"--rank {args.rank}: the LoRA rank must be at least 1 (e.g. 8 or 16)"),
        (args.alpha >= 1, f"--alpha {args.alpha}: must be at least 1 (e.g. twice --rank)"),
        (args.steps >= 1, f"--steps {args.steps}: train at least 1 step (e.g. 300)"),
        (math.isfinite(args.lr) and args.lr > 0, f"--lr {args.lr}: give a positive learning rate (e.g. 1e-3)"),
        (args.batch_size >= 1, f"--batch-size {args.batch_size}: must be at least 1"),
        (args.seq_frames >= 2, f"--seq-frames {args.seq_frames}: a training window needs at least 2 frames"),
        (0 <= args.heldout < 1, f"--heldout {args.heldout}: give a fraction in [0, 1) (at least one file is "
                                "held out, the rest train)"),
        (args.seed >= 0, f"--seed {args.seed}: give a seed >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    if args.targets is not None:
        try:
            re.compile(args.targets)
        except re.error as exc:
            raise ValueError(f"--targets {args.targets!r} is not a valid regular expression ({exc})") from None
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ValueError(f"--device {args.device}: give cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {args.device}: give cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: no CUDA GPU is usable here (torch {torch.__version__}); "
                         "use --device cpu")
    channels: list[str] = args.channel or DEFAULT_CHANNELS
    for spec in channels:
        check_regime(spec)  # ValueError with the grammar for a bad spec, or when it drops nothing
    slugs = [_slug(c) for c in channels]
    if len(set(slugs)) < len(slugs):
        raise ValueError(f"--channel given twice (adapter directories {', '.join(slugs)} collide): give each once")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a directory for the adapters and report.json")
    return channels


def _split(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    files = _audio_files(args.inputs)
    n_test = max(1, int(round(len(files) * args.heldout)))
    if n_test >= len(files):
        raise ValueError(f"--heldout {args.heldout} holds out all {len(files)} files, leaving none to train on: "
                         "give a smaller --heldout or more files")
    return files[:-n_test], files[-n_test:]


def _loss_summary(losses: list[float]) -> tuple[float, float, int]:
    """Mean loss over the first and last ``w`` steps, non-overlapping windows (w = min(10, steps // 2))."""
    w = max(1, min(10, len(losses) // 2))
    return float(np.mean(losses[:w])), float(np.mean(losses[-w:])), w


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from largesc_codec.neural.model import load_models
    from largesc_codec.train import finetune as ft
    from largesc_codec.train.data import split_by_length

    channels = check_args(args)
    train_files, test_files = _split(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ft.FinetuneConfig(
        rank=args.rank, alpha=args.alpha, targets=args.targets or ft.DEFAULT_TARGETS, steps=args.steps,
        lr=args.lr, batch_size=args.batch_size, seq_frames=args.seq_frames, seed=args.seed,
    )
    models = load_models(args.weights, device=args.device)
    dtype = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    lm = models.load_lm(dtype=dtype)  # the only copy: baseline, then each regime's adapters in turn
    ft.check_targets(lm, cfg.targets)

    print(f"encoding {len(train_files) + len(test_files)} files with Mimi "
          f"({len(train_files)} train, {len(test_files)} held out)")
    train_seqs = ft.encode_files(tqdm(train_files, desc="encode train", unit="file"), models)
    test_seqs = ft.encode_files(tqdm(test_files, desc="encode held-out", unit="file"), models)
    keep, short = split_by_length(train_seqs, cfg.seq_frames)
    skipped = [str(train_files[i]) for i in short]
    if short:
        print(f"skipping {len(short)} training file(s) shorter than --seq-frames {cfg.seq_frames} "
              f"({cfg.seq_frames * FRAME_S:.2f} s): {', '.join(skipped)}")
    if not keep:
        raise ValueError(f"no training file is at least --seq-frames {cfg.seq_frames} frames "
                         f"({cfg.seq_frames * FRAME_S:.2f} s) long: give a smaller --seq-frames or longer speech")
    train_files, train_seqs = [train_files[i] for i in keep], [train_seqs[i] for i in keep]
    train_masks = {c: [ft.loss_mask(len(s), c, seed=args.seed + i) for i, s in enumerate(train_seqs)]
                   for c in channels}
    for c, masks in train_masks.items():
        if not any(m.any() for m in masks):
            raise ValueError(f"--channel {c} drops none of the {sum(map(len, masks))} training frames: give a "
                             "higher loss rate or more speech")
    test_masks = {c: [ft.loss_mask(len(s), c, seed=args.seed + 1000 + i) for i, s in enumerate(test_seqs)]
                  for c in channels}

    def evaluate(model: Any, label: str) -> dict[str, dict[str, float]]:
        return {c: ft.lost_frame_accuracy(model, tqdm(test_seqs, desc=f"eval {label} on {c}", unit="file"), m)
                for c, m in test_masks.items()}

    report: dict[str, Any] = {
        "weights": args.weights, "untrained_weights": models.untrained, "device": args.device,
        "dtype": str(next(lm.parameters()).dtype).removeprefix("torch."),
        "train_files": [str(f) for f in train_files], "skipped_short_files": skipped,
        "test_files": [str(f) for f in test_files], "config": asdict(cfg),
        "baseline": evaluate(lm, "no adapter"), "regimes": {},
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(report, indent=1, allow_nan=False))
    for regime in channels:
        peft_lm = ft.add_lora(lm, cfg)
        bar = tqdm(total=cfg.steps, desc=f"train {regime}", unit="step")

        def tick(step: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")

        losses = ft.train(peft_lm, train_seqs, train_masks[regime], cfg, progress=tick)
        bar.close()
        adapter_dir = out / _slug(regime)
        peft_lm.save_pretrained(str(adapter_dir))
        acc = evaluate(peft_lm, regime)
        lm = peft_lm.unload()  # the base LM again (adapters removed, base weights were frozen)
        first, last, w = _loss_summary(losses)
        report["regimes"][regime] = {"adapter": str(adapter_dir), "loss_first": first, "loss_last": last,
                                     "loss_window_steps": w, "losses": losses, "heldout_accuracy": acc}
        report_path.write_text(json.dumps(report, indent=1, allow_nan=False))
        trend = f"loss {first:.3f} (1 step)" if len(losses) == 1 else \
            f"loss {first:.3f} -> {last:.3f} (mean of first / last {w} step{'s' if w > 1 else ''})"
        print(f"{regime}: {trend}; adapter in {adapter_dir}")
    print("\nheld-out token accuracy on lost frames (cb0 / all 8 codebooks):")
    print(f"{'trained on':<22}" + "".join(f"{'test ' + c:>26}" for c in channels))
    rows = [("no adapter", report["baseline"])] + [(r, v["heldout_accuracy"]) for r, v in report["regimes"].items()]
    for name, acc in rows:
        print(f"{name:<22}" + "".join(f"{acc[c]['cb0']:>17.3f} / {acc[c]['all']:.3f}" for c in channels))
    if models.untrained:
        print("(untrained test weights: figures show the mechanics, not concealment quality)")
    print(f"report: {report_path}")
    return 0
