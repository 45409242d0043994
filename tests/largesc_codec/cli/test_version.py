"""`largesc --version` prints the installed distribution's version and exits 0."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import tomllib

from largesc_codec.cli.app import main

ROOT = Path(__file__).resolve().parents[3]


def test_version_is_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version("largesc") == declared
    assert capsys.readouterr().out == f"largesc {declared}\n"


def test_help_mentions_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--version" in capsys.readouterr().out
