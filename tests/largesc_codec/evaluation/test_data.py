"""Speech loaders: LibriVox, Asterisk G.722 prompts, LibriSpeech-layout directories."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from largesc_codec.evaluation.data import (
    asterisk_transcripts,
    load_asterisk,
    load_clips,
    load_librispeech,
    load_librivox,
    read_audio,
    resample,
)


def test_librivox_clips_are_float_mono_16k_with_transcripts() -> None:
    clips = load_librivox()
    assert len(clips) == 5
    for c in clips:
        assert c.pcm.dtype == np.float32 and c.pcm.ndim == 1
        assert c.sample_rate == 16000 and 2.5 < c.seconds < 8
        assert 0.05 < np.abs(c.pcm).max() <= 1.0
        assert c.transcript and "<s>" not in c.transcript and "(" not in c.transcript
        assert "tidigits" not in c.name
    assert clips[0].transcript.startswith("and mister john dashwood")


def test_asterisk_prompts_decode_from_g722_with_transcripts() -> None:
    texts = asterisk_transcripts()
    assert texts["digits/5"] == "five"
    assert not any(t.startswith("[") for t in texts.values())  # non-speech prompts dropped
    clips = load_asterisk(max_clips=3, min_seconds=0.5)
    assert len(clips) == 3
    for c in clips:
        assert c.sample_rate == 16000 and c.pcm.dtype == np.float32
        assert c.seconds >= 0.5 and np.abs(c.pcm).max() > 0.05  # real audio, not silence
        assert c.transcript == texts[c.name]


def _write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm * 32767).astype("<i2").tobytes())


def test_librispeech_layout_directory(tmp_path: Path) -> None:
    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000).astype(np.float32)
    _write_wav(chapter / "19-198-0001.wav", tone, 8000)
    _write_wav(chapter / "19-198-0002.wav", tone[::-1].copy(), 8000)
    (chapter / "19-198.trans.txt").write_text("19-198-0001 HELLO WORLD\n\n19-198-0002 GOOD BYE\n")
    clips = load_clips(str(tmp_path))
    assert [(c.name, c.transcript, c.sample_rate) for c in clips] == [
        ("19-198-0001", "HELLO WORLD", 8000), ("19-198-0002", "GOOD BYE", 8000)]
    assert np.allclose(clips[0].pcm, tone, atol=1e-4)
    assert [c.name for c in load_clips(str(tmp_path), max_clips=1)] == ["19-198-0001"]


def test_librispeech_utterance_without_audio_is_an_error(tmp_path: Path) -> None:
    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    _write_wav(chapter / "19-198-0001.wav", np.zeros(800, np.float32), 8000)
    (chapter / "19-198.trans.txt").write_text(
        "19-198-0001 HELLO\n19-198-0002 NO AUDIO\n19-198-0003 NONE EITHER\n")
    with pytest.raises(ValueError, match=r"2 utterance.*no audio file.*19-198-0002.*19-198-0003"):
        load_clips(str(tmp_path))
    with pytest.raises(ValueError, match="2 utterance"):  # also when --max-clips would stop early
        load_clips(str(tmp_path), max_clips=1)
    (chapter / "19-198.trans.txt").write_text("\n")
    with pytest.raises(ValueError, match="list no utterances"):
        load_clips(str(tmp_path))
    with pytest.raises(ValueError, match="max-clips"):
        load_clips("librivox", max_clips=0)


def test_clear_errors_for_missing_or_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="trans.txt"):
        load_librispeech(tmp_path)
    with pytest.raises(ValueError, match="librivox"):
        load_clips("no-such-source")
    with pytest.raises(FileNotFoundError, match="pocketsphinx-testdata"):
        load_librivox(tmp_path)
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(ValueError, match="cannot decode"):
        read_audio(bad)


def test_resample_keeps_timing() -> None:
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, 16000, 24000)
    assert y.shape == (24000,) and y.dtype == np.float32
    # The peak of the cross-correlation with a 24 kHz sine is at lag 0 (no delay).
    ref = np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)
    assert np.corrcoef(y[1000:-1000], ref[1000:-1000])[0, 1] > 0.999
