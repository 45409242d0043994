"""Report writers on synthetic rows: CSV, Markdown and PNG structure."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from largesc_codec.evaluation.plots import plot_all, series_name
from largesc_codec.evaluation.report import COLUMNS, markdown, summarize, write_report


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for clip in ("a", "b"):
        rows.append({"clip": clip, "condition": "reference", "family": "reference",
                     "loss_model": "none", "channel": "none", "loss_rate": 0.0,
                     "mean_burst": math.nan, "plcmos": 4.5, "visqol": 4.5, "wer": 0.1})
        for name, bps in (("opus-6k", 6000.0), ("codec-x", 1100.0)):
            fam = name.split("-")[0]
            for spec, model, rate, burst in (("uniform:0", "uniform", 0.0, 1.0),
                                             ("uniform:0.3", "uniform", 0.3, 1 / 0.7),
                                             ("ge:0.03,0.3", "ge", 0.1, 3.33)):
                rows.append({"clip": clip, "condition": name, "family": fam, "requested_bps": bps,
                             "loss_model": model, "channel": spec, "loss_rate": rate,
                             "mean_burst": burst, "seed": 0, "payload_bps": 0.9 * bps,
                             "wire_bps": 0.9 * bps + 16000, "lost_fraction": rate,
                             "concealed_fraction": rate, "plcmos": 4 - 3 * rate,
                             "visqol": 4 - 2 * rate + (0.2 if clip == "a" else 0.0),
                             "wer": 0.1 + rate, "hypothesis": "x", "extra_col": 1})
    return rows


def test_summarize_groups_over_clips_and_seeds() -> None:
    summary = summarize(_rows())
    assert len(summary) == 1 + 2 * 3
    ref = summary[0]
    assert ref["condition"] == "reference" and ref["n"] == 2 and ref["plcmos"] == 4.5
    opus30 = next(s for s in summary if s["condition"] == "opus-6k" and s["channel"] == "uniform:0.3")
    assert opus30["n"] == 2
    assert math.isclose(opus30["visqol"], 4 - 0.6 + 0.1)
    assert opus30["visqol_std"] > 0


def test_markdown_tables() -> None:
    md = markdown(summarize(_rows()), "Demo")
    lines = md.splitlines()
    assert lines[0] == "## Demo"
    long_rows = [line for line in lines if line.startswith("| opus-6k |")]
    assert len(long_rows) == 3 + 3  # long table + one pivot line per metric
    assert "| opus-6k | uniform 30% | 5.40 | 21.40 | 30.0 | 30.0 | 3.10 |" in md
    assert "### PLCMOS v2 by channel" in md and "### WER (%) by channel" in md
    header = next(line for line in lines if line.startswith("| condition | uniform 0%"))
    assert header.count("|") == 5  # condition + 3 channels


def test_write_report_files(tmp_path: Path) -> None:
    paths = write_report(_rows(), tmp_path / "out", title="Demo")
    for name in ("results.csv", "summary.csv", "results.md", "quality_vs_loss_uniform.png",
                 "quality_vs_burst_ge.png", "quality_vs_bitrate.png"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0, name
    with paths["results.csv"].open() as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames is not None
        assert tuple(reader.fieldnames[: len(COLUMNS)]) == COLUMNS
        assert "extra_col" in reader.fieldnames  # codec extras kept
        rows = list(reader)
    assert len(rows) == len(_rows())
    assert rows[0]["payload_bps"] == "" and rows[1]["payload_bps"] == "5400"  # NaN -> empty
    for png in ("quality_vs_loss_uniform.png", "quality_vs_bitrate.png"):
        assert paths[png].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_without_ge_or_reference(tmp_path: Path) -> None:
    (tmp_path / "quality_vs_burst_ge.png").write_bytes(b"stale figure of an earlier run")
    rows = [r for r in _rows() if r["loss_model"] == "uniform"]
    paths = plot_all(summarize(rows), tmp_path)
    assert sorted(paths) == ["quality_vs_bitrate.png", "quality_vs_loss_uniform.png"]
    assert all(p.is_file() for p in paths.values())
    assert not (tmp_path / "quality_vs_burst_ge.png").exists()  # no GE rows: no (stale) GE figure


def test_bitrate_lines_join_only_conditions_that_differ_in_rate() -> None:
    assert series_name("largesc-550-lm (untrained weights)") == "largesc-*-lm (untrained weights)"
    assert series_name("largesc-2062.5-lm (untrained weights)") == "largesc-*-lm (untrained weights)"
    assert series_name("largesc-2062.5-none") == "largesc-*-none"
    assert series_name("opus-6k") == series_name("opus-24k") == "opus-*k"
    assert series_name("reference") == "reference"


def _spy_lines(monkeypatch: Any) -> list[tuple[str, int, Any]]:
    """(label, points, colour) of every line of the first panel of each figure closed."""
    import matplotlib.pyplot as plt

    drawn: list[tuple[str, int, Any]] = []
    real_close = plt.close

    def spy(fig: Any) -> None:
        for line in fig.axes[0].get_lines():
            drawn.append((str(line.get_label()), len(line.get_xdata()), line.get_color()))
        real_close(fig)

    monkeypatch.setattr(plt, "close", spy)
    return drawn


def test_ge_plot_puts_uniform_loss_at_the_rate_a_ge_spec_rounds_to(tmp_path: Path, monkeypatch: Any) -> None:
    from largesc_codec.evaluation import plots
    from largesc_codec.evaluation.losses import parse_profile

    ge = parse_profile("ge:0.0277778,0.25")  # 10.00007 % stationary loss, as in docs/evaluation.md
    assert ge.loss_rate != 0.1
    rows = [r for r in _rows() if r["condition"] == "opus-6k" and r["channel"] == "uniform:0"]
    rows = [dict(rows[0], channel="uniform:0.1", loss_rate=0.1, mean_burst=1 / 0.9),
            dict(rows[0], channel=ge.spec, loss_model="ge", loss_rate=ge.loss_rate, mean_burst=ge.mean_burst)]
    drawn = _spy_lines(monkeypatch)
    assert plots.plot_ge(summarize(rows), tmp_path / "ge.png") is not None
    assert [(label, n) for label, n, _ in drawn] == [("opus-6k", 2)]  # GE point + uniform point


def test_bitrate_plot_draws_one_line_per_concealer_and_loss(tmp_path: Path, monkeypatch: Any) -> None:
    import matplotlib.pyplot as plt

    from largesc_codec.evaluation import plots

    rows = [r for r in _rows() if r["loss_model"] == "uniform" and r["condition"] == "opus-6k"]
    for bps in (550.0, 1100.0):
        for plc in ("lm", "none"):
            rows += [dict(r, condition=f"largesc-{bps:g}-{plc}", family="largesc", requested_bps=bps,
                          payload_bps=bps * 1.2) for r in rows if r["condition"] == "opus-6k"]
    drawn = _spy_lines(monkeypatch)
    assert plots.plot_bitrate(summarize(rows), tmp_path / "b.png") is not None
    labels = {label: n for label, n, _ in drawn}
    assert labels == {f"{s}, loss {r}%": 2 for s in ("largesc-*-lm", "largesc-*-none")
                      for r in (0, 30)} | {"opus-*k, loss 0%": 1, "opus-*k, loss 30%": 1}
    colours = {label.split(",")[0]: c for label, _, c in drawn}
    assert len(set(map(str, colours.values()))) == 3  # one colour per series
    assert len({plots._colour(plt, i) for i in range(20)}) == 20  # 20 conditions, 20 colours
