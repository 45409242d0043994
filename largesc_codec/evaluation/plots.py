"""PNG plots of summarised evaluation rows (matplotlib, Agg backend: no display needed).

Each figure has one panel per quality metric present in the rows (PLCMOS, ViSQOL,
WER in %); a figure with nothing to show is not written (and a stale copy of it
in the output directory is removed, so the figures always match results.md):
  * quality_vs_loss_uniform.png: x = uniform loss rate (%), one line per condition;
    the clean reference is a dashed black horizontal line.
  * quality_vs_burst_ge.png: x = mean burst length (packets) at the GE profiles'
    stationary loss; uniform loss at the same rate is drawn at its own mean burst
    1 / (1 - loss) so bursty and random loss can be compared. Needs GE rows.
  * quality_vs_bitrate.png: x = measured payload bitrate (kbit/s, log), one line per
    series and uniform loss rate (0 %, 10 %, 30 % where present). A series is the
    conditions whose names differ only in the bitrate, e.g. ``opus-*k`` or
    ``largesc-*-lm``: the concealers of one codec stay separate lines.

Colours: one per condition (or series) from a 20-colour map, strong shades first;
line style and marker per family (Opus solid circles, LargeSC dashed squares).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

QUALITY = (("plcmos", "PLCMOS v2 (higher better)", 1.0), ("visqol", "ViSQOL MOS-LQO (higher better)", 1.0),
           ("wer", "WER % (lower better)", 100.0))
BITRATE_LOSSES = (0.0, 0.10, 0.30)
RATE_DIGITS = 4  # loss rates closer than 0.01 % are the same rate (GE specs are rounded)
FAMILY_STYLE = {"opus": ("-", "o"), "largesc": ("--", "s")}
OTHER_STYLES = ((":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"))
LOSS_STYLES = ("-", "--", ":", "-.")
# tab20 pairs a strong and a light shade: take the 10 strong ones first.
_COLOUR_ORDER = tuple(range(0, 20, 2)) + tuple(range(1, 20, 2))
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?(?=k?(?:-|\s|$))")


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


def _same_rate(value: Any, rate: float) -> bool:
    """Loss rates equal as printed: 'ge:0.0277778,0.25' is 10.00007 %, uniform:0.1 is 10 %."""
    return round(_f(value), RATE_DIGITS) == round(rate, RATE_DIGITS)


def series_name(condition: str) -> str:
    """Condition name with its bitrate replaced by ``*``: ``largesc-550-lm`` -> ``largesc-*-lm``."""
    return _NUMBER.sub("*", condition, count=1)


def _colour(plt: Any, index: int) -> Any:
    return plt.get_cmap("tab20")(_COLOUR_ORDER[index % len(_COLOUR_ORDER)])


def _family_styles(summary: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, str]]:
    families = dict.fromkeys(str(s["family"]) for s in summary)
    others = iter(OTHER_STYLES * (1 + len(families)))
    return {f: FAMILY_STYLE.get(f) or next(others) for f in families}


def _metrics(summary: Sequence[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """The quality metrics that have at least one value (a run may skip some)."""
    return [q for q in QUALITY if any(not math.isnan(_f(s.get(q[0]))) for s in summary)]


def _reference_lines(axes: Sequence[Any], metrics: Sequence[tuple[str, str, float]],
                     summary: Sequence[dict[str, Any]]) -> None:
    for s in summary:
        if s["loss_model"] == "none":
            for ax, (key, _, scale) in zip(axes, metrics):
                if not math.isnan(_f(s[key])):
                    ax.axhline(scale * _f(s[key]), color="k", linestyle="--", linewidth=1,
                               label=s["condition"])


def _figure(plt: Any, title: str, metrics: Sequence[tuple[str, str, float]]) -> tuple[Any, Sequence[Any]]:
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    fig.suptitle(title)
    for ax, (_, label, _) in zip(axes[0], metrics):
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    return fig, axes[0]


def _save(plt: Any, fig: Any, axes: Sequence[Any], path: Path) -> Path:
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        # Widen the figure by what the longest label needs (7 pt text: ~0.047 inch a character).
        legend_in = 0.6 + 0.047 * max(len(label) for label in labels)
        fig.set_figwidth(5 * len(axes) + legend_in)
        fig.legend(handles, labels, loc="center right", fontsize=7)
        fig.tight_layout(rect=(0, 0, 1 - legend_in / fig.get_figwidth(), 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _skip(path: Path) -> None:
    path.unlink(missing_ok=True)  # a figure of an earlier run would contradict results.md


def _log_x(ax: Any, ticks: Sequence[float], base: float = 10) -> None:
    """Log x axis labelled with plain numbers at ``ticks`` (within the data range)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log", base=base)
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi] or list(ticks)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _conditions(summary: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(s["condition"] for s in summary if s["loss_model"] != "none"))


def _family_of(summary: Sequence[dict[str, Any]], condition: str) -> str:
    return next(str(s["family"]) for s in summary if s["condition"] == condition)


