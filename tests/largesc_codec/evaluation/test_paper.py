"""``largesc eval --paper``: every condition of the table, in parallel processes, the same rows as serially."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from largesc_codec.cli.app import main
from largesc_codec.evaluation.data import Clip
from largesc_codec.evaluation.losses import parse_profile
from largesc_codec.evaluation.paper import baselines, paper_losses, plan_jobs, run_parallel
from largesc_codec.evaluation.runner import opus_conditions, reference_condition

pytestmark = pytest.mark.integration


def test_the_paper_plan_covers_uniform_bursty_and_every_job() -> None:
    labels = {p.spec for p in paper_losses()}
    assert {"uniform:0", "uniform:0.05", "uniform:0.4"} <= labels and sum(s.startswith("ge:") for s in labels) == 3
    conds = [reference_condition(), *opus_conditions([9000])]
    jobs = plan_jobs([None, None], conds, paper_losses()[:2], [0, 1])  # type: ignore[list-item]
    assert len(jobs) == 2 * (1 + 2 * 2) and len(set(jobs)) == len(jobs)


def test_parallel_rows_equal_serial_rows(short_clips: list[Clip]) -> None:
    conds = [reference_condition(), *opus_conditions([9000])]
    losses = [parse_profile("uniform:0.2")]
    serial = run_parallel(short_clips[:1], conds, losses, [0], jobs=1, metrics=["plcmos"], progress=False)
    parallel = run_parallel(short_clips[:1], conds, losses, [0], jobs=2, metrics=["plcmos"], progress=False)

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, str]]:  # repr: NaN equals NaN
        return [{k: repr(v) for k, v in r.items() if k != "codec_seconds"} for r in rows]

    assert strip(serial) == strip(parallel) and len(serial) == 2


def test_eval_paper_runs_every_condition_of_the_table(tmp_path: Path, test_weights: Path) -> None:
    out = tmp_path / "paper"
    rc = main(["eval", "--paper", "--weights", str(test_weights), "--max-clips", "1", "--seeds", "0",
               "--losses", "uniform:0.2", "--metrics", "plcmos", "--jobs", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    names = {r["condition"] for r in rows}
    for bps in ("550", "1100", "2062.5"):
        for plc in ("lm", "repeat", "none"):
            assert f"largesc-{bps}-{plc} (untrained weights)" in names, names
    assert {c.name for c in baselines()} <= names and "reference" in names
    md = (out / "results.md").read_text()
    assert "untrained test weights" in md.lower() and "--paper" in md
    for r in rows:
        if r["family"] == "largesc":
            assert float(r["payload_bps"]) <= float(r["requested_bps"]), r  # budgets cap the whole payload
