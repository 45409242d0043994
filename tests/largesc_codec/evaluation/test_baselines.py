"""The baseline registry: names, patterns, and the one function other code calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from largesc_codec.evaluation.baselines import BASELINES
from largesc_codec.evaluation.runner import baseline_conditions, opus_conditions


def test_every_issue_15_name_is_registered_in_table_order() -> None:
    want = ([f"opus13-{k}k" for k in (6, 9, 12, 16, 24)] + [f"opus15-{k}k" for k in (6, 9, 12, 16, 24)]
            + [f"opus15-dred-{k}k" for k in (16, 24, 32)]
            + [f"codec2-{m}" for m in ("3200", "2400", "1600", "1300", "700c")])
    assert list(BASELINES) == want
    assert [c.name for c in baseline_conditions()] == want  # everything is installed here by make setup


def test_patterns_and_errors() -> None:
    assert [c.name for c in baseline_conditions(["opus15-dred-*", "codec2-700c"])] == [
        "opus15-dred-16k", "opus15-dred-24k", "opus15-dred-32k", "codec2-700c"]
    assert [c.name for c in opus_conditions([9000])] == ["opus13-9k"]
    with pytest.raises(ValueError, match="no baseline matches"):
        baseline_conditions(["opus-9k"])


def test_evaluation_command_runs_new_baselines_on_lossgen(tmp_path: Path) -> None:
    import csv

    from largesc_codec.evaluation.cli import main

    out = tmp_path / "eval"
    rc = main(["--max-clips", "1", "--seeds", "0", "--loss", "lossgen:0.2", "--opus-kbps", "--no-reference",
               "--baselines", "opus15-9k", "codec2-1300", "--metrics", "plcmos", "--out", str(out), "--quiet"])
    assert rc == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["condition"], r["loss_model"], r["channel"]) for r in rows] == [
        ("opus15-9k", "lossgen", "lossgen:0.2"), ("codec2-1300", "lossgen", "lossgen:0.2")]
    md = (out / "results.md").read_text()
    assert "| opus15-9k | lossgen 20% |" in md and "Opus 1.5.2, Codec 2" in md and "pycodec2 4.1.1" in md
