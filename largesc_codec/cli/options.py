"""What every ``largesc`` command shares on its command line: the help layout and how weights are named.

``HelpFormatter`` keeps a command's description as written and ends each
option's help with its default, ``(default: X)``, the same way in every
command (none for flags, required options, options without a default, and
helps that already say theirs).

Weights: every command that loads the models takes ``--weights`` (``hub``,
``hf://owner/repo`` or a local directory). Without it, ``$LARGESC_WEIGHTS``
names them when set, else ``hub``; so after ``largesc make-test-weights DIR``
and ``export LARGESC_WEIGHTS=DIR`` every command runs offline as written.
This module imports neither torch nor moshi: parsers use it for their help.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

__all__ = ["HUB", "WEIGHTS_ENV", "HelpFormatter", "add_weights_argument", "default_weights"]

WEIGHTS_ENV = "LARGESC_WEIGHTS"
HUB = "hub"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description as written; ``(default: X)`` after every option that has a default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        shown = action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
        stated = "%(default)" in text or "(default" in text or "default:" in text  # a help that names it itself
        if (not shown or action.required or stated or default is None or default is False
                or default is argparse.SUPPRESS or isinstance(action, argparse._HelpAction)):
            return text
        if isinstance(default, (list, tuple)):
            value = " ".join(str(v) for v in default) if default else "none"
        else:
            value = str(default)
        return f"{text} (default: {value.replace('%', '%%')})"


def default_weights() -> str:
    """The weights a command uses without ``--weights``: ``$LARGESC_WEIGHTS`` when set, else ``hub``."""
    return os.environ.get(WEIGHTS_ENV, "").strip() or HUB


def add_weights_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "model weights",
                         kind: Callable[[str], Any] = str) -> None:
    """``--weights`` with the shared default (``default_weights``) and help text."""
    parser.add_argument(
        "--weights", default=default_weights(), type=kind, metavar="WEIGHTS",
        help=f"{what}: hub (the Kyutai model hub), hf://owner/repo, or a local directory (`largesc "
             f"make-test-weights DIR` writes small untrained ones); without --weights, ${WEIGHTS_ENV} when set")
