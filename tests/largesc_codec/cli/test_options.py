"""The `largesc` command line behaves the same in every command: help, defaults, how weights are named.

Every subcommand (the codec's own and those plug-ins add) has a one-line
description and shows each option's default; ``register`` lists only what it
uses. ``--weights`` of every command defaults to ``$LARGESC_WEIGHTS`` (else
hub), so after ``make-test-weights DIR`` and ``export LARGESC_WEIGHTS=DIR``
the commands run offline without ``--weights``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from largesc_codec.cli.app import build_parser, commands, main
from largesc_codec.cli.options import WEIGHTS_ENV, HelpFormatter
from largesc_codec.neural.framing import write_wav

# Options whose line another change owns (the --plc choices from the concealer registry): no help there yet.
NO_HELP_YET = {("bench latency", "--plc")}


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(full name, one-line help, parser) of every subcommand, nested ones (bench latency) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                yield full, helps.get(name) or "", sub
                yield from _subcommands(sub, full + " ")


def _shows_default(action: argparse.Action) -> bool:
    default = action.default
    return (default is not None and default is not False and default is not argparse.SUPPRESS and not action.required
            and (bool(action.option_strings) or action.nargs in ("?", "*")))


def test_every_subcommand_has_a_description_and_shows_its_defaults() -> None:
    found = list(_subcommands(build_parser()))
    assert {name for name, _, _ in found} >= set(commands()) | {"bench latency"}
    missing_help = set()
    for name, text, sub in found:
        assert text and "\n" not in text, name  # one line in `largesc --help`
        assert sub.description, name
        assert sub.formatter_class is HelpFormatter, name  # the same layout everywhere
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing_help.add((name, action.option_strings[0] if action.option_strings else action.dest))
                continue
            if _shows_default(action):
                shown = formatter._expand_help(action)
                assert "default" in shown, (name, action.option_strings, shown)
    assert missing_help <= NO_HELP_YET, missing_help


def test_help_ends_an_option_with_its_default_once() -> None:
    help_text = " ".join(next(s for n, _, s in _subcommands(build_parser(["transmit"])) if n == "transmit")
                         .format_help().split())
    for expected in ("channel seed (default: 0)", "(default: uniform:0.1)", "(default: 400.0)"):
        assert expected in help_text
    assert "(default 0)" not in help_text and help_text.count("(default: 8)") == 1


def test_register_lists_only_the_options_it_uses() -> None:
    register = next(s for n, _, s in _subcommands(build_parser(["register"])) if n == "register")
    options = {o for a in register._actions for o in a.option_strings}
    assert options == {"-h", "--help", "--sip-port", "--bind", "--transport", "--user", "--password", "--domain",
                       "--registrar", "--sip-log", "--report-json", "--tls-cert", "--tls-key", "--tls-ca",
                       "--tls-verify", "--no-tls-verify", "--tls-verify-client"}
    call = next(s for n, _, s in _subcommands(build_parser(["call"])) if n == "call")
    assert {"--play", "--record", "--duration", "--maxbps", "--weights"} <= {
        o for a in call._actions for o in a.option_strings}


WEIGHTED = [["transmit", "in.wav", "out.wav"], ["bench", "latency"], ["eval"], ["finetune", "clips", "--out", "o"],
            ["call", "sip:bob@127.0.0.1"], ["answer", "--port", "5062"], ["lab", "--play", "x.wav"]]


@pytest.mark.parametrize("argv", WEIGHTED, ids=lambda a: a[0])
def test_every_command_names_its_weights_the_same_way(argv: list[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    other.mkdir()  # lab checks that a named directory exists while parsing
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert build_parser([argv[0]]).parse_args(argv).weights == "hub"
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    parser = build_parser([argv[0]])
    assert parser.parse_args(argv).weights == str(tmp_path)
    assert parser.parse_args([*argv, "--weights", str(other)]).weights == str(other)  # --weights overrides
    sub = {n: s for n, _, s in _subcommands(parser)}[" ".join(argv[:2]) if argv[0] == "bench" else argv[0]]
    shown = "".join(sub.format_help().split())  # wrapping may break a long path at its hyphens
    assert f"(default:{tmp_path})" in shown and f"${WEIGHTS_ENV}" in shown


def test_transmit_and_bench_run_offline_on_the_weights_the_environment_names(
        tmp_path: Path, test_weights: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(test_weights))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    speech = tmp_path / "tone.wav"
    write_wav(speech, 0.3 * np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 300).astype(np.float32), 24_000)
    report = tmp_path / "r.json"
    assert main(["transmit", str(speech), str(tmp_path / "out.wav"), "--plc", "repeat", "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["weights"] == str(test_weights) and r["untrained_weights"] is True
    figures = tmp_path / "b.json"
    assert main(["bench", "latency", str(speech), "--mimi", "weights", "--plc", "repeat", "--frames", "20",
                 "--runs", "1", "--phases", "1", "--threads", "1", "--json", str(figures), "--mimi-precision", "fp16"]) == 0
    b = json.loads(figures.read_text())
    assert b["args"]["weights"] == str(test_weights) and b["untrained_weights"] is True
    out = capsys.readouterr().out
    assert b["args"]["mimi_precision"] == "fp16" and "weights Mimi (fp16)" in out and "nan" not in out, out
    best = b["runs"][0]["best"]
    assert all(math.isfinite(v) for v in best.values() if isinstance(v, float)), best


@pytest.mark.parametrize("extra, why", [
    (["--frames", "8", "--runs", "1", "--phases", "1"], "--frames 8 is too small to measure: give at least 20"),
    (["--frames", "19"], "--frames 19 is too small to measure: give at least 20"),
    (["--runs", "0"], "--runs 0 is too small to measure: give at least 1"),
    (["--phases", "0"], "--phases 0 is too small to measure: give at least 1"),
    (["--loss", "1"], "--loss 1.0 must be in [0, 1)"),
])
def test_bench_refuses_settings_too_small_to_measure(tmp_path: Path, extra: list[str], why: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # No weights needed: the settings are checked before anything is loaded.
    assert main(["bench", "latency", "--weights", str(tmp_path / "none"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert why in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_bench_never_prints_nan_when_nothing_was_measured(tmp_path: Path, test_weights: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # 99 % loss, seeded: no packet after the start-up arrives, so no steady-state figure exists.
    assert main(["bench", "latency", "--weights", str(test_weights), "--mimi", "weights", "--plc", "repeat",
                 "--frames", "20", "--runs", "1", "--phases", "1", "--threads", "1", "--loss", "0.99"]) == 1
    out, err = capsys.readouterr()
    assert "nan" not in out.lower() and "measured no" in err and len(err.strip().splitlines()) == 1, (out, err)
