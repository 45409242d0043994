"""Shared fixtures: small real-format checkpoints built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory written by `largesc make-test-weights` (untrained small models)."""
    import torch

    torch.set_num_threads(2)
    from largesc_codec.train.testweights import make_test_weights

    return make_test_weights(tmp_path_factory.mktemp("weights"), seed=0)


@pytest.fixture(scope="session")
def models(test_weights: Path):  # type: ignore[no-untyped-def]
    from largesc_codec.neural.model import load_models

    return load_models(str(test_weights))


@pytest.fixture(scope="session")
def speech_file() -> Path:
    """A real LibriVox speech clip (Debian pocketsphinx-testdata, installed by the set-up)."""
    path = SPEECH_DIR / "sense_and_sensibility_01_austen_64kb-0870.wav"
    if not path.exists():
        pytest.fail(f"{path} missing: the test set-up installs Debian's pocketsphinx-testdata")
    return path
