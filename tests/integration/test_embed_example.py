"""examples/embed.py (README "In your own program") runs as written, offline, on the test weights.

Its printed counts must add up (every frame sent is played or skipped; the
output holds the played frames and the holds) and agree with the WAV it writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "embed.py"
KINDS = ("primary", "recovered", "partial", "concealed", "comfort")


@pytest.fixture(scope="module")
def clip(speech_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 s of the speech clip at its own rate (16 kHz): the example resamples."""
    from largesc_codec.neural.framing import read_audio, write_wav

    pcm, rate = read_audio(speech_file)
    path = tmp_path_factory.mktemp("embed") / "clip.wav"
    write_wav(path, pcm[: 3 * rate, 0], rate)
    return path


def _embed(tmp_path: Path, clip: Path, *args: str, weights_env: Path | None = None) -> dict[str, int]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("LARGESC_WEIGHTS", None)
    if weights_env is not None:
        env["LARGESC_WEIGHTS"] = str(weights_env)
    out = tmp_path / "received.wav"
    done = subprocess.run([sys.executable, str(EXAMPLE), str(clip), str(out), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    sent = re.search(r"sent (\d+) frames in (\d+) packets, (\d+) lost; payload (\d+) bit/s", text)
    played = re.search(r"played " + ", ".join(rf"(\d+) {k}" for k in KINDS) + r"; (\d+) skipped, (\d+) held", text)
    assert sent and played, text
    counts = dict(zip(("frames", "packets", "lost", "bps"), map(int, sent.groups())))
    counts.update(zip((*KINDS, "skipped", "held"), map(int, played.groups())))
    assert f"wrote {out}" in text and "untrained weights" in text
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        counts["wav_frames"] = w.getnframes()
    return counts


def _check_totals(c: dict[str, int]) -> None:
    assert c["frames"] == 38  # ceil(3 s * 24000 / 1920)
    assert c["packets"] == c["frames"]  # one frame a packet
    assert sum(c[k] for k in KINDS) + c["skipped"] == c["frames"]
    assert c["wav_frames"] == (sum(c[k] for k in KINDS) + c["held"]) * 1920
    assert 1100 <= c["bps"] <= 1400  # the 1100 bit/s token budget plus the payload's table of contents


def test_lossy_run_with_lm_concealment(tmp_path: Path, clip: Path, test_weights: Path) -> None:
    c = _embed(tmp_path, clip, "--weights", str(test_weights), "--plc", "lm", "--loss", "0.2", "--seed", "0")
    _check_totals(c)
    assert c["lost"] > 0
    assert c["concealed"] + c["partial"] + c["recovered"] > 0  # lost frames were rebuilt or predicted


def test_clean_run_reads_weights_from_the_environment(tmp_path: Path, clip: Path, test_weights: Path) -> None:
    c = _embed(tmp_path, clip, "--loss", "0", "--jitter-ms", "0", weights_env=test_weights)
    _check_totals(c)
    assert c["lost"] == 0
    assert c["primary"] == c["frames"] and c["held"] == 0
