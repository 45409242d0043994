"""PNG plots of summarised evaluation rows (matplotlib, Agg backend: no display needed).

Each figure has one panel per quality metric (PLCMOS, ViSQOL, WER):
  * quality_vs_loss_uniform.png: x = uniform loss rate (%), one line per condition;
    the clean reference is a dashed horizontal line.
  * quality_vs_burst_ge.png: x = mean burst length (packets) at the GE profiles'
    stationary loss; uniform loss at the same rate is drawn at its own mean burst
    1 / (1 - loss) so bursty and random loss can be compared.
  * quality_vs_bitrate.png: x = measured payload bitrate (kbit/s, log), one line per
    uniform loss rate (0 %, 10 %, 30 % where present), conditions of one family joined.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

QUALITY = (("plcmos", "PLCMOS v2 (higher better)"), ("visqol", "ViSQOL MOS-LQO (higher better)"),
           ("wer", "WER (lower better)"))
BITRATE_LOSSES = (0.0, 0.10, 0.30)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install -r requirements/runtime.txt") from exc
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _reference_lines(axes: Sequence[Any], summary: Sequence[dict[str, Any]]) -> None:
    for s in summary:
        if s["loss_model"] == "none":
            for ax, (key, _) in zip(axes, QUALITY):
                if not math.isnan(_f(s[key])):
                    ax.axhline(_f(s[key]), color="k", linestyle="--", linewidth=1, label=s["condition"])


def _figure(plt: Any, title: str) -> tuple[Any, Sequence[Any]]:
    fig, axes = plt.subplots(1, len(QUALITY), figsize=(5 * len(QUALITY), 4), squeeze=False)
    fig.suptitle(title)
    for ax, (_, label) in zip(axes[0], QUALITY):
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    return fig, axes[0]


def _save(plt: Any, fig: Any, axes: Sequence[Any], path: Path) -> Path:
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=8)
        fig.tight_layout(rect=(0, 0, 0.88, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_x(ax: Any, ticks: Sequence[float], base: float = 10) -> None:
    """Log x axis labelled with plain numbers at ``ticks`` (within the data range)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log", base=base)
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi] or list(ticks)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _conditions(summary: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(s["condition"] for s in summary if s["loss_model"] != "none"))


def plot_uniform(summary: Sequence[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = _figure(plt, "Quality vs uniform packet loss")
    for cond in _conditions(summary):
        pts = sorted((_f(s["loss_rate"]) * 100, s) for s in summary
                     if s["condition"] == cond and s["loss_model"] == "uniform")
        for ax, (key, _) in zip(axes, QUALITY):
            ax.plot([p[0] for p in pts], [_f(p[1][key]) for p in pts], marker="o", label=cond)
    _reference_lines(axes, summary)
    for ax in axes:
        ax.set_xlabel("packet loss (%)")
    return _save(plt, fig, axes, path)


def plot_ge(summary: Sequence[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    rates = sorted({_f(s["loss_rate"]) for s in summary if s["loss_model"] == "ge"})
    label = ", ".join(f"{100 * r:g}%" for r in rates) or "no GE rows"
    fig, axes = _figure(plt, f"Quality vs mean loss burst (Gilbert-Elliott, loss {label})")
    for cond in _conditions(summary):
        for rate in rates:
            pts = sorted((_f(s["mean_burst"]), s) for s in summary if s["condition"] == cond
                         and s["loss_model"] in ("ge", "uniform") and abs(_f(s["loss_rate"]) - rate) < 1e-9)
            name = cond if len(rates) == 1 else f"{cond} {100 * rate:g}%"
            for ax, (key, _) in zip(axes, QUALITY):
                ax.plot([p[0] for p in pts], [_f(p[1][key]) for p in pts], marker="o", label=name)
    _reference_lines(axes, summary)
    for ax in axes:
        ax.set_xlabel("mean burst length (packets; uniform at 1/(1-loss))")
        _log_x(ax, (1, 2, 4, 8, 16, 32), base=2)
    return _save(plt, fig, axes, path)


def plot_bitrate(summary: Sequence[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = _figure(plt, "Quality vs measured payload bitrate (uniform loss)")
    families = list(dict.fromkeys(s["family"] for s in summary if s["loss_model"] == "uniform"))
    markers = dict(zip(families, "osD^v<>"))
    for rate in BITRATE_LOSSES:
        for fam in families:
            pts = sorted(((_f(s["payload_bps"]) / 1000, s) for s in summary if s["family"] == fam
                          and s["loss_model"] == "uniform" and abs(_f(s["loss_rate"]) - rate) < 1e-9),
                         key=lambda p: p[0])  # rows at the same rate must not be compared
            if not pts:
                continue
            for ax, (key, _) in zip(axes, QUALITY):
                ax.plot([p[0] for p in pts], [_f(p[1][key]) for p in pts],
                        marker=markers[fam], label=f"{fam}, loss {100 * rate:g}%")
    _reference_lines(axes, summary)
    for ax in axes:
        ax.set_xlabel("payload bitrate (kbit/s)")
        _log_x(ax, (0.5, 1, 2, 4, 6, 9, 12, 16, 24, 32, 64))
    return _save(plt, fig, axes, path)


def plot_all(summary: Sequence[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write the three figures into ``out_dir``; returns name -> path."""
    out = Path(out_dir)
    return {
        "quality_vs_loss_uniform.png": plot_uniform(summary, out / "quality_vs_loss_uniform.png"),
        "quality_vs_burst_ge.png": plot_ge(summary, out / "quality_vs_burst_ge.png"),
        "quality_vs_bitrate.png": plot_bitrate(summary, out / "quality_vs_bitrate.png"),
    }
