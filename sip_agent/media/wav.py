"""Audio files of the codec-backed LargeSC engine: what a call plays, paced per 80 ms tick, and what it hears.

``PlaySource`` reads the ``--play`` file (any format ``largesc transmit``
reads: WAV, FLAC, MP3, OGG through PyAV, ``largesc_codec.neural.audio_stream``)
80 ms at a time *at the file's own rate and channel count* (the sender's
Framer resamples to 24 kHz mono), so a long file is never decoded up front.
Tick ``k`` gets samples ``round(k * rate * 0.08) .. round((k + 1) * rate * 0.08)``:
rates that do not divide evenly into 80 ms (22050, 44100 Hz) still keep exact
time over the call. After the end of the file, and without a file, it gives
silence.

``RecordSink`` writes what the receiver played as a 24 kHz mono 16-bit WAV,
one 80 ms frame per tick (silence while the jitter buffer fills), so the
recording's length is the call's media time. Writes are serialised with
``close()`` (called from another thread at the end of the call); a write
after close is dropped. Both raise ValueError/OSError naming the file and the
fix when a file cannot be used.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from largesc_codec.neural.audio_stream import AudioStream
from largesc_codec.neural.framing import MAX_RATE, MIN_RATE
from largesc_codec.types import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

SEND_RATE = SAMPLE_RATE
FRAME_S = FRAME_MS / 1000.0


class PlaySource:
    """The audio to send, one 80 ms tick at a time (see module docstring).

    ``rate`` / ``channels`` describe the arrays ``next_tick`` returns: float32
    of shape (n, channels), channels 1 or 2 (more are averaged to mono).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._audio: AudioStream | None = None
        self._tick = 0
        self.ended = path is None
        self.rate, self.channels, self._file_channels = SEND_RATE, 1, 1
        if path is None:
            return
        audio = AudioStream(path, "--play")  # ValueError with the shared wording for a bad file
        if not MIN_RATE <= audio.rate <= MAX_RATE:
            audio.close()
            raise ValueError(f"--play {path}: cannot send sample rate {audio.rate} Hz (use {MIN_RATE}..{MAX_RATE} "
                             "Hz, e.g. 'sox IN -r 24000 OUT.wav')")
        self._audio, self.rate, self._file_channels = audio, audio.rate, audio.channels
        self.channels = audio.channels if audio.channels <= 2 else 1

    def _span(self) -> int:
        k = self._tick
        self._tick += 1
        return round((k + 1) * self.rate * FRAME_S) - round(k * self.rate * FRAME_S)

    def next_tick(self) -> npt.NDArray[np.float32]:
        """The next 80 ms: float32 (n, channels), zero-padded past the end of the file."""
        n = self._span()
        out = np.zeros((n, self.channels), dtype=np.float32)
        if self._audio is None or self.ended:
            return out
        pcm = self._audio.read(n)
        if len(pcm) < n:
            self.ended = True
        if self._file_channels > 2:
            pcm = pcm.mean(axis=1, keepdims=True)
        out[: len(pcm)] = pcm
        return out

    def skip(self, ticks: int) -> None:
        """Drop ``ticks`` ticks of audio (the engine fell behind real time)."""
        for _ in range(ticks):
            n = self._span()
            if self._audio is not None and not self.ended:
                self.ended = len(self._audio.read(n)) < n

    def close(self) -> None:
        audio, self._audio = self._audio, None
        if audio is not None:
            audio.close()


class RecordSink:
    """Append 24 kHz mono frames to a 16-bit WAV file (None: discard, count only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.frames = 0
        self._lock = threading.Lock()
        self._wav: wave.Wave_write | None = None
        self._file: BinaryIO | None = None
        if path is None:
            return
        try:
            self._file = open(path, "wb")
        except OSError as exc:
            raise OSError(f"--record {path}: cannot write there ({exc.strerror or exc}); "
                          f"give a path in a writable directory") from exc
        wav = wave.open(self._file, "wb")
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SEND_RATE)
        self._wav = wav

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        """One frame: float32 (1920,) in [-1, 1] (clipped)."""
        data = (np.clip(pcm, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        with self._lock:
            self.frames += 1
            if self._wav is not None:
                self._wav.writeframes(data)

    def silence(self, frames: int = 1) -> None:
        """``frames`` frames of silence (nothing to play yet, or ticks skipped)."""
        if frames <= 0:
            return
        data = bytes(2 * FRAME_SAMPLES * frames)
        with self._lock:
            self.frames += frames
            if self._wav is not None:
                self._wav.writeframes(data)

    def close(self) -> None:
        """Finish the WAV header; later writes are dropped. Idempotent."""
        with self._lock:
            wav, f, self._wav, self._file = self._wav, self._file, None, None
        if wav is not None:
            wav.close()  # writes the final header; the file object stays ours to close
        if f is not None:
            f.close()

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_S
