"""PCM pipes between the two legs of a gateway call (``PipeAudio``: a ``CallAudio`` of audio.py).

A ``PcmPipe`` carries mono float32 audio at one rate from a producer to a
consumer that run on different clocks and block sizes: the standard leg's
conference bridge (20 ms blocks) and the LargeSC engine (80 ms frames).
Both clocks run on the same machine, so they keep the same pace; the pipe
absorbs their phase and jitter, nothing more:

* it starts playing once ``prefill`` samples are in, trimming what came on
  top while it waited (so it adds ``prefill`` less one pull, not more);
* a pull that finds too little gives what there is and silence after it,
  counts an ``underrun`` and waits for ``prefill`` again (no crackle of
  half-empty blocks);
* it never holds more than ``capacity`` samples: a push beyond drops the
  oldest ones down to ``prefill``, counted in ``dropped`` (a consumer that
  starts late or stalls does not leave the delay at the cap for the rest of
  the call).

Thread-safe: one producer thread, one consumer thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE
from sip_agent.media.audio import Pcm


@dataclass(frozen=True)
class PipeStats:
    level: int  # samples waiting now
    underruns: int
    dropped: int  # samples dropped at capacity
    wait_samples: float  # mean of what stayed behind after each pull while playing: the delay the pipe adds


class PcmPipe:
    """A bounded FIFO of mono samples with a start threshold (see module docstring)."""

    def __init__(self, prefill: int, capacity: int) -> None:
        if not 0 <= prefill < capacity:
            raise ValueError(f"PcmPipe: prefill {prefill} must be below capacity {capacity}")
        self.prefill, self.capacity = prefill, capacity
        self._blocks: deque[Pcm] = deque()
        self._level = 0
        self._playing = False
        self._lock = threading.Lock()
        self.underruns = self.dropped = 0
        self._waits, self._wait_sum = 0, 0
        self.pushed_at = self.pulled_at = 0.0  # time.monotonic() of the last push / pull

    def push(self, pcm: Pcm) -> None:
        """Append samples (float32, 1-D)."""
        block = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if not len(block):
            return
        with self._lock:
            self.pushed_at = time.monotonic()
            self._blocks.append(block)
            self._level += len(block)
            if self._level > self.capacity:  # back to the start threshold, not just under the cap
                excess = self._level - self.prefill
                self._drop(excess)
                self.dropped += excess

    def pull(self, n: int) -> Pcm:
        """``n`` samples: what is there (once prefilled), silence for the rest."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            self.pulled_at = time.monotonic()
            if not self._playing:
                if self._level < max(self.prefill, 1):
                    return out
                self._playing = True
                excess = self._level - max(self.prefill, n)  # start at the threshold, not above it
                if excess > 0:
                    self._drop(excess)
                    self.dropped += excess
            self._waits += 1
            self._wait_sum += max(self._level - n, 0)
            got = self._take(out)
            if got < n:
                self.underruns += 1
                self._playing = False
        return out

    def stats(self) -> PipeStats:
        with self._lock:
            wait = self._wait_sum / self._waits if self._waits else 0.0
            return PipeStats(self._level, self.underruns, self.dropped, wait)

    def _take(self, out: Pcm) -> int:
        filled = 0
        while filled < len(out) and self._blocks:
            block = self._blocks[0]
            k = min(len(block), len(out) - filled)
            out[filled : filled + k] = block[:k]
            filled += k
            if k == len(block):
                self._blocks.popleft()
            else:
                self._blocks[0] = block[k:]
        self._level -= filled
        return filled

    def _drop(self, n: int) -> None:
        while n > 0:
            block = self._blocks[0]
            if len(block) <= n:
                self._blocks.popleft()
                self._level -= len(block)
                n -= len(block)
            else:
                self._blocks[0] = block[n:]
                self._level -= n
                n = 0


class PipeIn:
    """``AudioIn`` reading 80 ms ticks at 24 kHz mono from a pipe."""

    rate, channels = SAMPLE_RATE, 1

    def __init__(self, pipe: PcmPipe) -> None:
        self.pipe = pipe

    def next_tick(self) -> Pcm:
        return self.pipe.pull(FRAME_SAMPLES).reshape(-1, 1)

    def skip(self, ticks: int) -> None:
        for _ in range(ticks):
            self.pipe.pull(FRAME_SAMPLES)

    def close(self) -> None:
        pass


class PipeOut:
    """``AudioOut`` pushing the played 24 kHz frames into a pipe."""

    def __init__(self, pipe: PcmPipe) -> None:
        self.pipe = pipe
        self.frames = 0

    def write(self, pcm: Pcm) -> None:
        self.frames += 1
        self.pipe.push(pcm)

    def silence(self, frames: int = 1) -> None:
        if frames > 0:
            self.frames += frames
            self.pipe.push(np.zeros(FRAME_SAMPLES * frames, dtype=np.float32))

    def close(self) -> None:
        pass

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class PipeAudio:
    """A ``CallAudio`` over two pipes at 24 kHz: ``send`` feeds the engine, ``heard`` takes its frames."""

    send: PcmPipe
    heard: PcmPipe

    def open(self) -> tuple[PipeIn, PipeOut]:
        return PipeIn(self.send), PipeOut(self.heard)
