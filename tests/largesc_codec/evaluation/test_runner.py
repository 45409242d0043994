"""Runner end to end on two short clips and two loss rates: Opus + reference rows, report files."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from largesc_codec.evaluation.data import Clip, resample
from largesc_codec.evaluation.losses import gilbert_elliott, make_channel, parse_profile, uniform
from largesc_codec.evaluation.runner import (
    Condition,
    opus_conditions,
    reference_condition,
    run_condition,
    run_conditions,
)

LOSSES = [uniform(0.0), uniform(0.3)]


@pytest.fixture(scope="module")
def opus_run(short_clips: list[Clip], tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    out = tmp_path_factory.mktemp("eval")
    conds = [reference_condition(), *opus_conditions([12000, 24000])]
    rows = run_conditions(short_clips, conds, LOSSES, seeds=[0], out_dir=out, progress=False)
    return rows, out


def _mean(rows: list[dict[str, Any]], cond: str, channel: str, key: str) -> float:
    vals = [r[key] for r in rows if r["condition"] == cond and r["channel"] == channel]
    assert vals, (cond, channel)
    return float(np.mean(vals))


def test_rows_cover_every_condition_clip_and_loss(opus_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, _ = opus_run
    assert len(rows) == 2 * (1 + 2 * len(LOSSES))
    assert sum(r["condition"] == "reference" for r in rows) == 2
    for r in rows:
        assert 1.0 <= r["plcmos"] <= 5.0 and 1.0 <= r["visqol"] <= 5.0 and r["wer"] >= 0.0
        if r["family"] == "opus":
            assert r["payload_bps"] <= 1.05 * r["requested_bps"]
            assert r["wire_bps"] == pytest.approx(r["payload_bps"] + 16000)
    # Same clip, channel and seed -> the same loss pattern for both Opus rates (20 ms packets).
    for clip in {r["clip"] for r in rows}:
        lost = {r["condition"]: r["lost_fraction"] for r in rows
                if r["clip"] == clip and r["channel"] == "uniform:0.3"}
        assert lost["opus13-12k"] == lost["opus13-24k"] > 0.1


def test_quality_falls_as_loss_rises(opus_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, _ = opus_run
    for cond in ("opus13-12k", "opus13-24k"):
        for metric in ("plcmos", "visqol"):
            clean, lossy = _mean(rows, cond, "uniform:0", metric), _mean(rows, cond, "uniform:0.3", metric)
            assert lossy < clean - 0.2, (cond, metric, clean, lossy)
        assert _mean(rows, cond, "uniform:0.3", "wer") >= _mean(rows, cond, "uniform:0", "wer") - 0.05
    # The clean reference beats Opus at 12 kbit/s without loss.
    assert _mean(rows, "reference", "none", "visqol") > _mean(rows, "opus13-12k", "uniform:0", "visqol")


def test_report_files_have_the_rows(opus_run: tuple[list[dict[str, Any]], Path]) -> None:
    rows, out = opus_run
    with (out / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    with (out / "summary.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 1 + 2 * len(LOSSES)
    md = (out / "results.md").read_text()
    assert "| opus13-24k | uniform 30% |" in md and "| reference | none |" in md
    for png in ("quality_vs_loss_uniform.png", "quality_vs_bitrate.png"):
        assert (out / png).stat().st_size > 10_000
    assert not (out / "quality_vs_burst_ge.png").exists()  # uniform loss only: no GE figure


def test_plugged_in_codec_callable(short_clips: list[Clip]) -> None:
    """A LargeSC-style callable: 80 ms packets, 24 kHz output, plain 5-tuple result."""

    def zero_lost_packets(pcm: np.ndarray, rate: int, channel: Any) -> tuple:
        y = resample(pcm, rate, 24000).copy()
        lost = channel.losses(-(-len(y) // 1920))
        for i in np.flatnonzero(lost):
            y[i * 1920: (i + 1) * 1920] = 0.0
        return y, 24000, 1100.0, 1100.0 + 40 * 8 * 12.5, float(lost.mean())

    cond = Condition("gaps", zero_lost_packets, "test", 1100.0)
    clip = short_clips[0]
    clean = run_condition(clip, cond, uniform(0.0), 0, metrics=("plcmos",))
    lossy = run_condition(clip, cond, uniform(0.4), 0, metrics=("plcmos",))
    again = run_condition(clip, cond, uniform(0.4), 0, metrics=("plcmos",))
    assert clean["concealed_fraction"] == 0.0 and lossy["concealed_fraction"] > 0.2
    assert lossy["plcmos"] < clean["plcmos"] - 0.5
    assert again["plcmos"] == lossy["plcmos"]  # seeded channel, seeded PLCMOS


def test_loss_profiles() -> None:
    ge = gilbert_elliott(0.1, 4)
    assert ge.family == "ge" and ge.mean_burst == 4
    p, r = (float(v) for v in ge.spec.split(":")[1].split(","))
    assert r == pytest.approx(0.25) and p / (p + r) == pytest.approx(0.1, rel=1e-4)
    assert parse_profile(ge.spec).loss_rate == pytest.approx(0.1, rel=1e-4)
    assert parse_profile("uniform:0.2") == uniform(0.2)
    with pytest.raises(ValueError, match="uniform:P"):
        parse_profile("bursty:3")
    # Stationary loss of the real channel model matches the profile.
    lost = make_channel(ge, seed=1).losses(40_000)
    assert lost.mean() == pytest.approx(0.1, abs=0.015)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, lost.astype(int), 0])))[::2]
    assert runs.mean() == pytest.approx(4, rel=0.15)


def test_command_line(tmp_path: Path) -> None:
    from largesc_codec.evaluation.cli import main

    out = tmp_path / "cli"
    argv = ["--max-clips", "1", "--seeds", "0", "--loss", "uniform:0.2", "--opus-kbps", "9",
            "--metrics", "plcmos", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    md = (out / "results.md").read_text()
    assert "Command: `python -m largesc_codec.evaluation --max-clips 1" in md
    assert "| opus13-9k | uniform 20% |" in md
    assert md.startswith("## Evaluation: reference, Opus 1.3.1\n")  # default --title names what ran
    assert main(["--speech", str(tmp_path / "missing")]) == 2


def test_largesc_cli_names_a_missing_metric_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from largesc_codec.cli.app import main

    monkeypatch.setitem(sys.modules, "jiwer", None)  # as if jiwer were not installed
    argv = ["eval", "--largesc-bps", "--opus-kbps", "--max-clips", "1", "--metrics", "wer",
            "--out", str(tmp_path / "x"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "largesc eval: error:" in err and "'jiwer'" in err and "pip install" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_profiles_accept_every_channel_spec() -> None:
    full = parse_profile("ge:5%,50%,100%,0")
    assert full.family == "ge" and full.loss_rate == pytest.approx(0.05 / 0.55)
    assert full.mean_burst == pytest.approx(2.0)
    assert parse_profile("none").loss_rate == 0.0
    # Opus is told the channel's nominal loss.
    from largesc_codec.evaluation.losses import channel_loss_rate

    assert channel_loss_rate(make_channel("uniform:0.3", 0)) == pytest.approx(0.3)
    with pytest.raises(TypeError, match="expected_loss_rate"):
        channel_loss_rate(object())
