"""`largesc transmit` end to end on the small test checkpoints and a real speech clip."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from largesc_codec.cli import main

pytestmark = pytest.mark.integration


def _transmit(tmp_path: Path, weights: Path, speech: Path, *extra: str) -> dict:
    out, report = tmp_path / "out.wav", tmp_path / "r.json"
    rc = main(["transmit", str(speech), str(out), "--weights", str(weights), "--report", str(report), *extra])
    assert rc == 0
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1
        samples = w.getnframes()
    data = json.loads(report.read_text())
    assert samples == data["frames"] * 1920  # every frame played, nothing dropped
    return data


@pytest.mark.parametrize("plc", ["repeat", "lm"])
def test_uniform_loss_report_is_consistent(tmp_path: Path, test_weights: Path, speech_file: Path, plc: str) -> None:
    r = _transmit(tmp_path, test_weights, speech_file, "--channel", "uniform:0.1", "--seed", "3", "--plc", plc)
    assert r["untrained_weights"] is True
    assert r["frames"] == r["packets_sent"] > 80  # 7.1 s clip, one frame a packet
    assert 0.02 < r["loss_rate"] < 0.25
    rescued = r["frames_recovered"] + r["frames_partial"]
    not_primary = rescued + r["frames_concealed"] + r["frames_comfort"] + r["frames_skipped"]
    assert r["frames_primary"] + not_primary == r["frames"]
    # Receiver counts against channel ground truth: every frame whose primary was lost
    # is rescued (whole or partly) by redundancy or concealed.
    assert r["frames_primary"] == r["frames"] - r["truth_frames_primary_lost"]
    assert not_primary == r["truth_frames_primary_lost"]
    assert rescued > 0  # the loss report reached the sender and redundancy rescued frames
    assert 550 <= r["payload_bps"] <= 2062.5 + 400  # token budget + ToC/padding
    assert r["wire_bps"] == pytest.approx(r["payload_bps"] + 40 * 8 * 12.5, rel=0.01)
    assert 1 <= r["mean_codebooks"] <= 8
    assert r["realtime_factor"] > 0


def test_bursty_loss_and_zero_loss(tmp_path: Path, test_weights: Path, speech_file: Path) -> None:
    ge = _transmit(tmp_path, test_weights, speech_file, "--channel", "ge:0.05,0.3", "--seed", "1", "--plc", "repeat")
    assert ge["packets_lost"] > 0 and ge["frames_concealed"] + ge["frames_comfort"] > 0
    assert ge["jitter"]["played"]["conceal"] == ge["frames_concealed"]
    clean = _transmit(tmp_path, test_weights, speech_file, "--channel", "none", "--plc", "none", "--max-bps", "1100")
    assert clean["packets_lost"] == 0 and clean["frames_concealed"] == 0
    # The buffer starts at 80 ms and may drop a quiet frame to reach its lower target.
    assert clean["frames_primary"] + clean["frames_skipped"] == clean["frames"] and clean["frames_skipped"] <= 2
    assert clean["payload_bps"] <= 1100 + 300


def test_user_errors_are_one_line(tmp_path: Path, test_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    assert main(["transmit", str(bad), str(tmp_path / "o.wav"), "--weights", str(test_weights)]) == 2
    assert "cannot decode" in capsys.readouterr().err
    assert main(["transmit", str(bad), str(tmp_path / "o.wav"), "--channel", "uniform:2"]) == 2
    assert "channel" in capsys.readouterr().err
    good = tmp_path / "tone.wav"
    from largesc_codec.framing import write_wav
    import numpy as np

    write_wav(good, np.zeros(16000, np.float32), 16000)
    assert main(["transmit", str(good), str(tmp_path / "o.wav"), "--weights", str(tmp_path / "none")]) == 3
    assert "make-test-weights" in capsys.readouterr().err
