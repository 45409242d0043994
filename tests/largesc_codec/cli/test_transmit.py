"""`largesc transmit` end to end on the small test checkpoints and a real speech clip.

Receiver counts are checked frame by frame against the channel's ground truth
(transmit_sim.Truth: what was sent and which packets had arrived by each
frame's playout time), over seeds, uniform and Gilbert-Elliott loss, and both
8 codebooks (rescues are partial: copies hold 7) and 4 (copies can hold all).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from largesc_codec.cli.app import main
from largesc_codec.neural.framing import read_audio, write_wav

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def short_speech(speech_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4 s of the speech clip (50 frames): cheap runs, redundancy on after ~1 s of feedback."""
    pcm, rate = read_audio(speech_file)
    path = tmp_path_factory.mktemp("speech") / "short.wav"
    write_wav(path, pcm[: 4 * rate, 0], rate)
    return path


def _transmit(tmp_path: Path, weights: Path, speech: Path, *extra: str) -> dict[str, Any]:
    out, report = tmp_path / "out.wav", tmp_path / "r.json"
    rc = main(["transmit", str(speech), str(out), "--weights", str(weights), "--report", str(report), *extra])
    assert rc == 0
    r: dict[str, Any] = json.loads(report.read_text())
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1
        assert w.getnframes() == r["output_frames"] * 1920
        heard = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    # OUT is what the listener hears in play order: skipped frames are not in it, holds are silence.
    assert r["output_frames"] == r["frames"] - r["frames_skipped"] + r["frames_held"]
    assert r["frames_skipped"] == r["frames_skipped_delivered"] + r["frames_skipped_missing"]
    played = sum(r[f"frames_{k}"] for k in ("primary", "recovered", "partial", "concealed", "comfort"))
    assert played + r["frames_skipped"] == r["frames"]
    assert np.abs(heard).max() > 0
    _assert_truth(r)
    return r


def _assert_truth(r: dict[str, Any]) -> None:
    """Every receiver category equals its ground-truth category, frame by frame."""
    assert r["truth_mismatches"] == 0
    assert r["frames_primary"] == r["truth_frames_primary"]
    assert r["frames_recovered"] == r["truth_frames_recovered"]
    assert r["frames_partial"] == r["truth_frames_partial"]
    assert r["frames_concealed"] + r["frames_comfort"] == r["truth_frames_lost"]


@pytest.mark.parametrize("plc", ["repeat", "lm"])
def test_uniform_loss_report_is_consistent(tmp_path: Path, test_weights: Path, short_speech: Path, plc: str) -> None:
    r = _transmit(tmp_path, test_weights, short_speech, "--channel", "uniform:0.2", "--seed", "3", "--plc", plc)
    assert r["untrained_weights"] is True and r["warnings"] == []
    assert r["frames"] == r["packets_sent"] == 50  # 4 s, one frame a packet
    assert 0.05 < r["loss_rate"] < 0.4
    assert r["truth_frames_primary_lost"] == r["packets_lost"]
    assert r["frames_recovered"] + r["frames_partial"] > 0  # feedback reached the sender, copies rescued
    assert r["frames_concealed"] > 0
    assert 300 <= r["payload_bps"] <= 2062.5  # the budget caps every payload byte
    assert r["wire_bps"] == pytest.approx(r["payload_bps"] + 40 * 8 * 12.5, rel=0.01)
    assert 1 <= r["mean_codebooks"] <= 8
    assert r["realtime_factor"] > 0 and r["late_used"] >= 0
    if plc == "lm":
        assert set(r["plc_timing_ms"]) >= {"conceal"}


def test_counts_match_ground_truth_over_seeds_and_channels(models: Any, short_speech: Path) -> None:
    from largesc_codec.cli.transmit import build_concealer, simulate
    from largesc_codec.sim.channel import parse_channel

    pcm, rate = read_audio(short_speech)
    seen: dict[str, int] = {}
    for channel in ("uniform:0.2", "ge:0.1,0.4"):
        for seed in (0, 1):
            for codebooks in (8, 4):
                sim = simulate(pcm, rate, models, parse_channel(channel, seed=seed),
                               build_concealer("repeat", models), max_codebooks=codebooks)
                t, src = sim.truth, sim.sources
                where = (channel, seed, codebooks, t.mismatches[:3])
                assert t.mismatches == [], where
                assert src["primary"] == t.played["primary"], where
                assert src["recovered"] == t.played["recovered"], where
                assert src["partial"] == t.played["partial"], where
                assert src["concealed"] + src["comfort"] == t.played["lost"], where
                assert sum(t.played.values()) + sim.skipped == sim.frames, where
                assert len(sim.pcm) == (sim.frames - sim.skipped + sim.held) * 1920, where
                if codebooks == 8:  # 8 + 7 copy tokens: a copy never holds the whole frame
                    assert src["recovered"] == 0, where
                for k, n in t.played.items():
                    seen[k] = seen.get(k, 0) + n
    assert all(seen.get(k, 0) > 0 for k in ("primary", "recovered", "partial", "lost")), seen


