"""Receive side: RTP payloads in, 80 ms of 24 kHz PCM out on the playout clock.

push(): payload -> depacketizer (primary frames + redundant copies) -> jitter
buffer insert (with arrival time). Malformed payloads are counted and dropped.

pull(now_ms), every 80 ms: the jitter buffer decides what frame plays and how
it was obtained; complete frames are decoded as they are (and shown to the
concealer so its state follows the real stream), partial frames keep their
codebooks and the concealer fills the rest, lost frames are predicted, and a
long outage plays comfort silence. The Mimi decoder gets one frame per pull,
never a gap. ``prepare_next()`` lets a speculative concealer work for the
next frame after this one was handed out (off the deadline path).

``status()`` is the receiver's state for whoever runs its clock (the SIP
engine): a frozen snapshot, so the caller never reaches into the buffer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from largesc_codec.neural.concealers import Concealer
from largesc_codec.neural.decoder import FrameDecoder, MimiDecoder
from largesc_codec.playout.buffer import JitterBuffer
from largesc_codec.playout.decision import JitterStats, PlayoutKind
from largesc_codec.types import FRAME_SAMPLES, FrameSource, ReceivedFrame
from largesc_codec.wire.uep import depacketize

__all__ = ["LargeSCReceiver", "PlayedFrame", "ReceiverStatus"]


@dataclass(frozen=True)
class PlayedFrame:
    """What one pull produced: PCM float32 (1920,) at 24 kHz and how it was made."""

    pcm: np.ndarray[Any, np.dtype[np.float32]]
    frame: ReceivedFrame


@dataclass(frozen=True)
class ReceiverStatus:
    """A snapshot of a ``LargeSCReceiver`` (``status()``).

    Attributes:
        playing: the jitter buffer plays a frame per pull (False while idle or buffering).
        between_quiet_frames: the frame just played and the one held for the next pull are
            both quiet (``JitterBuffer.between_quiet_frames``): a pull clock may move here.
        due_ms: when the next frame becomes playable (``JitterBuffer.due_ms``); None while idle.
        jitter: the jitter buffer's counters and delays.
        frames: frames played so far by how they were made (every ``FrameSource``, 0 included).
        packets: payloads accepted; malformed: payloads dropped as malformed.
        late_used: late copies the concealer took into its state.
    """

    playing: bool
    between_quiet_frames: bool
    due_ms: float | None
    jitter: JitterStats
    frames: Mapping[FrameSource, int]
    packets: int
    malformed: int
    late_used: int


class LargeSCReceiver:
    """Decode LargeSC payloads with jitter buffering and token-domain concealment.

    Args:
        mimi: a Mimi model this receiver owns (``Models.new_mimi()``).
        concealer: a Concealer (``neural.plc.build_concealer(name, ...)``).
        jitter: the jitter buffer (default settings if omitted).
        codebooks: codebooks the concealer fills a frame up to.
        decoder: decodes instead of a ``MimiDecoder`` of ``mimi`` (then None): e.g. one call's row
            of a batch shared by several calls.
    """

    def __init__(self, mimi: Any, concealer: Concealer, jitter: JitterBuffer | None = None, codebooks: int = 8,
                 decoder: FrameDecoder | None = None) -> None:
        self.decoder: FrameDecoder = decoder if decoder is not None else MimiDecoder(mimi)
        self.concealer = concealer
        self.jitter = jitter or JitterBuffer()
        self.codebooks = codebooks
        self._frames: Counter[FrameSource] = Counter()
        self._packets = self._malformed = self._late_used = 0

    def push(self, ssrc: int, seq: int, timestamp: int, payload: bytes, now_ms: float) -> bool:
        """Insert one packet on arrival. Returns False if the payload was malformed (counted)."""
        try:
            unpacked = depacketize(0, payload, min_index=None)
        except ValueError:
            self._malformed += 1
            return False
        self.jitter.insert(ssrc, seq, timestamp, now_ms, unpacked.primary, unpacked.redundant)
        self._packets += 1
        return True

    def pull(self, now_ms: float) -> PlayedFrame | None:
        """The next 80 ms of audio, or None while the buffer is still filling."""
        for late in self.jitter.take_late():
            if self.concealer.observe_late(late.index, late.tokens):
                self._late_used += 1
        d = self.jitter.pull(now_ms)
        if d.kind is PlayoutKind.WAIT:
            return None
        if d.restarted:
            self.concealer.reset(d.index)
        gain = 1.0
        if d.kind in (PlayoutKind.NORMAL, PlayoutKind.RECOVERED):
            tokens = d.tokens
            self.concealer.observe(d.index, tokens)
        else:
            known = d.tokens if d.kind is PlayoutKind.PARTIAL else ()
            c = self.concealer.conceal(d.index, known, self.codebooks)
            tokens, gain = c.tokens, c.gain
            if d.kind is PlayoutKind.COMFORT:
                gain = 0.0
        pcm = self.decoder.decode(tokens) * np.float32(gain)
        self._frames[d.source] += 1
        return PlayedFrame(pcm, ReceivedFrame(d.index, tuple(tokens), d.source, len(d.tokens)))

    def due_ms(self) -> float | None:
        """When the next frame becomes playable (``JitterBuffer.due_ms``); None while idle."""
        return self.jitter.due_ms()

    def prepare_next(self) -> None:
        """Let a speculative concealer predict the next frame (call after pull).

        If the buffer already holds part of the next frame (a copy from
        redundancy, or its primary), the concealer is told those codebooks, so
        it predicts the missing ones conditioned on them.
        """
        held = self.jitter.next_frame()
        if held is None:
            self.concealer.prepare()
        else:
            self.concealer.prepare(held.index, held.tokens)

    def status(self) -> ReceiverStatus:
        """A snapshot of the playout state and the counters (see ``ReceiverStatus``)."""
        jb = self.jitter
        return ReceiverStatus(jb.playing, jb.between_quiet_frames(), jb.due_ms(), jb.stats(),
                              {s: self._frames[s] for s in FrameSource}, self._packets, self._malformed,
                              self._late_used)

    @staticmethod
    def silence() -> np.ndarray[Any, np.dtype[np.float32]]:
        return np.zeros(FRAME_SAMPLES, dtype=np.float32)
