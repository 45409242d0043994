"""The ``largesc`` command: a registry of subcommands, each in its own module.

Every subcommand module exposes ``register(subparsers)`` which adds its parser
and sets ``func``. Errors that users can fix (bad files, missing weights, bad
options) are reported as one line naming the problem and the fix, exit code 2;
no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

# name -> module providing register(subparsers); imported lazily so `largesc --help`
# does not pay for torch, and a missing optional piece only breaks its own command.
SUBCOMMANDS: dict[str, str] = {
    "make-test-weights": "largesc_codec.cmd_weights",
    "transmit": "largesc_codec.transmit",
    "finetune": "largesc_codec.cmd_finetune",
    "bench": "largesc_codec.latency",
    "eval": "largesc_codec.cmd_eval",
    "lab": "largesc_codec.cmd_lab",
    # One module mounts the SIP agent's three commands (its register() is idempotent).
    "call": "largesc_codec.cmd_sip",
    "answer": "largesc_codec.cmd_sip",
    "register": "largesc_codec.cmd_sip",
}


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def build_parser(names: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="largesc",
        description="LargeSC: speech over lossy networks at 0.55-2 kbit/s (Mimi tokens, UEP, LM concealment).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in names or SUBCOMMANDS:
        importlib.import_module(SUBCOMMANDS[name]).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Only import the chosen subcommand's module when it is named (fast --help for the rest).
    chosen = [a for a in args_list if a in SUBCOMMANDS][:1]
    parser = build_parser(chosen or None)
    args = parser.parse_args(args_list)
    threads = int(os.environ.get("LARGESC_THREADS", "0") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("largesc: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError, ImportError) as exc:  # ImportError: a missing package, named
        print(f"largesc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from .model import WeightsError

        if isinstance(exc, WeightsError):
            print(f"largesc {args.command}: error: {exc}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
