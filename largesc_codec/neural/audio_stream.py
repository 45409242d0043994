"""Audio files read a piece at a time: what a call plays, how long it is, and a 16-bit WAV copy of it.

``AudioStream`` decodes any file PyAV reads (WAV, FLAC, MP3, OGG, ...) as it
is read, at the file's own rate and channel count, so a long file is never
decoded up front. It decodes the first samples when opened: a missing, empty,
undecodable or silent-by-truncation file fails there, with the same one-line
messages every command gives (``framing.check_audio_file`` and friends).
``audio_seconds`` is a file's length (from its header where the format keeps
one, else by decoding it). ``write_pcm16_wav`` converts a file once into a
16-bit mono WAV, for players that read nothing else (pjmedia's).
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import av
import numpy as np
from numpy.typing import NDArray

from largesc_codec.neural.framing import check_audio_file, frame_to_interleaved, no_samples, undecodable

__all__ = ["AudioStream", "audio_seconds", "is_pcm16_mono_wav", "write_pcm16_wav"]


class AudioStream:
    """Samples of one audio file in order: ``read(n)`` -> float32 (<= n, channels); fewer only at the end.

    ``rate`` (Hz) and ``channels`` are the file's own. ``what`` names the file in
    messages (``--play``). Close it (or use ``with``) to release the file.
    """

    def __init__(self, path: str | Path, what: str = "audio file") -> None:
        self.path = check_audio_file(path, what)
        self.what = what
        try:
            self._container: Any = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise undecodable(self.path, what, exc) from exc
        if not self._container.streams.audio:
            self.close()
            raise undecodable(self.path, what, "no audio stream")
        self._stream = self._container.streams.audio[0]
        self.rate = int(self._stream.rate or 0)
        self._chunks: Iterator[Any] = self._container.decode(self._stream)
        self.ended = False
        try:
            first = self._next_chunk()
        except av.error.FFmpegError as exc:
            self.close()
            raise undecodable(self.path, what, exc) from exc
        if first is None:
            self.close()
            raise no_samples(self.path, what)
        self.channels = int(first.shape[1])
        self._pending: NDArray[np.float32] = first

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_chunk(self) -> NDArray[np.float32] | None:
        for frame in self._chunks:
            arr = frame_to_interleaved(frame)
            if len(arr):
                return arr
        return None

    def read(self, n: int) -> NDArray[np.float32]:
        """The next ``n`` samples per channel (fewer at the end of the file; none after it)."""
        parts, have = [self._pending], len(self._pending)
        while have < n and not self.ended:
            try:
                chunk = self._next_chunk()
            except av.error.FFmpegError:  # cut off mid-stream: what decoded plays, then the end
                chunk = None
            if chunk is None:
                self.ended = True
                break
            if chunk.shape[1] != self.channels:  # a stream that changes its layout: keep ours
                chunk = np.repeat(chunk.mean(axis=1, keepdims=True), self.channels, axis=1)
            parts.append(chunk)
            have += len(chunk)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out, self._pending = data[:n], data[n:]
        return out

    def declared_seconds(self) -> float | None:
        """The length the container states (None where it states none)."""
        stream, container = self._stream, self._container
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return float(container.duration) / av.time_base
        return None

    def close(self) -> None:
        self._container.close()


def audio_seconds(path: str | Path, what: str = "audio file") -> float:
    """Length of an audio file in seconds; ValueError (see ``AudioStream``) when it cannot be played."""
    with AudioStream(path, what) as stream:
        declared = stream.declared_seconds()
        if declared is not None and declared > 0:
            return declared
        samples = 0
        while True:
            got = len(stream.read(1 << 16))
            if got == 0:
                return samples / stream.rate
            samples += got


def is_pcm16_mono_wav(path: str | Path) -> bool:
    """True for a 16-bit PCM mono WAV file (what pjmedia's player reads as it is)."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getcomptype() == "NONE"
    except (wave.Error, EOFError, OSError):
        return False


def write_pcm16_wav(path: str | Path, out: str | Path, rate: int = 16_000, what: str = "audio file") -> Path:
    """Convert an audio file once into a 16-bit mono WAV at ``rate`` Hz (channels averaged); returns ``out``."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    with AudioStream(path, what) as stream, wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)

        def write(frames: list[Any]) -> None:
            for res in frames:
                data = np.clip(res.to_ndarray().reshape(-1), -1.0, 1.0).astype(np.float32)
                w.writeframes((data * np.float32(32767.0)).round().astype("<i2").tobytes())

        pts = 0
        while len(pcm := stream.read(stream.rate)):  # a second at a time
            # Average the channels ourselves: swresample's downmix is -3 dB per channel.
            mono = np.ascontiguousarray(pcm.mean(axis=1).reshape(1, -1), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(mono, format="flt", layout="mono")
            frame.sample_rate, frame.pts = stream.rate, pts
            pts += mono.shape[1]
            write(resampler.resample(frame))
        write(resampler.resample(None))
    return Path(out)
