"""`largesc eval` end to end: Opus, reference and LargeSC rows on two clips, two loss rates."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from largesc_codec.cli.app import main

pytestmark = pytest.mark.integration


def test_eval_command_writes_table_csv_plots(tmp_path: Path, test_weights: Path) -> None:
    out = tmp_path / "eval"
    rc = main(["eval", "--weights", str(test_weights), "--max-clips", "2", "--seeds", "0",
               "--losses", "uniform:0", "uniform:0.3", "--opus-kbps", "12", "--largesc-bps", "1100",
               "--plc", "repeat", "none", "--metrics", "plcmos", "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("results.md", "results.csv", "summary.csv", "quality_vs_loss_uniform.png", "quality_vs_bitrate.png"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "results.md").read_text()
    assert "largesc eval" in md and "(untrained weights)" in md
    rows = list(csv.DictReader((out / "results.csv").open()))
    conditions = {r["condition"] for r in rows}
    assert {"reference", "opus13-12k", "largesc-1100-repeat (untrained weights)",
            "largesc-1100-none (untrained weights)"} <= conditions

    def mean(cond: str, loss: float, key: str) -> float:
        vals = [float(r[key]) for r in rows if r["condition"] == cond and abs(float(r["loss_rate"]) - loss) < 1e-9]
        assert vals, (cond, loss)
        return sum(vals) / len(vals)

    # Opus quality falls as loss rises; LargeSC stays within its token budget and reports loss.
    assert mean("opus13-12k", 0.3, "plcmos") < mean("opus13-12k", 0.0, "plcmos") - 0.2
    lsc = "largesc-1100-none (untrained weights)"
    assert mean(lsc, 0.0, "payload_bps") < 1100 + 300
    assert mean(lsc, 0.3, "lost_fraction") > 0.1
    assert mean(lsc, 0.3, "concealed_fraction") > 0.0