def test_bursty_loss_and_zero_loss(tmp_path: Path, test_weights: Path, short_speech: Path) -> None:
    ge = _transmit(tmp_path, test_weights, short_speech, "--channel", "ge:0.05,0.3", "--seed", "1",
                   "--plc", "repeat")
    assert ge["packets_lost"] > 0 and ge["frames_concealed"] + ge["frames_comfort"] > 0
    clean = _transmit(tmp_path, test_weights, short_speech, "--channel", "none", "--plc", "none",
                      "--max-bps", "1100")
    assert clean["packets_lost"] == 0 and clean["frames_concealed"] == 0
    assert clean["frames_skipped_missing"] == 0 and clean["frames_skipped"] <= 2
    assert clean["payload_bps"] <= 1100


@pytest.mark.parametrize("budget", ["550", "1100", "2062.5"])
def test_the_budget_caps_the_whole_payload(tmp_path: Path, test_weights: Path, short_speech: Path,
                                           budget: str) -> None:
    """Issue 15: --max-bps caps ToC, padding and redundancy too; token_bps is what the research counts."""
    r = _transmit(tmp_path, test_weights, short_speech, "--channel", "uniform:0.15", "--seed", "4", "--plc",
                  "repeat", "--max-bps", budget)
    assert r["payload_bps"] <= float(budget), r["payload_bps"]
    assert 0 < r["token_bps"] < r["payload_bps"]
    if budget == "2062.5":  # room for copies within the cap (at 1100 a copy's ToC costs 2 primary codebooks)
        assert r["frames_recovered"] + r["frames_partial"] > 0


@pytest.mark.parametrize("delay", ["250", "10000"])
def test_network_delay_is_played_out(tmp_path: Path, test_weights: Path, short_speech: Path, delay: str) -> None:
    r = _transmit(tmp_path, test_weights, short_speech, "--channel", "uniform:0.1", "--seed", "2", "--plc",
                  "repeat", "--delay-ms", delay, "--max-delay-ms", "120")
    assert r["delay_ms"] == float(delay) and r["max_delay_ms"] == 120
    assert r["frames_primary"] > r["frames"] // 2  # a long delay delays the audio, it does not lose it
    assert r["jitter"]["target_delay_ms"] <= 120


def test_few_codebooks_and_truncated_input(tmp_path: Path, test_weights: Path, speech_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.wav"
    cut.write_bytes(speech_file.read_bytes()[:30_000])  # header says 7.1 s, ~0.94 s left
    r = _transmit(tmp_path, test_weights, cut, "--max-codebooks", "3", "--plc", "repeat")
    assert r["mean_codebooks"] <= 3 and r["frames"] == 12
    assert len(r["warnings"]) == 1 and "truncated" in r["warnings"][0] and "7.10 s" in r["warnings"][0]
    assert "warning:" in capsys.readouterr().err


BAD_OPTIONS = [
    (["--delay-ms", "nan"], "--delay-ms must be a finite number of milliseconds in 0..10000"),
    (["--delay-ms", "-10"], "--delay-ms must be"),
    (["--delay-ms", "100000"], "--delay-ms must be"),
    (["--max-delay-ms", "inf"], "--max-delay-ms must be"),
    (["--max-codebooks", "40"], "--max-codebooks must be 1..32"),
    (["--max-codebooks", "0"], "--max-codebooks must be 1..32"),
    (["--max-bps", "400"], "--max-bps must be at least 550"),
    (["--max-codebooks", "2", "--max-bps", "200"], "--max-bps must be at least 275"),
]


@pytest.mark.parametrize("extra, message", BAD_OPTIONS)
def test_bad_options_are_one_line_errors(tmp_path: Path, short_speech: Path, capsys: pytest.CaptureFixture[str],
                                         extra: list[str], message: str) -> None:
    # No weights needed: options are checked before anything is loaded.
    rc = main(["transmit", str(short_speech), str(tmp_path / "o.wav"), "--weights", str(tmp_path / "none"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_user_errors_are_one_line(tmp_path: Path, test_weights: Path, short_speech: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    assert main(["transmit", str(bad), str(tmp_path / "o.wav"), "--weights", str(test_weights)]) == 2
    assert "cannot decode" in capsys.readouterr().err
    assert main(["transmit", str(bad), str(tmp_path / "o.wav"), "--channel", "uniform:2"]) == 2
    assert "channel" in capsys.readouterr().err
    good = tmp_path / "tone.wav"
    write_wav(good, np.zeros(16000, np.float32), 16000)
    assert main(["transmit", str(good), str(tmp_path / "o.wav"), "--weights", str(tmp_path / "none")]) == 3
    assert "make-test-weights" in capsys.readouterr().err
    # Unwritable OUT or --report fail at once (before the weights are even looked for: rc 2, not 3).
    for extra, what in (([str(tmp_path / "no" / "o.wav")], "cannot write OUT"),
                        ([str(tmp_path / "o.wav"), "--report", str(tmp_path / "no" / "r.json")], "cannot write --report"),
                        ([str(short_speech)], "is the input file")):
        assert main(["transmit", str(short_speech), *extra, "--weights", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert what in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.wav").exists()  # the writability probe leaves nothing behind
