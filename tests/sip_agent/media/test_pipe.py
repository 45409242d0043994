"""PCM pipes between a gateway's legs (media/pipe.py): start threshold, underruns, bounded delay."""

from __future__ import annotations

import numpy as np

from largesc_codec.types import FRAME_SAMPLES
from sip_agent.media.pipe import PcmPipe, PipeAudio


def _ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def test_nothing_plays_until_prefilled_then_it_starts_at_the_threshold() -> None:
    pipe = PcmPipe(prefill=600, capacity=2000)
    pipe.push(_ramp(1, 480))
    assert not pipe.pull(100).any()  # below the threshold: silence, nothing consumed
    pipe.push(_ramp(481, 480))
    assert np.array_equal(pipe.pull(500), _ramp(361, 500))  # starts at the threshold: the 360 oldest trimmed
    st = pipe.stats()
    assert st.level == 100 and st.dropped == 360 and st.underruns == 0
    pipe.push(_ramp(961, 480))
    assert np.array_equal(pipe.pull(500), _ramp(861, 500))  # playing: in order, nothing trimmed


def test_an_underrun_pads_with_silence_and_waits_for_the_threshold_again() -> None:
    pipe = PcmPipe(prefill=100, capacity=1000)
    pipe.push(_ramp(1, 150))
    out = pipe.pull(200)
    assert np.array_equal(out[:150], _ramp(1, 150)) and not out[150:].any()
    assert pipe.stats().underruns == 1
    pipe.push(_ramp(151, 50))
    assert not pipe.pull(10).any()  # 50 < prefill: still waiting
    pipe.push(_ramp(201, 60))
    assert np.array_equal(pipe.pull(10), _ramp(161, 10))  # restarts at the threshold (110 -> 100 waiting)


def test_overflow_drops_the_oldest_down_to_the_threshold() -> None:
    pipe = PcmPipe(prefill=300, capacity=1000)
    for k in range(5):  # a consumer that has not started yet
        pipe.push(_ramp(1 + 480 * k, 480))
    st = pipe.stats()
    assert st.level <= 1000 and st.dropped > 0
    assert st.level + st.dropped == 5 * 480  # counted, not silently lost
    out = pipe.pull(st.level)
    assert out[-1] == 5 * 480 and np.all(np.diff(out) == 1)  # the newest samples survive, in order


def test_steady_producer_and_consumer_keep_the_wait_near_the_threshold() -> None:
    """Bridge port (20 ms blocks) feeding the engine (80 ms frames), same pace: no drift, no underrun."""
    pipe = PcmPipe(prefill=FRAME_SAMPLES + 960, capacity=3 * FRAME_SAMPLES + 960)
    for tick in range(4000):  # 80 s of 20 ms ticks; the engine pulls every fourth
        pipe.push(np.ones(480, dtype=np.float32))
        if tick % 4 == 3:
            pipe.pull(FRAME_SAMPLES)
    st = pipe.stats()
    assert st.underruns == 0 and st.dropped < FRAME_SAMPLES  # only what arrived on top while it waited to start
    assert abs(st.wait_samples - 960) <= 480  # what the pipe adds: its margin, about 40 ms


def test_pipe_audio_gives_the_engine_80_ms_ticks_and_takes_its_frames() -> None:
    send, heard = PcmPipe(0, 10 * FRAME_SAMPLES), PcmPipe(0, 10 * FRAME_SAMPLES)
    source, sink = PipeAudio(send, heard).open()
    send.push(_ramp(1, FRAME_SAMPLES))
    tick = source.next_tick()
    assert tick.shape == (FRAME_SAMPLES, 1) and source.rate == 24000 and tick[-1, 0] == FRAME_SAMPLES
    sink.write(np.full(FRAME_SAMPLES, 0.5, dtype=np.float32))
    sink.silence(2)
    assert sink.frames == 3 and abs(sink.seconds - 0.24) < 1e-9 and heard.stats().level == 3 * FRAME_SAMPLES
