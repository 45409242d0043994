"""Per-frame content features: values on synthetic signals, every malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from largesc_codec.send.features import FrameFeatures, frame_features

N = 1920
T = np.arange(N) / 24_000


def harmonic(f0: float, level: float = 0.1, n_harm: int = 20) -> np.ndarray:
    """A voiced-like frame: harmonics of f0 with decaying amplitudes."""
    x = sum(0.8**k * np.sin(2 * np.pi * f0 * k * T + k) for k in range(1, n_harm) if f0 * k < 11_000)
    return (level * x / np.sqrt(np.mean(x**2))).astype(np.float32)


def coloured_noise(rng: np.random.Generator, slope: float, level: float = 0.05) -> np.ndarray:
    """Noise with power ~ 1 / f**slope (0 white, 1 pink, 2 brown), RMS ``level``."""
    spec = np.fft.rfft(rng.normal(size=8192))
    f = np.arange(spec.size)
    spec[1:] /= f[1:] ** (slope / 2)
    spec[0] = 0
    x = np.fft.irfft(spec)[:N]
    return (level * x / x.std()).astype(np.float32)


def test_digital_silence() -> None:
    f = frame_features(np.zeros(N, np.float32))
    assert f == FrameFeatures(-100.0, 0.0, 1.0, 0.0, False)


@pytest.mark.parametrize("amp, db", [(1.0, -3.0103), (0.1, -23.0103), (0.001, -63.0103)])
def test_energy_is_dbfs_of_a_sine(amp: float, db: float) -> None:
    f = frame_features((amp * np.sin(2 * np.pi * 250 * T)).astype(np.float32))
    assert f.energy_db == pytest.approx(db, abs=0.01)


def test_white_noise_is_flat_noisy_and_unvoiced() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = frame_features(rng.normal(0, 0.1, N).astype(np.float32))
        assert 0.45 < f.zcr < 0.55
        assert f.flatness > 0.45
        assert f.periodicity < 0.4
        assert not f.voiced


@pytest.mark.parametrize("slope", [1.0, 2.0])
def test_coloured_noise_is_unvoiced(slope: float) -> None:
    rng = np.random.default_rng(int(slope))
    assert not any(frame_features(coloured_noise(rng, slope)).voiced for _ in range(100))


@pytest.mark.parametrize("f0", [90.0, 120.0, 220.0, 350.0])
def test_harmonic_frames_are_voiced(f0: float) -> None:
    f = frame_features(harmonic(f0))
    assert f.voiced
    assert f.periodicity > 0.8
    assert f.flatness < 0.05
    assert f.zcr < 0.1


def test_voicing_survives_moderate_noise_but_not_low_level() -> None:
    rng = np.random.default_rng(3)
    noisy = harmonic(150.0, 0.1) + rng.normal(0, 0.02, N).astype(np.float32)  # 14 dB SNR
    assert frame_features(noisy).voiced
    quiet = frame_features(harmonic(150.0, 10 ** (-70 / 20)))  # periodic but at -70 dBFS
    assert quiet.periodicity > 0.8 and not quiet.voiced


def test_float64_is_accepted_and_matches_float32() -> None:
    x = harmonic(130.0)
    a, b = frame_features(x), frame_features(x.astype(np.float64))
    assert a.voiced == b.voiced and a.energy_db == pytest.approx(b.energy_db, abs=1e-4)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(N - 1, np.float32), "exactly 1920"),
        (np.zeros(N + 1, np.float32), "exactly 1920"),
        (np.zeros(0, np.float32), "exactly 1920"),
        (np.zeros((N, 1), np.float32), "1-D mono"),
        (np.zeros((2, N), np.float32), "1-D mono"),
        (np.zeros((), np.float32), "1-D mono"),
        (np.zeros(N, np.int16), "float samples"),
        ([0.0] * N, "numpy array"),
        (np.full(N, np.nan, np.float32), "NaN or infinite"),
        (np.concatenate([np.zeros(N - 1), [np.inf]]).astype(np.float32), "NaN or infinite"),
    ],
)
def test_malformed_frames_raise(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frame_features(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(energy_db=float("nan")),
        dict(energy_db=20.0),
        dict(zcr=1.5),
        dict(flatness=-0.1),
        dict(periodicity=float("inf")),
    ],
)
def test_impossible_feature_values_raise(kwargs: dict[str, float]) -> None:
    base = dict(energy_db=-20.0, zcr=0.1, flatness=0.1, periodicity=0.5, voiced=True)
    with pytest.raises(ValueError):
        FrameFeatures(**{**base, **kwargs})  # type: ignore[arg-type]
