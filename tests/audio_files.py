"""Tone files in the formats users hand to ``--play`` and ``transmit``: WAV, FLAC, MP3, OGG (Opus), encoded by PyAV."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np

CODECS = {".flac": "flac", ".mp3": "libmp3lame", ".ogg": "libopus"}


def write_tone(path: Path, seconds: float = 2.0, rate: int = 44_100, channels: int = 1, freq: float = 440.0) -> Path:
    """A sine tone at 0.3 of full scale; ``.wav`` is 16-bit PCM, the other suffixes go through their encoder."""
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if path.suffix == ".wav":
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.repeat((tone * 32767).astype("<i2")[:, None], channels, axis=1).tobytes())
        return path
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODECS[path.suffix], rate=rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout=layout,
                                      rate=rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.tile(tone, (channels, 1))), format="fltp",
                                           layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for chunk in resampler.resample(frame):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
