"""``largesc make-test-weights DIR [--mimi small|full]``: random checkpoints for tests and offline runs."""

from __future__ import annotations

import argparse

from largesc_codec.cli.options import WEIGHTS_ENV, HelpFormatter


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "make-test-weights",
        help="write UNTRAINED Mimi (small or full-size) + small Moshi LM checkpoints in the hub repo's format",
        description=(
            "Write random Mimi and small Moshi LM checkpoints (config.json, model.safetensors, "
            "Mimi safetensors) to DIR, in the file formats moshi's loaders read. They are "
            "untrained: audio decoded with them is not speech. Use them with --weights DIR, or "
            f"export {WEIGHTS_ENV}=DIR so every command uses them, to run everything offline. "
            "--mimi full writes moshi's full-size Mimi (79.3 M parameters, about 320 MB; same token "
            "format as the small one) for runs that must cost what the real Mimi costs; the LM stays small."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("dir", help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--mimi", choices=("small", "full"), default="small",
                   help="Mimi size: small (narrow layers, fast) or full (moshi's full-size config)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from largesc_codec.train.testweights import make_test_weights

    out = make_test_weights(args.dir, seed=args.seed, mimi=args.mimi)
    print(f"wrote untrained test weights ({args.mimi} Mimi, small LM) to {out} "
          f"(audio decoded with them is not speech); use them with --weights {out}, "
          f"or `export {WEIGHTS_ENV}={out}` for every command")
    return 0
