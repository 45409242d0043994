"""Opus 1.5.2 anchors (the set-up's own build): deep PLC beats 1.3.1's PLC, DRED recovers, every row runs."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from largesc_codec.evaluation.data import Clip
from largesc_codec.evaluation.libopus import SET_DRED_DURATION, OpusEncoder, version
from largesc_codec.evaluation.libopus15 import libopus15
from largesc_codec.evaluation.losses import uniform
from largesc_codec.evaluation.opus15_baseline import decode15, encode15
from largesc_codec.evaluation.runner import baseline_conditions, run_condition

LOSS = uniform(0.2)


def test_the_build_is_1_5_2_with_dred() -> None:
    lib = libopus15()
    assert version(lib) == "libopus 1.5.2" and version().startswith("libopus 1.3")  # both load side by side
    enc = OpusEncoder(16000, 24000, 20, lib=lib)
    enc.ctl(SET_DRED_DURATION, ctypes.c_int32(100))  # OPUS_UNIMPLEMENTED without --enable-dred


def test_deep_plc_beats_opus13_plc_at_20_percent_loss(short_clips: list[Clip]) -> None:
    # A property of the anchor: same clip, channel and seed; 9 kbit/s (SILK), 20 % uniform loss.
    # Measured on this clip: 1.3.1 2.90, 1.5.2 with decoder complexity 7 3.15.
    c13, c15 = baseline_conditions(["opus13-9k", "opus15-9k"])
    clip = short_clips[0]
    r13 = run_condition(clip, c13, LOSS, 0, 0, metrics=["plcmos"])
    r15 = run_condition(clip, c15, LOSS, 0, 0, metrics=["plcmos"])
    assert r13["plc_fraction"] == r15["plc_fraction"] > 0.1  # same losses, all concealed (no FEC at 9k)
    assert r15["plcmos"] > r13["plcmos"] + 0.1, (r13["plcmos"], r15["plcmos"])


def test_dred_rebuilds_lost_frames_the_plain_rows_conceal(short_clips: list[Clip]) -> None:
    x = short_clips[0].pcm
    packets, _ = encode15(x, 24000, 20, inband_fec=False, dred_ms=1000)
    lost = np.zeros(len(packets), dtype=bool)
    lost[60:64] = True  # one burst of 80 ms, well inside the DRED's reach at 24 kbit/s
    pcm, counts = decode15(packets, lost, use_fec=False, use_dred=True)
    assert pcm.shape == (len(packets) * 320,)
    assert counts == {"plc": 0, "fec": 0, "dred": 4}
    _, plain = decode15(packets, lost, use_fec=False, use_dred=False)
    assert plain == {"plc": 4, "fec": 0, "dred": 0}
    # libopus 1.5.2 gives DRED no bits at 16 kbit/s (see opus15_baseline): DRED rows there are plain 1.5.2.
    p16, _ = encode15(x, 16000, 20, inband_fec=False, dred_ms=1000)
    assert decode15(p16, lost, use_fec=False, use_dred=True)[1]["dred"] == 0


@pytest.mark.parametrize("name", [c for c in ("opus15-6k", "opus15-9k", "opus15-12k", "opus15-16k", "opus15-24k",
                                              "opus15-dred-16k", "opus15-dred-24k", "opus15-dred-32k")])
def test_every_opus15_condition_runs_end_to_end(short_clips: list[Clip], name: str) -> None:
    (cond,) = baseline_conditions([name])
    clip = short_clips[1]
    row = run_condition(clip, cond, LOSS, 0, 1, metrics=["plcmos"])
    assert row["condition"] == name and row["family"] == "opus15"
    assert 1.0 <= row["plcmos"] <= 5.0
    assert 0.5 * cond.requested_bps < row["payload_bps"] < 1.3 * cond.requested_bps
    assert row["wire_bps"] == pytest.approx(row["payload_bps"] + 16000)
    assert row["plc_fraction"] + row["fec_fraction"] + row["dred_fraction"] == pytest.approx(row["lost_fraction"])
    if name in ("opus15-dred-24k", "opus15-dred-32k"):
        assert row["dred_fraction"] > 0.05 and row["fec_fraction"] == 0.0
