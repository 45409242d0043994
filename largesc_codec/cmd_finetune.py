"""``largesc finetune``: LoRA fine-tuning of the Moshi LM for concealment.

Speech files -> Mimi tokens -> seeded loss masks (one regime per --channel)
-> peft LoRA training -> adapters saved under OUT/<regime>/ -> held-out token
accuracy on lost frames with and without the adapter, for every regime on
every test channel (so uniform-trained and bursty-trained adapters can be
compared on both kinds of loss). Writes OUT/report.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CHANNELS = ["uniform:0.2", "ge:0.1,0.3"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="LoRA fine-tune the Moshi LM for token-domain packet-loss concealment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="speech files or directories of them (wav/flac/ogg/mp3)")
    p.add_argument("--weights", default="hub", help="hub, hf://owner/repo, or a local weights directory")
    p.add_argument("--out", required=True, help="output directory for adapters and report.json")
    p.add_argument("--channel", action="append", default=None,
                   help="training loss regime(s), e.g. uniform:0.2 or ge:0.1,0.3 (repeatable; default: both)")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha (default 32)")
    p.add_argument("--targets", default=None, help="regex of module names to adapt (default: main transformer)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-frames", type=int, default=64, help="training window in 80 ms frames")
    p.add_argument("--heldout", type=float, default=0.2, help="fraction of files held out (at least one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def _audio_files(inputs: list[str]) -> list[Path]:
    exts = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a"}
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in exts)
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"{p} does not exist: give speech files or directories holding them")
    if len(files) < 2:
        raise ValueError(f"need at least 2 speech files (one is held out for testing), found {len(files)}")
    return files


def _slug(channel: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", channel).strip("_")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from . import finetune as ft
    from .channel import parse_channel
    from .model import load_models

    channels = args.channel or DEFAULT_CHANNELS
    for spec in channels:
        parse_channel(spec, seed=0)  # fail early on a bad spec
    files = _audio_files(args.inputs)
    n_test = max(1, int(round(len(files) * args.heldout)))
    train_files, test_files = files[:-n_test], files[-n_test:]
    models = load_models(args.weights, device=args.device)
    print(f"encoding {len(files)} files with Mimi ({len(train_files)} train, {len(test_files)} held out)")
    train_seqs = ft.encode_files(train_files, models)
    test_seqs = ft.encode_files(test_files, models)
    cfg = ft.FinetuneConfig(
        rank=args.rank, alpha=args.alpha, targets=args.targets or ft.DEFAULT_TARGETS, steps=args.steps,
        lr=args.lr, batch_size=args.batch_size, seq_frames=args.seq_frames, seed=args.seed,
    )
    test_masks = {c: [ft.loss_mask(len(s), c, seed=args.seed + 1000 + i) for i, s in enumerate(test_seqs)]
                  for c in channels}
    base = models.load_lm(dtype=torch.float32)
    report: dict[str, Any] = {"weights": args.weights, "untrained_weights": models.untrained,
                              "train_files": [str(f) for f in train_files],
                              "test_files": [str(f) for f in test_files], "config": vars(cfg),
                              "baseline": {c: ft.lost_frame_accuracy(base, test_seqs, m) for c, m in test_masks.items()},
                              "regimes": {}}
    out = Path(args.out)
    for regime in channels:
        lm = ft.add_lora(models.load_lm(dtype=torch.float32), cfg)
        masks = [ft.loss_mask(len(s), regime, seed=args.seed + i) for i, s in enumerate(train_seqs)]
        bar = tqdm(total=cfg.steps, desc=f"train {regime}", unit="step")

        def tick(step: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")

        losses = ft.train(lm, train_seqs, masks, cfg, progress=tick)
        bar.close()
        adapter_dir = out / _slug(regime)
        lm.save_pretrained(str(adapter_dir))
        acc = {c: ft.lost_frame_accuracy(lm, test_seqs, m) for c, m in test_masks.items()}
        first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
        report["regimes"][regime] = {"adapter": str(adapter_dir), "loss_first10": first, "loss_last10": last,
                                     "heldout_accuracy": acc}
        print(f"{regime}: loss {first:.3f} -> {last:.3f}; adapter in {adapter_dir}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print("\nheld-out token accuracy on lost frames (cb0 / all 8 codebooks):")
    print(f"{'trained on':<22}" + "".join(f"{'test ' + c:>26}" for c in channels))
    rows = [("no adapter", report["baseline"])] + [(r, v["heldout_accuracy"]) for r, v in report["regimes"].items()]
    for name, acc in rows:
        print(f"{name:<22}" + "".join(f"{acc[c]['cb0']:>17.3f} / {acc[c]['all']:.3f}" for c in channels))
    if models.untrained:
        print("(untrained test weights: figures show the mechanics, not concealment quality)")
    print(f"report: {out / 'report.json'}")
    return 0
