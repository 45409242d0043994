"""Evaluation toolkit: speech data, baselines (Opus 1.3.1 / 1.5.2, Codec 2), quality metrics, reports.

No torch here: the LargeSC codec plugs in as a condition whose callable
``(pcm, sample_rate, channel) -> CodecOutput`` the runner calls like Opus's.

    from largesc_codec.evaluation import (
        load_clips, default_conditions, default_losses, run_conditions)
    clips = load_clips("librivox")
    rows = run_conditions(clips, default_conditions(), default_losses(), seeds=[0, 1],
                          out_dir="out/eval")
"""

from __future__ import annotations

from largesc_codec.evaluation.data import Clip, load_asterisk, load_clips, load_librispeech, load_librivox, resample
from largesc_codec.evaluation.losses import LossProfile, default_losses, gilbert_elliott, parse_profile, uniform
from largesc_codec.evaluation.opus_baseline import OPUS_BITRATES, OpusCodec, opus_over_channel
from largesc_codec.evaluation.report import summarize, write_report
from largesc_codec.evaluation.runner import (
    CodecOutput,
    Condition,
    baseline_conditions,
    default_conditions,
    opus_conditions,
    reference_condition,
    run_condition,
    run_conditions,
)

__all__ = [
    "Clip", "load_asterisk", "load_clips", "load_librispeech", "load_librivox", "resample",
    "LossProfile", "default_losses", "gilbert_elliott", "parse_profile", "uniform",
    "OPUS_BITRATES", "OpusCodec", "opus_over_channel", "summarize", "write_report",
    "CodecOutput", "Condition", "baseline_conditions", "default_conditions", "opus_conditions", "reference_condition",
    "run_condition", "run_conditions",
]