def plot_uniform(summary: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Quality vs uniform loss rate; None (and no file) without uniform rows."""
    metrics = _metrics(summary)
    conds = [c for c in _conditions(summary)
             if any(s["condition"] == c and s["loss_model"] == "uniform" for s in summary)]
    if not conds or not metrics:
        _skip(path)
        return None
    plt = _pyplot()
    fig, axes = _figure(plt, "Quality vs uniform packet loss", metrics)
    styles = _family_styles(summary)
    for i, cond in enumerate(conds):
        line, marker = styles[_family_of(summary, cond)]
        pts = sorted((_f(s["loss_rate"]) * 100, s) for s in summary
                     if s["condition"] == cond and s["loss_model"] == "uniform")
        for ax, (key, _, scale) in zip(axes, metrics):
            ax.plot([p[0] for p in pts], [scale * _f(p[1][key]) for p in pts], color=_colour(plt, i),
                    linestyle=line, marker=marker, markersize=4, label=cond)
    _reference_lines(axes, metrics, summary)
    for ax in axes:
        ax.set_xlabel("packet loss (%)")
    return _save(plt, fig, axes, path)


def plot_ge(summary: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Quality vs mean burst length; None (and no file) without Gilbert-Elliott rows."""
    metrics = _metrics(summary)
    rates = sorted({round(_f(s["loss_rate"]), RATE_DIGITS) for s in summary if s["loss_model"] == "ge"})
    if not rates or not metrics:
        _skip(path)
        return None
    plt = _pyplot()
    label = ", ".join(f"{100 * r:g}%" for r in rates)
    fig, axes = _figure(plt, f"Quality vs mean loss burst (Gilbert-Elliott, loss {label})", metrics)
    styles = _family_styles(summary)
    for i, cond in enumerate(_conditions(summary)):
        line, marker = styles[_family_of(summary, cond)]
        for j, rate in enumerate(rates):
            pts = sorted((_f(s["mean_burst"]), s) for s in summary if s["condition"] == cond
                         and s["loss_model"] in ("ge", "uniform") and _same_rate(s["loss_rate"], rate))
            name = cond if len(rates) == 1 else f"{cond} {100 * rate:g}%"
            for ax, (key, _, scale) in zip(axes, metrics):
                ax.plot([p[0] for p in pts], [scale * _f(p[1][key]) for p in pts],
                        color=_colour(plt, i * len(rates) + j), linestyle=line, marker=marker,
                        markersize=4, label=name)
    _reference_lines(axes, metrics, summary)
    for ax in axes:
        ax.set_xlabel("mean burst length (packets; uniform at 1/(1-loss))")
        _log_x(ax, sorted({1, 2, 4, 8, 16, 32} | {1 / (1 - r) for r in rates if r < 1}), base=2)
    return _save(plt, fig, axes, path)


def plot_bitrate(summary: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Quality vs measured payload bitrate, one line per series x loss; None without such rows."""
    metrics = _metrics(summary)
    rows = [s for s in summary if s["loss_model"] == "uniform" and not math.isnan(_f(s["payload_bps"]))
            and any(_same_rate(s["loss_rate"], r) for r in BITRATE_LOSSES)]
    if not rows or not metrics:
        _skip(path)
        return None
    plt = _pyplot()
    fig, axes = _figure(plt, "Quality vs measured payload bitrate (uniform loss)", metrics)
    styles = _family_styles(summary)
    series = list(dict.fromkeys(series_name(s["condition"]) for s in rows))
    for k, rate in enumerate(BITRATE_LOSSES):
        for i, name in enumerate(series):
            pts = sorted(((_f(s["payload_bps"]) / 1000, s) for s in rows if series_name(s["condition"]) == name
                          and _same_rate(s["loss_rate"], rate)), key=lambda p: p[0])
            if not pts:
                continue
            marker = styles[str(pts[0][1]["family"])][1]
            for ax, (key, _, scale) in zip(axes, metrics):
                ax.plot([p[0] for p in pts], [scale * _f(p[1][key]) for p in pts], color=_colour(plt, i),
                        linestyle=LOSS_STYLES[k % len(LOSS_STYLES)], marker=marker, markersize=4,
                        label=f"{name}, loss {100 * rate:g}%")
    _reference_lines(axes, metrics, summary)
    for ax in axes:
        ax.set_xlabel("payload bitrate (kbit/s)")
        _log_x(ax, (0.5, 1, 2, 4, 6, 9, 12, 16, 24, 32, 64))
    return _save(plt, fig, axes, path)


def plot_all(summary: Sequence[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write the figures that have data into ``out_dir``; returns name -> path of those written."""
    out = Path(out_dir)
    made = {name: fn(summary, out / name) for name, fn in (
        ("quality_vs_loss_uniform.png", plot_uniform), ("quality_vs_burst_ge.png", plot_ge),
        ("quality_vs_bitrate.png", plot_bitrate))}
    return {name: path for name, path in made.items() if path is not None}
