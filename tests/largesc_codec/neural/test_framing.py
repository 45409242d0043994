"""Framing: any PCM chunking and rate becomes exact 1920-sample 24 kHz frames."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from largesc_codec.neural.framing import Framer, decode_audio, frames_from_file, read_audio, to_float32, write_wav
from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE


def _tone(rate: int, seconds: float, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _run(framer: Framer, pcm: np.ndarray, chunk: int) -> np.ndarray:
    frames = []
    for i in range(0, len(pcm), chunk):
        frames += framer.push(pcm[i : i + chunk])
    frames += framer.flush()
    assert all(f.shape == (FRAME_SAMPLES,) and f.dtype == np.float32 for f in frames)
    return np.concatenate(frames) if frames else np.zeros(0, np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("chunk", [1, 37, 160, 1920, 100_000])
def test_any_rate_any_chunk_gives_whole_frames_and_keeps_duration(rate: int, chunk: int) -> None:
    seconds = 0.5 if chunk > 1 else 0.05
    pcm = _tone(rate, seconds)
    out = _run(Framer(rate), pcm, chunk)
    expected = len(pcm) * SAMPLE_RATE / rate
    frames_needed = int(np.ceil(expected / FRAME_SAMPLES))
    assert len(out) == frames_needed * FRAME_SAMPLES  # last partial frame padded, not dropped
    # Resampling keeps the tone: energy of the first expected samples close to 0.125 (0.5^2/2).
    body = out[200 : int(expected) - 200]
    assert abs(float(np.mean(body**2)) - 0.125) < 0.01
    assert np.all(out[int(expected) + 50 :] == 0.0)  # only zero padding after the signal


def test_chunking_does_not_change_output() -> None:
    pcm = _tone(16000, 0.4)
    a = _run(Framer(16000), pcm, 7)
    b = _run(Framer(16000), pcm, 5000)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_stereo_is_downmixed() -> None:
    left = _tone(48000, 0.3, 300)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    out = _run(Framer(48000, channels=2), stereo, 1000)
    mono = _run(Framer(48000), left, 1000)
    np.testing.assert_allclose(out, 0.5 * mono, atol=1e-3)


def test_int16_input_scaled() -> None:
    pcm = (_tone(24000, 0.08) * 32767).astype(np.int16)
    out = _run(Framer(24000), pcm, 512)
    assert len(out) == FRAME_SAMPLES
    assert 0.45 < np.max(np.abs(out)) <= 0.5


def test_exact_multiple_has_no_extra_frame() -> None:
    pcm = np.zeros(FRAME_SAMPLES * 3, np.float32)
    assert len(_run(Framer(24000), pcm, 1000)) == 3 * FRAME_SAMPLES


def test_empty_stream_gives_no_frame() -> None:
    f = Framer(16000)
    assert f.push(np.zeros(0, np.float32)) == []
    assert f.flush() == []


@pytest.mark.parametrize("rate", [0, -8000, 100, 10**7, 16000.0])
def test_bad_sample_rate_rejected(rate: object) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        Framer(rate)  # type: ignore[arg-type]


def test_bad_chunks_rejected() -> None:
    f = Framer(16000)
    with pytest.raises(ValueError, match="channels"):
        f.push(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        f.push(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        f.push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="dtype"):
        f.push(np.array(["a"]))
    with pytest.raises(ValueError, match="channels"):
        Framer(16000, channels=6)
    f.flush()
    with pytest.raises(ValueError, match="flushed"):
        f.push(np.zeros(10, np.float32))


def test_to_float32_ranges() -> None:
    assert to_float32(np.array([-32768], np.int16))[0] == -1.0
    assert to_float32(np.array([128], np.uint8))[0] == 0.0


def test_files_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    pcm = _tone(24000, 0.2)
    write_wav(path, pcm, 24000)
    back, rate = read_audio(path)
    assert rate == 24000 and back.shape == (len(pcm), 1)
    np.testing.assert_allclose(back[:, 0], pcm, atol=1e-4)
    assert len(frames_from_file(path)) == int(np.ceil(len(pcm) / FRAME_SAMPLES))

    truncated = tmp_path / "t.wav"
    truncated.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ValueError, match="t.wav"):
        read_audio(truncated)
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(b"not audio at all" * 10)
    with pytest.raises(ValueError, match="cannot decode|no audio"):
        read_audio(garbage)
    with pytest.raises(ValueError, match="does not exist"):
        read_audio(tmp_path / "missing.wav")


def test_wav_8k_file_is_resampled(tmp_path: Path) -> None:
    path = tmp_path / "n.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((_tone(8000, 1.0) * 32767).astype("<i2").tobytes())
    frames = frames_from_file(path)
    assert len(frames) == int(np.ceil(24000 / FRAME_SAMPLES))


def test_truncated_wav_is_reported_with_its_declared_length(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    write_wav(path, _tone(16000, 3.0), 16000)
    whole = decode_audio(path)
    assert whole.declared_samples == 48000 == len(whole.pcm) and whole.truncation_warning(path) is None
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:30_044])  # 44-byte header + 15000 samples
    audio = decode_audio(cut)
    assert len(audio.pcm) == 15000 and audio.declared_samples == 48000
    assert audio.missing_s == pytest.approx(2.0625)
    warning = audio.truncation_warning(cut)
    assert warning is not None and "cut.wav is truncated" in warning and "3.00 s" in warning
    # A few samples short is not worth a warning (< 80 ms).
    cut.write_bytes(path.read_bytes()[: 44 + 2 * 47000])
    assert decode_audio(cut).truncation_warning(cut) is None


def test_write_wav_to_an_unwritable_path_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import sys

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(OSError):
        write_wav(tmp_path / "missing-dir" / "x.wav", _tone(24000, 0.1))
    gc.collect()
    assert unraisable == []  # no half-made Wave_write complaining in __del__
