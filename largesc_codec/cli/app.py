"""The ``largesc`` command: a registry of subcommands, each in its own module.

The codec's own commands are listed in ``BUILTIN``; other packages add theirs
through the ``largesc.commands`` entry-point group (``sip_agent`` adds
``call``, ``answer``, ``register`` and ``lab``), so this layer never names
them. An entry is ``module:function``, and ``function(subparsers)`` adds the
command's parser and sets ``func``. Errors that users can fix (bad files,
missing weights, bad options) are reported as one line naming the problem and
the fix, exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Callable, Sequence

PLUGIN_GROUP = "largesc.commands"
# name -> "module:function"; modules are imported lazily so `largesc --help` does not pay
# for torch, and a missing optional piece only breaks its own command.
BUILTIN: dict[str, str] = {
    "make-test-weights": "largesc_codec.cli.weights:register",
    "transmit": "largesc_codec.cli.transmit:register",
    "finetune": "largesc_codec.cli.finetune:register",
    "bench": "largesc_codec.cli.bench:register",
    "eval": "largesc_codec.cli.eval:register",
}
Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def commands() -> dict[str, str]:
    """Every subcommand: the built-in ones, then those registered by installed plug-ins."""
    found = dict(BUILTIN)
    for ep in entry_points(group=PLUGIN_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _register_function(target: str) -> Register:
    module, _, attr = target.partition(":")
    fn: Register = getattr(importlib.import_module(module), attr or "register")
    return fn


def package_version() -> str:
    """The installed distribution's version (what ``pip show largesc`` says)."""
    try:
        return version("largesc")
    except PackageNotFoundError:  # a bare checkout on sys.path: no metadata to read
        return "unknown (not installed: run `pip install -e .` in the checkout)"


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def build_parser(names: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="largesc",
        description="LargeSC: speech over lossy networks at 0.55-2 kbit/s (Mimi tokens, UEP, LM concealment).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    table = commands()
    done: set[Register] = set()
    for name in names or table:
        fn = _register_function(table[name])
        if fn not in done:  # one function may add several commands (call, answer, register)
            fn(sub)
            done.add(fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Only import the chosen subcommand's module when it is named (fast --help for the rest).
    chosen = [a for a in args_list if a in commands()][:1]
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
        from largesc_codec.neural.model import WeightsError

        if isinstance(exc, WeightsError):
            print(f"largesc {args.command}: error: {exc}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
