"""The WAV ends of the codec-backed engine: the play file paced per 80 ms tick, the recording."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from sip_agent.media.wav import PlaySource, RecordSink


def test_play_source_keeps_time_with_skips_and_odd_channel_counts(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    with wave.open(str(path), "wb") as w:  # 1 s of 3-channel 22050 Hz audio: 80 ms is 1764 samples
        w.setnchannels(3)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes((np.ones((22050, 3)) * 16384).astype("<i2").tobytes())
    src = PlaySource(path)
    assert (src.rate, src.channels) == (22050, 1)
    chunks = [src.next_tick() for _ in range(5)]
    src.skip(5)
    chunks += [src.next_tick() for _ in range(4)]
    assert all(c.shape == (1764, 1) for c in chunks) and float(chunks[0][0, 0]) == pytest.approx(0.5)
    # The skipped ticks consumed their audio: tick 12 (chunks[7]) holds the file's last 882 samples.
    assert int(np.count_nonzero(chunks[7])) == 22050 - 12 * 1764 and chunks[6].all()
    assert src.ended and not chunks[-1].any()  # past the end (12.5 ticks): silence
    src.close()
    sink = RecordSink(tmp_path / "rec.wav")
    sink.silence(2)
    sink.write(np.full(1920, 0.25, np.float32))
    sink.close()
    sink.close()
    sink.write(np.zeros(1920, np.float32))  # after close: counted, not written
    with wave.open(str(tmp_path / "rec.wav"), "rb") as w:
        assert (w.getframerate(), w.getnchannels()) == (24000, 1)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert len(pcm) == 3 * 1920 and not pcm[:2 * 1920].any() and pcm[-1] == round(0.25 * 32767)
    with pytest.raises(OSError, match="cannot write there"):
        RecordSink(tmp_path / "no" / "such" / "dir.wav")
