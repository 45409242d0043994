"""Fixtures for the evaluation tests: two short real speech clips (LibriVox, ~3 s)."""

from __future__ import annotations

import pytest

from largesc_codec.evaluation.data import Clip, load_librivox

SHORT_CLIPS = ("sense_and_sensibility_01_austen_64kb-0880", "sense_and_sensibility_01_austen_64kb-0930")


@pytest.fixture(scope="session")
def short_clips() -> list[Clip]:
    """The two shortest LibriVox clips of pocketsphinx-testdata (3.0 s and 3.3 s, 16 kHz)."""
    clips = [c for c in load_librivox() if c.name in SHORT_CLIPS]
    assert len(clips) == 2, "pocketsphinx-testdata's LibriVox clips are missing"
    return clips
