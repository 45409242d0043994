"""Arbitrary PCM chunks <-> 24 kHz mono frames of exactly 1920 samples.

All buffering of the send side lives here (the encoder takes exactly one frame).
Resampling and file decoding use PyAV (libswresample), which keeps its own
filter state across chunks; ``flush()`` drains it and pads the last partial
frame with zeros so no audio is lost. ``decode_audio`` also reads the length a
WAV or FLAC header declares, so a cut-off file is reported, not silently shortened.
``check_audio_file`` / ``undecodable`` / ``no_samples`` are the one wording of a
bad audio input for every command (``transmit``, ``call --play``, ``lab --play``).
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE

MIN_RATE, MAX_RATE = 4_000, 384_000


def to_float32(pcm: NDArray[Any]) -> NDArray[Any]:
    """int16/int32/uint8/float PCM of shape (n,) or (n, channels) -> float32 in [-1, 1]."""
    arr = np.asarray(pcm)
    if arr.ndim not in (1, 2):
        raise ValueError(f"PCM must have shape (samples,) or (samples, channels), got {arr.shape}")
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise ValueError("PCM contains NaN or infinite samples")
        return out
    raise ValueError(f"unsupported PCM dtype {arr.dtype}: use int16, int32, uint8 or float")


class Framer:
    """Push PCM chunks of any size, pull 24 kHz mono frames of 1920 float32 samples.

    Args:
        sample_rate: input rate in Hz (8000, 16000, 22050, 44100, 48000, ... ).
        channels: 1 or 2; stereo is downmixed to mono (mean of the channels).
    """

    def __init__(self, sample_rate: int, channels: int = 1) -> None:
        if not isinstance(sample_rate, int) or not MIN_RATE <= sample_rate <= MAX_RATE:
            raise ValueError(
                f"sample rate {sample_rate!r} is not supported: give an integer rate in Hz "
                f"between {MIN_RATE} and {MAX_RATE} (e.g. 8000, 16000, 44100, 48000)"
            )
        if channels not in (1, 2):
            raise ValueError(f"{channels} channels: only mono or stereo PCM is accepted")
        self.sample_rate = sample_rate
        self.channels = channels
        self._resampler = (
            None
            if sample_rate == SAMPLE_RATE
            else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        )
        self._pending: NDArray[Any] = np.zeros(0, dtype=np.float32)
        self._pts = 0
        self._flushed = False

    def push(self, pcm: NDArray[Any]) -> list[NDArray[Any]]:
        """Add a chunk; return the complete frames now available (each shape (1920,))."""
        if self._flushed:
            raise ValueError("Framer was flushed: create a new one for a new stream")
        data = to_float32(pcm)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != self.channels:
            raise ValueError(f"chunk has {data.shape[1]} channels, framer expects {self.channels}")
        if len(data) == 0:
            return []
        # Average the channels ourselves: swresample's downmix is -3 dB per channel.
        self._append(self._resample(data.mean(axis=1)))
        return self._take_frames()

    def flush(self) -> list[NDArray[Any]]:
        """Drain the resampler and pad the last partial frame with zeros."""
        if self._flushed:
            return []
        self._flushed = True
        if self._resampler is not None:
            for frame in self._resampler.resample(None):
                self._append(frame.to_ndarray().reshape(-1))
        frames = self._take_frames()
        if len(self._pending):
            pad = np.zeros(FRAME_SAMPLES - len(self._pending), dtype=np.float32)
            frames.append(np.concatenate([self._pending, pad]))
            self._pending = np.zeros(0, dtype=np.float32)
        return frames

    def _resample(self, mono: NDArray[Any]) -> NDArray[Any]:
        if self._resampler is None:
            return mono
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono.reshape(1, -1), dtype=np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += len(mono)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _append(self, samples: NDArray[Any]) -> None:
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])

    def _take_frames(self) -> list[NDArray[Any]]:
        n = len(self._pending) // FRAME_SAMPLES
        frames = [self._pending[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].copy() for i in range(n)]
        self._pending = self._pending[n * FRAME_SAMPLES :]
        return frames


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded file: float32 (samples, channels) PCM, its rate, and the length its header declares."""

    pcm: NDArray[Any]
    rate: int
    declared_samples: int | None  # per channel, from a WAV/FLAC header; None if the format has none

    @property
    def missing_s(self) -> float:
        """Seconds the header promises beyond what decoded (0 when complete or unknown)."""
        if self.declared_samples is None or self.rate <= 0:
            return 0.0
        return max(0, self.declared_samples - len(self.pcm)) / self.rate

    def truncation_warning(self, path: str | Path) -> str | None:
        """A one-line warning when the file is clearly cut short (> 80 ms missing), else None."""
        if self.missing_s <= 0.08 or self.declared_samples is None:
            return None
        return (f"{path} is truncated: its header declares {self.declared_samples / self.rate:.2f} s but only "
                f"{len(self.pcm) / self.rate:.2f} s could be decoded ({self.missing_s:.2f} s missing)")


