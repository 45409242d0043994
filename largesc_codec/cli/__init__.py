"""The ``largesc`` command line: the entry point and the codec's own commands."""

from largesc_codec.cli.app import main

__all__ = ["main"]
