"""Evaluation rows -> CSV, Markdown tables and matplotlib PNG plots (Agg backend).

Input rows are the dicts ``runner.run_condition`` makes (one per clip x
condition x channel x seed). ``summarize`` averages them per (condition,
channel) over clips and seeds; the Markdown and plots show those means.
Files written by ``write_report(rows, out_dir)``:

  results.csv                every row
  summary.csv                one row per condition x channel (means, std, n)
  results.md                 long table + one pivot table per metric
  quality_vs_loss_uniform.png, quality_vs_burst_ge.png, quality_vs_bitrate.png
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

COLUMNS = (
    "clip", "seconds", "condition", "family", "requested_bps", "loss_model", "channel",
    "loss_rate", "mean_burst", "seed", "payload_bps", "wire_bps", "lost_fraction",
    "concealed_fraction", "fec_fraction", "codec_seconds", "plcmos", "visqol", "wer", "hypothesis",
)
GROUP_KEYS = ("condition", "family", "requested_bps", "loss_model", "channel", "loss_rate", "mean_burst")
MEAN_KEYS = ("payload_bps", "wire_bps", "lost_fraction", "concealed_fraction", "fec_fraction",
             "plcmos", "visqol", "wer")
QUALITY = (("plcmos", "PLCMOS v2", True), ("visqol", "ViSQOL MOS-LQO", True), ("wer", "WER", False))
PLOTS = ("quality_vs_loss_uniform.png", "quality_vs_burst_ge.png", "quality_vs_bitrate.png")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _nanmean(values: Iterable[Any]) -> float:
    arr = np.array([_num(v) for v in values], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _nanstd(values: Iterable[Any]) -> float:
    arr = np.array([_num(v) for v in values], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.std(ddof=1)) if arr.size > 1 else math.nan


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and std of the quality metrics) per condition x channel, in first-seen order."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(str(row.get(k)) for k in GROUP_KEYS)
        groups.setdefault(key, []).append(row)
    out = []
    for members in groups.values():
        first = members[0]
        s: dict[str, Any] = {k: first.get(k) for k in GROUP_KEYS}
        for k in MEAN_KEYS:
            s[k] = _nanmean(m.get(k) for m in members)
        for k, _, _ in QUALITY:
            s[f"{k}_std"] = _nanstd(m.get(k) for m in members)
        s["n"] = len(members)
        out.append(s)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else str(v)


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str] = COLUMNS) -> Path:
    """Rows -> CSV with ``columns`` first, then any extra keys in first-seen order."""
    cols = list(columns)
    for row in rows:
        cols += [k for k in row if k not in cols]
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in cols])
    return path


def _channel_label(s: dict[str, Any]) -> str:
    if s["loss_model"] == "none":
        return "none"
    rate = f"{100 * _num(s['loss_rate']):g}%"
    if s["loss_model"] == "lossgen":
        return f"lossgen {rate}"
    return f"GE {rate} b={_num(s['mean_burst']):g}" if s["loss_model"] == "ge" else f"uniform {rate}"


def _cell(v: float, scale: float = 1.0, digits: int = 2) -> str:
    return "–" if math.isnan(v) else f"{v * scale:.{digits}f}"


def markdown(summary: Sequence[dict[str, Any]], title: str = "Evaluation", notes: str = "") -> str:
    """Long table (one line per condition x channel) + pivot tables per metric.

    ``notes`` (Markdown, e.g. the command and its run time) goes under the heading.
    """
    lines = [f"## {title}", ""] + ([notes, ""] if notes else []) + [
             "| condition | channel | payload kbit/s | wire kbit/s | lost % | concealed % "
             "| PLCMOS | ViSQOL | WER % | n |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(
            f"| {s['condition']} | {_channel_label(s)} | {_cell(s['payload_bps'], 1e-3)} "
            f"| {_cell(s['wire_bps'], 1e-3)} | {_cell(s['lost_fraction'], 100, 1)} "
            f"| {_cell(s['concealed_fraction'], 100, 1)} | {_cell(s['plcmos'])} "
            f"| {_cell(s['visqol'])} | {_cell(s['wer'], 100, 1)} | {s['n']} |")
    channels = list(dict.fromkeys(_channel_label(s) for s in summary if s["loss_model"] != "none"))
    conditions = list(dict.fromkeys(s["condition"] for s in summary))
    for key, name, _ in QUALITY:
        scale, digits = (100.0, 1) if key == "wer" else (1.0, 2)
        lines += ["", f"### {name}{' (%)' if key == 'wer' else ''} by channel", "",
                  "| condition | " + " | ".join(channels) + " |",
                  "|---|" + "---:|" * len(channels)]
        for cond in conditions:
            mine = [s for s in summary if s["condition"] == cond]
            if len(mine) == 1 and mine[0]["loss_model"] == "none":
                cells = [_cell(mine[0][key], scale, digits)] * len(channels)
            else:
                by = {_channel_label(s): s[key] for s in mine}
                cells = [_cell(by.get(c, math.nan), scale, digits) for c in channels]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows: Sequence[dict[str, Any]], out_dir: str | Path,
                 title: str = "Evaluation", notes: str = "") -> dict[str, Path]:
    """Write results.csv, summary.csv, results.md and the three plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    paths = {"results.csv": write_csv(rows, out / "results.csv"),
             "summary.csv": write_csv(summary, out / "summary.csv",
                                      [*GROUP_KEYS, *MEAN_KEYS, "plcmos_std", "visqol_std", "wer_std", "n"])}
    (out / "results.md").write_text(markdown(summary, title, notes))
    paths["results.md"] = out / "results.md"
    from largesc_codec.evaluation.plots import plot_all

    paths.update(plot_all(summary, out))
    return paths