AUDIO_KINDS = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG", ".oga": "OGG", ".opus": "Opus"}
_GIVE = "give an audio file (WAV, FLAC, MP3, OGG or any other format PyAV decodes)"


def check_audio_file(path: str | Path, what: str = "audio file") -> Path:
    """The one check of an audio input every command makes first; ValueError naming ``what``, the path and the fix.

    A missing path, a directory and an empty file each get their own message.
    ``what`` names the input as the user gave it (``input``, ``--play``).
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory: {_GIVE}, e.g. one of the files inside it")
    if not p.exists():
        raise ValueError(f"{what} {p}: no such file (the path does not exist): {_GIVE}")
    if not p.is_file():
        raise ValueError(f"{what} {p} is not a regular file: {_GIVE}")
    if p.stat().st_size == 0:
        raise ValueError(f"{what} {p} is empty (0 bytes): {_GIVE} that holds speech")
    return p


def undecodable(path: str | Path, what: str, problem: object) -> ValueError:
    """The one message for a file that is there but does not decode (``problem``: PyAV's reason)."""
    p = Path(path)
    kind = AUDIO_KINDS.get(p.suffix.lower(), "audio")
    return ValueError(f"{what} {p}: not a readable {kind} file, cannot decode it ({problem}); {_GIVE} "
                      "(a truncated or corrupt file cannot be used)")


def no_samples(path: str | Path, what: str) -> ValueError:
    """The one message for a file that decodes to no samples (a header only, or cut off)."""
    return ValueError(f"{what} {path} holds no audio samples (an empty or truncated file): {_GIVE} that holds "
                      "speech")


def read_audio(path: str | Path, what: str = "audio file") -> tuple[NDArray[Any], int]:
    """Decode any audio file PyAV reads -> (float32 (samples, channels), sample_rate)."""
    audio = decode_audio(path, what)
    return audio.pcm, audio.rate


def decode_audio(path: str | Path, what: str = "audio file") -> DecodedAudio:
    """Decode any audio file PyAV reads, keeping the header's declared length (WAV, FLAC).

    ValueError naming ``what`` and the path for a file that is missing, empty, a
    directory (``check_audio_file``) or undecodable.
    """
    p = check_audio_file(path, what)
    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise ValueError(f"{what} {p} has no audio stream: {_GIVE}")
            stream = container.streams.audio[0]
            rate = int(stream.rate or 0)
            fmt = container.format.name
            declared = None
            if fmt == "flac" and stream.duration and stream.time_base:
                declared = int(round(stream.duration * stream.time_base * rate))  # STREAMINFO total samples
            chunks = [frame_to_interleaved(f) for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise undecodable(p, what, exc) from exc
    if not chunks:
        raise no_samples(p, what)
    if fmt == "wav":
        declared = _riff_declared_frames(p)  # ffmpeg re-derives the duration from the file size
    return DecodedAudio(np.concatenate(chunks).astype(np.float32), rate, declared)


def _riff_declared_frames(path: Path) -> int | None:
    """Sample frames the RIFF 'data' chunk header declares (None if absent or a streaming size)."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(min(size, 16))
                if len(fmt) < 14:
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
                f.seek(size - len(fmt) + (size & 1), 1)
            elif cid == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return int(size // block_align)
            else:
                f.seek(size + (size & 1), 1)


def frame_to_interleaved(frame: av.AudioFrame) -> NDArray[Any]:
    """One decoded PyAV frame as float32 (samples, channels)."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        arr = arr.T  # (channels, n) -> (n, channels)
    else:
        arr = arr.reshape(-1, channels)
    return to_float32(arr)


def frames_from_file(path: str | Path, what: str = "audio file") -> list[NDArray[Any]]:
    """A whole file as 24 kHz mono 1920-sample frames (last frame zero-padded)."""
    pcm, rate = read_audio(path, what)
    channels = pcm.shape[1]
    if channels > 2:
        pcm, channels = pcm.mean(axis=1, keepdims=True), 1
    framer = Framer(rate, channels)
    return framer.push(pcm) + framer.flush()


def write_wav(path: str | Path, pcm: NDArray[Any], sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float32 PCM in [-1, 1] as a 16-bit WAV file (clipped)."""
    data = np.clip(to_float32(pcm).reshape(-1), -1.0, 1.0)
    # Open the file ourselves: if that fails, no half-made Wave_write is left to complain in __del__.
    with open(path, "wb") as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((data * 32767.0).round().astype("<i2").tobytes())
