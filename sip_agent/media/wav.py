"""WAV files of the codec-backed LargeSC engine: what a call plays, paced per 80 ms tick, and what it hears.

``PlaySource`` reads the ``--play`` file 80 ms at a time *at the file's own
rate and channel count* (the sender's Framer resamples to 24 kHz mono), so a
long file is never decoded up front. Tick ``k`` gets samples
``round(k * rate * 0.08) .. round((k + 1) * rate * 0.08)``: rates that do not
divide evenly into 80 ms (22050, 44100 Hz) still keep exact time over the
call. After the end of the file, and without a file, it gives silence.

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
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

SEND_RATE = 24_000
FRAME_S = 0.08
FRAME_SAMPLES = 1_920
_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype(np.uint8), 2: np.dtype("<i2"), 4: np.dtype("<i4")}
_MIN_RATE, _MAX_RATE = 4_000, 384_000  # what largesc_codec.neural.framing.Framer resamples


class PlaySource:
    """The audio to send, one 80 ms tick at a time (see module docstring).

    ``rate`` / ``channels`` describe the arrays ``next_tick`` returns: float32
    of shape (n, channels), channels 1 or 2 (more are averaged to mono).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._wav: wave.Wave_read | None = None
        self._tick = 0
        self.ended = path is None
        self.rate, self.channels, self._file_channels = SEND_RATE, 1, 1
        self._dtype = _DTYPES[2]
        self._file: BinaryIO | None = None
        if path is None:
            return
        # Open the file ourselves: wave's own open leaves a half-built object behind on failure.
        try:
            self._file = f = open(path, "rb")
            wav = wave.open(f, "rb")
        except (OSError, EOFError, wave.Error) as exc:
            self.close()
            raise ValueError(f"--play {path}: not a readable WAV file ({exc}); give a PCM WAV file") from exc
        width, rate, channels = wav.getsampwidth(), wav.getframerate(), wav.getnchannels()
        problem = None
        if width not in _DTYPES:
            problem = f"{8 * width}-bit samples (use 8, 16 or 32-bit PCM, e.g. 'sox IN -b 16 OUT.wav')"
        elif not _MIN_RATE <= rate <= _MAX_RATE:
            problem = f"sample rate {rate} Hz (use {_MIN_RATE}..{_MAX_RATE} Hz)"
        elif channels < 1:
            problem = "no channels"
        if problem is not None:
            self.close()
            raise ValueError(f"--play {path}: cannot send {problem}")
        self._wav, self._dtype, self.rate, self._file_channels = wav, _DTYPES[width], rate, channels
        self.channels = channels if channels <= 2 else 1

    def _span(self) -> int:
        k = self._tick
        self._tick += 1
        return round((k + 1) * self.rate * FRAME_S) - round(k * self.rate * FRAME_S)

    def next_tick(self) -> npt.NDArray[np.float32]:
        """The next 80 ms: float32 (n, channels), zero-padded past the end of the file."""
        n = self._span()
        out = np.zeros((n, self.channels), dtype=np.float32)
        if self._wav is None or self.ended:
            return out
        raw = self._wav.readframes(n)
        samples = np.frombuffer(raw, dtype=self._dtype).reshape(-1, self._file_channels)
        if len(samples) < n:
            self.ended = True
        pcm = _to_float(samples)
        if self._file_channels > 2:
            pcm = pcm.mean(axis=1, keepdims=True)
        out[: len(pcm)] = pcm
        return out

    def skip(self, ticks: int) -> None:
        """Drop ``ticks`` ticks of audio (the engine fell behind real time)."""
        for _ in range(ticks):
            n = self._span()
            if self._wav is not None and not self.ended:
                frame_bytes = self._wav.getsampwidth() * self._file_channels
                self.ended = len(self._wav.readframes(n)) < n * frame_bytes

    def close(self) -> None:
        wav, f, self._wav, self._file = self._wav, self._file, None, None
        if wav is not None:
            wav.close()
        if f is not None:
            f.close()


def _to_float(samples: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    scale = 32768.0 if samples.dtype.itemsize == 2 else 2147483648.0
    return samples.astype(np.float32) / np.float32(scale)


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
