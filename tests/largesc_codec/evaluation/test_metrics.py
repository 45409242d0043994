"""Metric sanity: the reference scores high against itself, noise and gaps score low."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from largesc_codec.evaluation import metrics as M
from largesc_codec.evaluation.data import Clip, load_librivox, resample


def _noise(clip: Clip, seed: int = 0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(clip.pcm**2)))
    return (rms * np.random.default_rng(seed).standard_normal(len(clip.pcm))).astype(np.float32)


def _gaps(clip: Clip, every: int = 4) -> np.ndarray:
    """Zero one 20 ms frame in ``every`` (a crude 25 % loss without concealment)."""
    out = clip.pcm.copy()
    for i in range(0, len(out), every * 320):
        out[i: i + 320] = 0.0
    return out


@pytest.mark.parametrize("text,expected", [
    ("Mr. Smith paid $5, didn't he?", "mister smith paid five didn't he"),
    ("Press 1 or 21 -- 100%!", "press one or twenty one one hundred percent"),
    ("'Quoted' well-known & OK", "quoted well known and okay"),
    ("1,250 DOGS", "one thousand two hundred fifty dogs"),
])
def test_normalize_text(text: str, expected: str) -> None:
    assert M.normalize_text(text) == expected


def test_number_words() -> None:
    assert M.number_words(0) == "zero"
    assert M.number_words(342) == "three hundred forty two"
    assert M.number_words(2_000_015) == "two million fifteen"


def test_word_error_rate() -> None:
    assert M.word_error_rate("Mr. Dashwood", "mister dashwood") == 0.0
    assert M.word_error_rate("a b c d", "a x c") == pytest.approx(0.5)
    assert M.word_error_rate("a b", "") == 1.0
    with pytest.raises(ValueError, match="no words"):
        M.word_error_rate("...", "a")


def test_plcmos_clean_beats_gaps_and_is_repeatable(short_clips: list[Clip]) -> None:
    clip = short_clips[0]
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    clean = M.plcmos(clip.pcm, clip.sample_rate)
    assert np.random.random() == expected  # the caller's global RNG stream is untouched
    assert M.plcmos(clip.pcm, clip.sample_rate) == clean
    assert clean > 4.0
    assert M.plcmos(_gaps(clip), clip.sample_rate) < clean - 0.7
    # Rate handling: the same audio at 24 kHz scores about the same.
    up = resample(clip.pcm, 16000, 24000)
    assert M.plcmos(up, 24000) == pytest.approx(clean, abs=0.15)


def test_visqol_self_high_noise_low(short_clips: list[Clip]) -> None:
    clip = short_clips[0]
    same = M.visqol(clip.pcm, clip.pcm, clip.sample_rate)
    assert same > 4.3
    assert M.visqol(clip.pcm, _noise(clip), clip.sample_rate) < 2.0
    assert M.visqol(clip.pcm, _gaps(clip), clip.sample_rate) < same - 0.5
    up = resample(clip.pcm, 16000, 24000)
    assert M.visqol(clip.pcm, up, 16000, 24000) > 4.3


def test_wer_reference_vs_noise(short_clips: list[Clip]) -> None:
    for clip in short_clips:
        wer, hyp = M.wer(clip.transcript, clip.pcm, clip.sample_rate)
        assert wer < 0.5, hyp  # pocketsphinx gets most words of clean read speech
        noise_wer, _ = M.wer(clip.transcript, _noise(clip), clip.sample_rate)
        assert noise_wer > 0.8


def test_metric_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="mono"):
        M.plcmos(np.zeros((2, 100), np.float32), 16000)
    with pytest.raises(ValueError, match="NaN"):
        M.plcmos(np.full(1600, np.nan, np.float32), 16000)


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jiwer", None)
    with pytest.raises(ImportError, match="jiwer.*pip install"):
        M.word_error_rate("a", "a")


def test_transcript_does_not_depend_on_earlier_clips() -> None:
    # The 7.1 s clip is the one whose transcript changed after a noisy clip ("and" -> "had")
    # while the decoder carried its feature state over; a fresh decoder is the yardstick.
    import pocketsphinx

    clip = next(c for c in load_librivox() if c.name.endswith("-0870"))
    x16 = (clip.pcm * 32767.0).astype("<i2").tobytes()
    fresh = pocketsphinx.Decoder(samprate=M.METRIC_RATE, loglevel="FATAL")
    fresh.start_utt()
    fresh.process_raw(x16, no_search=False, full_utt=True)
    fresh.end_utt()
    expected = M.normalize_text(fresh.hyp().hypstr)
    first = M.transcribe(clip.pcm, clip.sample_rate)
    M.transcribe((0.3 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), 16000)
    again = M.transcribe(clip.pcm, clip.sample_rate)
    assert first == again == expected
