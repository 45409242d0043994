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
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from largesc_codec.neural.concealers import Concealer
from largesc_codec.neural.decoder import MimiDecoder
from largesc_codec.playout.buffer import JitterBuffer
from largesc_codec.playout.delay import PlayoutKind
from largesc_codec.types import FRAME_SAMPLES, ReceivedFrame
from largesc_codec.wire.uep import depacketize

SOURCE = {
    PlayoutKind.NORMAL: "primary",
    PlayoutKind.RECOVERED: "recovered",
    PlayoutKind.PARTIAL: "partial",
    PlayoutKind.CONCEAL: "concealed",
    PlayoutKind.COMFORT: "comfort",
}


@dataclass(frozen=True)
class PlayedFrame:
    """What one pull produced: PCM float32 (1920,) at 24 kHz and how it was made."""

    pcm: np.ndarray[Any, np.dtype[np.float32]]
    frame: ReceivedFrame


class LargeSCReceiver:
    """Decode LargeSC payloads with jitter buffering and token-domain concealment.

    Args:
        mimi: a Mimi model this receiver owns (``Models.new_mimi()``).
        concealer: a Concealer (``CONCEALERS[name]()`` or an ``LMConcealer``).
        jitter: the jitter buffer (default settings if omitted).
        codebooks: codebooks the concealer fills a frame up to.
    """

    def __init__(self, mimi: Any, concealer: Concealer, jitter: JitterBuffer | None = None, codebooks: int = 8) -> None:
        self.decoder = MimiDecoder(mimi)
        self.concealer = concealer
        self.jitter = jitter or JitterBuffer()
        self.codebooks = codebooks
        self.counts: Counter[str] = Counter()

    def push(self, ssrc: int, seq: int, timestamp: int, payload: bytes, now_ms: float) -> bool:
        """Insert one packet on arrival. Returns False if the payload was malformed (counted)."""
        try:
            unpacked = depacketize(0, payload, min_index=None)
        except ValueError:
            self.counts["malformed"] += 1
            return False
        self.jitter.insert(ssrc, seq, timestamp, now_ms, unpacked.primary, unpacked.redundant)
        self.counts["packets"] += 1
        return True

    def pull(self, now_ms: float) -> PlayedFrame | None:
        """The next 80 ms of audio, or None while the buffer is still filling."""
        for late in self.jitter.take_late():
            used = getattr(self.concealer, "observe_late", None)
            if used is not None and used(late.index, late.tokens):
                self.counts["late_used"] += 1
        d = self.jitter.pull(now_ms)
        if d.kind == PlayoutKind.WAIT:
            return None
        if d.restarted:
            reset = getattr(self.concealer, "reset", None)
            if reset is not None:
                reset(d.index)
        source = SOURCE[d.kind]
        gain = 1.0
        if d.kind in (PlayoutKind.NORMAL, PlayoutKind.RECOVERED):
            tokens = d.tokens
            self.concealer.observe(d.index, tokens)
        else:
            known = d.tokens if d.kind == PlayoutKind.PARTIAL else ()
            c = self.concealer.conceal(d.index, known, self.codebooks)
            tokens, gain = c.tokens, c.gain
            if d.kind == PlayoutKind.COMFORT:
                gain = 0.0
        pcm = self.decoder.decode(tokens) * np.float32(gain)
        self.counts[source] += 1
        return PlayedFrame(pcm, ReceivedFrame(d.index, tuple(tokens), source, len(d.tokens)))

    def due_ms(self) -> float | None:
        """When the next frame becomes playable (``JitterBuffer.due_ms``); None while idle."""
        return self.jitter.due_ms()

    def prepare_next(self) -> None:
        """Let a speculative concealer predict the next frame (call after pull).

        If the buffer already holds part of the next frame (a copy from
        redundancy, or its primary), the concealer is told those codebooks, so
        it predicts the missing ones conditioned on them.
        """
        prepare = getattr(self.concealer, "prepare", None)
        if prepare is None:
            return
        held = self.jitter.next_frame()
        if held is None:
            prepare()
        else:
            prepare(held.index, held.tokens)

    @staticmethod
    def silence() -> np.ndarray[Any, np.dtype[np.float32]]:
        return np.zeros(FRAME_SAMPLES, dtype=np.float32)
