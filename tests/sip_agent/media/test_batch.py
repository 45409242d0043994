"""The process's batch thread: calls on their own threads get exactly their lone results, in shared steps."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from largesc_codec.neural.decoder import MimiDecoder
from largesc_codec.neural.encoder import MimiEncoder
from sip_agent.media.batch import MimiBatch

pytestmark = pytest.mark.model

FRAMES = 8


def _call(batch: MimiBatch, models: Any, seed: int, codebooks: int, out: dict[int, Any],
          ready: threading.Barrier | None = None) -> None:
    """One call's codec thread: encode and decode FRAMES frames through the batch and through lone models."""
    rng = np.random.default_rng(seed)
    encoder, decoder = batch.attach(codebooks)
    lone_enc, lone_dec = MimiEncoder(models.new_mimi(), codebooks), MimiDecoder(models.new_mimi())
    try:
        if ready is not None:  # all calls attached and built: they run side by side
            ready.wait(60)
        for _ in range(FRAMES):
            pcm = (rng.standard_normal(1920) * 0.1).astype(np.float32)
            tokens = encoder.encode(pcm)
            np.testing.assert_array_equal(tokens, lone_enc.encode(pcm))
            np.testing.assert_allclose(decoder.decode(tokens), lone_dec.decode(tokens), rtol=1e-4, atol=1e-5)
        out[seed] = "ok"
    except BaseException as exc:  # reported by the test thread
        out[seed] = exc
    finally:
        batch.detach(encoder.row)


def test_calls_on_their_own_threads_share_steps_and_get_their_lone_results(models: Any) -> None:
    batch = MimiBatch(models.new_mimi(), models.new_mimi(), streams=3)
    out: dict[int, Any] = {}
    ready = threading.Barrier(3)
    threads = [threading.Thread(target=_call, args=(batch, models, seed, k, out, ready))
               for seed, k in ((1, 8), (2, 4), (3, 8))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert out == {1: "ok", 2: "ok", 3: "ok"}, out
    requests = 3 * FRAMES
    # Every call waits on each request, so rounds gather what the others sent meanwhile.
    assert batch.steps_encode < requests and batch.steps_decode < requests, (batch.steps_encode, batch.steps_decode)
    # A row freed by a call that left is reset for the next one: its results are those of a fresh lone model.
    late: dict[int, Any] = {}
    _call(batch, models, 4, 8, late)
    assert late == {4: "ok"}, late


def test_rows_are_capped_and_bad_frames_fail_only_their_call(models: Any) -> None:
    batch = MimiBatch(models.new_mimi(), models.new_mimi(), streams=1)
    encoder, decoder = batch.attach(8)
    with pytest.raises(RuntimeError, match="all 1 batch rows are in use"):
        batch.attach(8)
    with pytest.raises(ValueError, match="one frame of shape"):
        encoder.encode(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="tokens in 0..2047"):
        decoder.decode([5000])
    assert encoder.encode(np.zeros(1920, np.float32)).shape == (8,)  # the batch went on
    batch.detach(encoder.row)
    assert batch.attach(4)[0].row == encoder.row
