"""What a call's LargeSC media sends and hears: the engine's audio interface.

The engine's send clock takes what to send 80 ms at a time
(``AudioIn.next_tick``); its pull clock hands every played 80 ms frame
(24 kHz mono) to an ``AudioOut``. Both are driven by the engine: push in,
pull out, no thread of their own is required. ``CallAudio.open()`` makes one
pair per call, so calls never share audio state:

* ``AudioFiles`` (types.py, wav.py): a file to play, a WAV file to record;
* ``PipeAudio`` (pipe.py): PCM pipes to another leg of a gateway call;
* a sound card (sound.py): microphone and speaker through PortAudio.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.float32]


class AudioIn(Protocol):
    """Audio to send: ``rate`` Hz, ``channels`` 1 or 2; the sender resamples to 24 kHz mono."""

    rate: int
    channels: int

    def next_tick(self) -> Pcm:
        """The next 80 ms: float32 (n, channels) in [-1, 1] (silence when there is nothing)."""
        ...

    def skip(self, ticks: int) -> None:
        """Drop ``ticks`` ticks (the engine fell behind real time)."""
        ...

    def close(self) -> None: ...


class AudioOut(Protocol):
    """Where the played frames go: 24 kHz mono, 80 ms (1920 samples) a frame."""

    frames: int  # frames taken so far, silence included: the call's media time

    def write(self, pcm: Pcm) -> None:
        """One played frame, float32 (1920,)."""
        ...

    def silence(self, frames: int = 1) -> None:
        """``frames`` frames of silence (nothing to play yet, or pull slots skipped)."""
        ...

    def close(self) -> None: ...

    @property
    def seconds(self) -> float: ...


class CallAudio(Protocol):
    """One call's audio: ``open`` once per call, by the engine that carries it; raises naming the problem."""

    def open(self) -> tuple[AudioIn, AudioOut]: ...
