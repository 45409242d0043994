"""``largesc make-test-weights DIR``: small random checkpoints for tests and offline runs."""

from __future__ import annotations

import argparse

from largesc_codec.cli.options import WEIGHTS_ENV, HelpFormatter


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "make-test-weights",
        help="write small UNTRAINED Mimi + Moshi LM checkpoints in the hub repo's format",
        description=(
            "Write small random Mimi and Moshi LM checkpoints (config.json, model.safetensors, "
            "Mimi safetensors) to DIR, in the file formats moshi's loaders read. They are "
            "untrained: audio decoded with them is not speech. Use them with --weights DIR, or "
            f"export {WEIGHTS_ENV}=DIR so every command uses them, to run everything offline."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("dir", help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from largesc_codec.train.testweights import make_test_weights

    out = make_test_weights(args.dir, seed=args.seed)
    print(f"wrote untrained test weights to {out} (audio decoded with them is not speech); "
          f"use them with --weights {out}, or `export {WEIGHTS_ENV}={out}` for every command")
    return 0
