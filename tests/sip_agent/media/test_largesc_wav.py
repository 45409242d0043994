"""The WAV ends of the codec-backed engine: the play file paced per 80 ms tick, the recording."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("name, rate, channels", [("t.flac", 44_100, 2), ("t.mp3", 22_050, 1), ("t.ogg", 48_000, 1)])
def test_play_source_reads_what_transmit_reads(tmp_path: Path, name: str, rate: int, channels: int) -> None:
    from largesc_codec.neural.framing import decode_audio
    from tests.audio_files import write_tone

    path = write_tone(tmp_path / name, 1.0, rate, channels)
    whole = decode_audio(path).pcm
    src = PlaySource(path)
    assert (src.rate, src.channels) == (rate, channels)
    ticks = [src.next_tick() for _ in range(14)]  # 1 s is 12.5 ticks: the last ones are silence
    src.close()
    assert all(len(t) in (int(rate * 0.08), int(rate * 0.08) + 1) for t in ticks)
    played = np.concatenate(ticks)
    np.testing.assert_array_equal(played[: len(whole)], whole)
    assert src.ended and not played[len(whole):].any()


def test_play_source_refuses_bad_files_with_the_shared_wording(tmp_path: Path) -> None:
    (tmp_path / "empty.ogg").touch()
    for path, why in ((tmp_path, "is a directory"), (tmp_path / "missing.flac", "no such file"),
                      (tmp_path / "empty.ogg", "is empty (0 bytes)")):
        with pytest.raises(ValueError, match=f"^--play {re.escape(str(path))}.*{re.escape(why)}"):
            PlaySource(path)
