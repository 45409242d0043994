"""Run codec conditions over clips, loss channels and seeds; return metric rows.

A condition is a name plus a codec callable

    codec(pcm, sample_rate, channel) -> CodecOutput
        pcm:          float32 mono (samples,) at sample_rate (16 kHz for the
                      built-in speech sources; resample inside if you need 24 kHz)
        channel:      a fresh seeded loss model of largesc_codec.sim.channel: call
                      ``channel.lost()`` once per packet you send (True = dropped);
                      ``channel.expected_loss_rate`` is its nominal loss rate
        CodecOutput:  (decoded float mono pcm, its sample rate, payload bit/s,
                      wire bit/s incl. IPv4+UDP+RTP headers, concealed fraction
                      [, dict of extra numbers]); a plain 5-tuple is accepted.

Every condition sees, for a given clip, loss profile and seed, a channel built
from the same spec and the same seed, so conditions differ only by codec. A
channel is per-packet: a mean burst of 4 packets is 80 ms of audio for Opus
(20 ms packets) but 320 ms for an 80 ms-packet codec.

The reference condition (the original audio) is scored once per clip, with
``channel`` ``"none"``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation import metrics as M
from largesc_codec.evaluation.condition import CodecOutput, Condition, reference_condition
from largesc_codec.evaluation.data import Clip
from largesc_codec.evaluation.losses import LossProfile, make_channel
from largesc_codec.evaluation.opus_baseline import OPUS_BITRATES, OpusCodec

METRICS = ("plcmos", "visqol", "wer")


def opus_conditions(bitrates: Sequence[int] = OPUS_BITRATES, use_fec: bool = True) -> list[Condition]:
    """Opus 1.3.1 (the system's libopus) at each bitrate (bit/s), named e.g. ``opus13-6k``."""
    return [Condition(f"opus13-{b // 1000}k", OpusCodec(b, use_fec), "opus", float(b)) for b in bitrates]


def default_conditions() -> list[Condition]:
    """The built-in baseline: clean reference + Opus 1.3.1 at 6, 9, 12, 16, 24 kbit/s."""
    return [reference_condition(), *opus_conditions()]


def baseline_conditions(names: Sequence[str] | None = None) -> list[Condition]:
    """Baselines by name or fnmatch pattern (``opus15-*``); None: every one this installation can run.

    Names: ``opus13-{6,9,12,16,24}k``, ``opus15-{6,9,12,16,24}k``,
    ``opus15-dred-{16,24,32}k``, ``codec2-{3200,2400,1600,1300,700c}``
    (``largesc_codec.evaluation.baselines``). With None, Opus 1.5.2 rows need
    the set-up's build and Codec 2 rows pycodec2; named ones raise if missing.
    """
    from largesc_codec.evaluation.baselines import available_baselines, select_baselines

    return available_baselines() if names is None else select_baselines(names)


def channel_seed(seed: int, clip_index: int) -> int:
    """Channel seed for a clip: differs per clip, identical for every condition."""
    return seed * 100_003 + clip_index


def score(clip: Clip, pcm: npt.NDArray[Any], sample_rate: int,
          metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """Metric values of decoded ``pcm`` (float mono, any rate) against ``clip``."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}: choose from {METRICS}")
    row: dict[str, Any] = {}
    if "plcmos" in metrics:
        row["plcmos"] = M.plcmos(pcm, sample_rate)
    if "visqol" in metrics:
        row["visqol"] = M.visqol(clip.pcm, pcm, clip.sample_rate, sample_rate)
    if "wer" in metrics:
        row["wer"], row["hypothesis"] = M.wer(clip.transcript, pcm, sample_rate)
    return row


def _base_row(clip: Clip, cond: Condition, loss: LossProfile | None, seed: int | None) -> dict[str, Any]:
    return {
        "clip": clip.name, "seconds": round(clip.seconds, 3), "condition": cond.name,
        "family": cond.family, "requested_bps": cond.requested_bps,
        "loss_model": loss.family if loss else "none", "channel": loss.spec if loss else "none",
        "loss_rate": loss.loss_rate if loss else 0.0,
        "mean_burst": loss.mean_burst if loss else math.nan, "seed": seed,
    }


def run_condition(clip: Clip, cond: Condition, loss: LossProfile | None, seed: int | None,
                  clip_index: int = 0, metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """One clip through one condition on one seeded channel -> one metric row (dict)."""
    row = _base_row(clip, cond, loss, seed)
    if cond.codec is None:
        row.update(payload_bps=math.nan, wire_bps=math.nan, lost_fraction=0.0,
                   concealed_fraction=0.0, codec_seconds=0.0)
        row.update(score(clip, clip.pcm, clip.sample_rate, metrics))
        return row
    if loss is None or seed is None:
        raise ValueError(f"condition {cond.name} needs a loss profile and a seed")
    channel = make_channel(loss, channel_seed(seed, clip_index))
    t0 = time.perf_counter()
    raw = cond.codec(clip.pcm, clip.sample_rate, channel)
    elapsed = time.perf_counter() - t0
    out = raw if isinstance(raw, CodecOutput) else CodecOutput(*raw)
    pcm = np.asarray(out.pcm, dtype=np.float32).reshape(-1)
    row.update(payload_bps=float(out.payload_bps), wire_bps=float(out.wire_bps),
               lost_fraction=math.nan, concealed_fraction=float(out.concealed_fraction),
               codec_seconds=round(elapsed, 4))
    row.update(dict(out.extra or {}))
    row.update(score(clip, pcm, int(out.sample_rate), metrics))
    return row


def run_conditions(clips: Sequence[Clip], conditions: Iterable[Condition],
                   losses: Sequence[LossProfile], seeds: Sequence[int],
                   out_dir: str | Path | None = None, progress: bool = True,
                   metrics: Sequence[str] = METRICS, title: str = "Evaluation") -> list[dict[str, Any]]:
    """Every condition x clip x loss profile x seed (reference: once per clip).

    Returns one dict per run (columns in ``report.COLUMNS`` order plus extras).
    With ``out_dir``, also writes results.csv (all rows), summary.csv,
    results.md and the PNG plots there (see ``report.write_report``).
    """
    conds = list(conditions)
    if not clips:
        raise ValueError("no clips to evaluate: check the speech source")
    jobs: list[tuple[int, Clip, Condition, LossProfile | None, int | None]] = []
    for ci, clip in enumerate(clips):
        for cond in conds:
            if cond.codec is None:
                jobs.append((ci, clip, cond, None, None))
                continue
            jobs += [(ci, clip, cond, loss, seed) for loss in losses for seed in seeds]
    bar = _progress(len(jobs), progress)
    rows = []
    for ci, clip, cond, loss, seed in jobs:
        bar.set_description(f"{loss.spec if loss else 'clean'} {cond.name}")  # channel first: names are long
        rows.append(run_condition(clip, cond, loss, seed, ci, metrics))
        bar.update(1)
    bar.close()
    if out_dir is not None:
        from largesc_codec.evaluation.report import write_report

        write_report(rows, out_dir, title=title)
    return rows


class _NoBar:
    def set_description(self, _: str) -> None:
        pass

    def update(self, _: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="run", dynamic_ncols=True)
