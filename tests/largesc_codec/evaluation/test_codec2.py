"""Codec 2 baseline (pycodec2, libcodec2 1.2): bit rates with headers, repeat/fade PLC, every mode end to end."""

from __future__ import annotations

import numpy as np
import pytest

from largesc_codec.evaluation.codec2_baseline import CODEC2_RATE, decode_packets, encode_packets
from largesc_codec.evaluation.data import Clip, resample
from largesc_codec.evaluation.losses import uniform
from largesc_codec.evaluation.runner import baseline_conditions, run_condition

# payload bit/s after each frame's byte padding; 40 ms packets, 40 header bytes each: +8000 bit/s
PAYLOAD = {"3200": 3200, "2400": 2400, "1600": 1600, "1300": 1400, "700c": 800}


@pytest.mark.parametrize("mode", list(PAYLOAD))
def test_every_codec2_condition_runs_end_to_end(short_clips: list[Clip], mode: str) -> None:
    (cond,) = baseline_conditions([f"codec2-{mode}"])
    clip = short_clips[0]
    row = run_condition(clip, cond, uniform(0.2), 0, 0, metrics=["plcmos"])
    assert row["family"] == "codec2" and 1.0 <= row["plcmos"] <= 5.0
    assert row["payload_bps"] == pytest.approx(PAYLOAD[mode])
    assert row["wire_bps"] == pytest.approx(PAYLOAD[mode] + 8000)
    assert row["concealed_fraction"] == row["lost_fraction"] > 0.05


def test_plc_repeats_then_fades(short_clips: list[Clip]) -> None:
    x = resample(short_clips[0].pcm, 16000, CODEC2_RATE)
    packets, per = encode_packets(x, "1300")
    assert per == 320 and all(len(p) == 7 for p in packets)
    lost = np.zeros(len(packets), dtype=bool)
    lost[30:34] = True
    y, concealed = decode_packets(packets, lost, "1300", per)
    assert y.shape == (len(packets) * per,) and concealed == 4
    rms = [float(np.sqrt(np.mean(y[i * per:(i + 1) * per] ** 2))) for i in range(30, 34)]
    assert rms[0] > 0 and rms[3] < rms[0]  # the 4th lost packet plays at 1/8 of the repeated one's gain
    assert not decode_packets(packets, np.ones(len(packets), bool), "1300", per)[0].any()  # nothing to repeat


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_packets(np.zeros(320, np.float32), "450")
