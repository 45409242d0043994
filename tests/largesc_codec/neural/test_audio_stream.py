"""The one audio-input path: any file PyAV decodes, read piece by piece, measured, converted; one wording of bad input."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from largesc_codec.neural.audio_stream import AudioStream, audio_seconds, is_pcm16_mono_wav, write_pcm16_wav
from largesc_codec.neural.framing import check_audio_file, decode_audio
from tests.audio_files import write_tone

FORMATS = [("tone.flac", 44_100, 2), ("tone.mp3", 22_050, 1), ("tone.ogg", 48_000, 1), ("tone.wav", 16_000, 2)]


@pytest.mark.parametrize("name, rate, channels", FORMATS)
def test_a_stream_hands_out_what_the_whole_file_decodes_to(tmp_path: Path, name: str, rate: int,
                                                           channels: int) -> None:
    path = write_tone(tmp_path / name, 2.0, rate, channels)
    whole = decode_audio(path)
    with AudioStream(path, "--play") as stream:
        assert (stream.rate, stream.channels) == (whole.rate, whole.pcm.shape[1]) == (rate, channels)
        pieces = [stream.read(n) for n in (1, 1763, 1764, 50_000, 10**6)]
        assert stream.ended and len(stream.read(100)) == 0
    got = np.concatenate(pieces)
    assert [len(p) for p in pieces[:3]] == [1, 1763, 1764]
    np.testing.assert_array_equal(got, whole.pcm)
    assert audio_seconds(path) == pytest.approx(len(whole.pcm) / rate, abs=0.03)


@pytest.mark.parametrize("name, rate, channels", FORMATS[:3])
def test_a_16_bit_mono_copy_keeps_the_tone_and_the_length(tmp_path: Path, name: str, rate: int,
                                                          channels: int) -> None:
    src = write_tone(tmp_path / name, 1.5, rate, channels, freq=660.0)
    assert not is_pcm16_mono_wav(src)
    out = write_pcm16_wav(src, tmp_path / "copy.wav", 16_000)
    assert is_pcm16_mono_wav(out)
    with wave.open(str(out), "rb") as w:
        assert w.getframerate() == 16_000
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    assert len(pcm) / 16_000 == pytest.approx(audio_seconds(src), abs=0.03)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.fft.rfftfreq(len(pcm), 1 / 16_000)[spectrum.argmax()] - 660) < 5
    assert 0.25 * 32767 < np.abs(pcm).max() < 0.35 * 32767  # channels averaged, not -3 dB each


def test_bad_inputs_each_get_their_own_message_naming_the_path_and_the_fix(tmp_path: Path) -> None:
    folder, empty, garbage, header = tmp_path / "clips", tmp_path / "empty.flac", tmp_path / "g.wav", tmp_path / "h.wav"
    folder.mkdir()
    empty.touch()
    garbage.write_bytes(b"not audio at all" * 10)
    with wave.open(str(header), "wb") as w:  # a header and no samples
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    cases = [(folder, "is a directory: give an audio file"), (tmp_path / "nope.mp3", "no such file"),
             (empty, "is empty (0 bytes)"), (garbage, "g.wav: not a readable WAV file, cannot decode it"),
             (header, "holds no audio samples")]
    for path, why in cases:
        messages = set()
        for read in (lambda p: decode_audio(p, "--play"), lambda p: AudioStream(p, "--play"),
                     lambda p: audio_seconds(p, "--play")):
            with pytest.raises(ValueError) as info:
                read(path)
            messages.add(str(info.value))
        assert len(messages) == 1, messages  # one wording whichever reader met the file
        message = messages.pop()
        assert message.startswith(f"--play {path}") and why in message and "\n" not in message, message
        assert "WAV, FLAC, MP3, OGG" in message  # the fix: what to give instead
    assert check_audio_file(write_tone(tmp_path / "ok.wav", 0.1, 16_000)) == tmp_path / "ok.wav"
