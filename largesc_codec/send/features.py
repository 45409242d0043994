"""Cheap per-frame content features for the sender's controller.

One 80 ms frame (1920 float32 samples at 24 kHz) gives four numbers and one
boolean, all from plain numpy (well under 0.2 ms a frame):

* ``energy_db``: mean power in dBFS, 0 dB = a full-scale square wave (RMS 1),
  so a full-scale sine is -3.01 dB; digital silence is clamped to -100 dB.
* ``zcr``: zero-crossing rate, the fraction of adjacent sample pairs whose sign
  differs (0..1). Voiced speech at 24 kHz sits around 0.005-0.05, white noise
  near 0.5, fricatives in between.
* ``flatness``: spectral flatness (geometric / arithmetic mean of the Hann-windowed
  power spectrum) over 80 Hz-4 kHz, 0..1. Tones and harmonic speech are near 0,
  white noise about 0.5-0.6 (a single periodogram's flatness is exp(-gamma) = 0.56).
* ``periodicity``: peak of the normalised autocorrelation at lags of 2.5-16.7 ms
  (pitch 60-400 Hz), 0..1: high for voiced speech, low for noise.

``voiced`` is the simple rule: loud enough (energy > -55 dBFS), periodic
(periodicity >= 0.45) and tonal rather than noisy (flatness < 0.3,
zcr < 0.25). It is a cue for the controller's voice-activity detector, not a
pitch tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE

SILENCE_DB = -100.0
VOICED_MIN_DB = -55.0
VOICED_MIN_PERIODICITY = 0.45
VOICED_MAX_FLATNESS = 0.3
VOICED_MAX_ZCR = 0.25

_FFT_SIZE = 4096  # >= 2 * 1920: zero padding makes the FFT autocorrelation linear, not circular
_WINDOW = np.hanning(FRAME_SAMPLES).astype(np.float32)
_BAND = slice(round(80 * _FFT_SIZE / SAMPLE_RATE), round(4000 * _FFT_SIZE / SAMPLE_RATE) + 1)
_MIN_LAG = SAMPLE_RATE // 400  # 60 samples = 400 Hz
_MAX_LAG = SAMPLE_RATE // 60  # 400 samples = 60 Hz
_TINY = 1e-12
_SMOOTH = np.full(31, 1.0 / 31)  # 31 bins of 5.9 Hz


@dataclass(frozen=True)
class FrameFeatures:
    """Content features of one 1920-sample frame (see the module header for units)."""

    energy_db: float
    zcr: float
    flatness: float
    periodicity: float
    voiced: bool

    def __post_init__(self) -> None:
        if not np.isfinite(self.energy_db) or self.energy_db > 10.0:
            raise ValueError(f"energy_db must be finite dBFS <= 10, got {self.energy_db!r}")
        for name in ("zcr", "flatness", "periodicity"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be within 0..1, got {value!r}")


def _check_frame(pcm: object) -> NDArray[Any]:
    if not isinstance(pcm, np.ndarray):
        raise ValueError(f"frame must be a numpy array of {FRAME_SAMPLES} float samples, got {type(pcm).__name__}")
    if pcm.ndim != 1:
        raise ValueError(
            f"frame must be 1-D mono with shape ({FRAME_SAMPLES},), got shape {pcm.shape}: "
            "downmix and frame it first (largesc_codec.neural.framing)"
        )
    if pcm.shape[0] != FRAME_SAMPLES:
        raise ValueError(
            f"frame must hold exactly {FRAME_SAMPLES} samples (80 ms at {SAMPLE_RATE} Hz), got {pcm.shape[0]}"
        )
    if not np.issubdtype(pcm.dtype, np.floating):
        raise ValueError(f"frame must be float samples in [-1, 1], got dtype {pcm.dtype}: scale integer PCM first")
    if not np.all(np.isfinite(pcm)):
        raise ValueError("frame contains NaN or infinite samples")
    return pcm.astype(np.float32, copy=False)


def frame_features(pcm: NDArray[Any]) -> FrameFeatures:
    """Features of one frame.

    Args:
        pcm: float32 (or float64) array of shape (1920,), 24 kHz mono, nominally
            within [-1, 1] (louder samples are accepted and simply read as > 0 dBFS).

    Raises:
        ValueError: not a 1-D float array of exactly 1920 finite samples.
    """
    x = _check_frame(pcm)
    power = float(np.dot(x, x)) / FRAME_SAMPLES
    energy_db = max(SILENCE_DB, 10.0 * np.log10(power + _TINY))
    signs = np.signbit(x)
    zcr = float(np.count_nonzero(signs[1:] != signs[:-1])) / (FRAME_SAMPLES - 1)
    if power < 1e-10:  # digital silence: no spectrum to speak of
        return FrameFeatures(SILENCE_DB, zcr, 1.0, 0.0, False)

    spec = np.fft.rfft(x * _WINDOW, _FFT_SIZE)
    psd = spec.real**2 + spec.imag**2
    band = psd[_BAND] + _TINY
    flatness = float(np.exp(np.mean(np.log(band))) / np.mean(band))
    # Periodicity from a half-whitened spectrum: dividing by the square root of a ~180 Hz
    # moving average keeps harmonic peaks but tames coloured (pink, brown) noise, whose raw
    # autocorrelation is high too; full whitening would also flatten pitch-jittered speech.
    white = np.zeros_like(psd)
    white[_BAND] = band / np.sqrt(np.convolve(band, _SMOOTH, mode="same") + _TINY)
    acf = np.fft.irfft(white, _FFT_SIZE)[: _MAX_LAG + 1]
    norm = acf[_MIN_LAG:] / (acf[0] + _TINY) * (_WINDOW_ACF[0] / _WINDOW_ACF[_MIN_LAG : _MAX_LAG + 1])
    periodicity = float(np.clip(norm.max(), 0.0, 1.0))
    voiced = bool(
        energy_db > VOICED_MIN_DB
        and periodicity >= VOICED_MIN_PERIODICITY
        and flatness < VOICED_MAX_FLATNESS
        and zcr < VOICED_MAX_ZCR
    )
    return FrameFeatures(float(energy_db), zcr, min(1.0, flatness), periodicity, voiced)


def _window_acf() -> NDArray[Any]:
    spec = np.fft.rfft(_WINDOW, _FFT_SIZE)
    return np.fft.irfft(spec.real**2 + spec.imag**2, _FFT_SIZE)


_WINDOW_ACF = _window_acf()
