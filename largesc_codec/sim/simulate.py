"""The simulated run behind ``largesc transmit`` and ``largesc eval``: sender, channel, receiver.

Time is simulated (the run is faster than real time): packet k carrying frames
f..f+n-1 leaves when its last frame is complete, at (f + n) * 80 ms, and
arrives ``delay_ms`` later unless the channel drops it. The receiver pulls on
its own 80 ms playout clock. Everything in the pipeline is the real code a
call uses; only the network is the in-process channel model (channel.py).

Output = what the listener hears, in play order: one 80 ms frame per pull
that played one, and 80 ms of silence for each pull after playout began that
played nothing (the jitter buffer holding to grow its delay: a real call
plays silence there too). A frame the buffer skipped (to shrink its delay or
a backlog) is not heard, so it shortens the output; the start-up wait before
the first frame is delay, not audio, and is left out. Hence
``len(pcm) == (frames - skipped + held) * 1920``.

Ground truth (``Truth``): for every frame the simulation knows what was sent
(its codebooks) and which packets had arrived by the pull that played or
skipped it. From those alone, independent of the receiver's bookkeeping,
each frame is ``FrameTruth`` PRIMARY (its primary had arrived), RECOVERED (a
redundant copy with all the codebooks it was sent with had), PARTIAL (a
shorter copy had) or LOST (nothing had). ``mismatches`` counts played frames where the
receiver's label (concealed and comfort both mean lost) or its number of
received codebooks of a partial frame differs from that.
"""

from __future__ import annotations

import enum
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from largesc_codec.neural.concealers import Concealer
from largesc_codec.types import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, FrameSource, ReceivedFrame

if TYPE_CHECKING:  # the receiver imports torch: only inside simulate()
    from largesc_codec.receiver import LargeSCReceiver

SSRC = 0x4C534331  # "LSC1"
FEEDBACK_MS = 1040  # receiver reports every 13 frames (about 1 s, like reduced-minimum RTCP)
FEEDBACK_WINDOW = 100  # packets: the report follows the channel over ~8 s
MAX_DELAY_MS = 10_000.0  # one-way delay accepted by the simulation


class FrameTruth(str, enum.Enum):
    """What the channel delivered of a frame by its playout time (str-valued: report keys)."""

    PRIMARY = "primary"
    RECOVERED = "recovered"
    PARTIAL = "partial"
    LOST = "lost"


class SkipTruth(str, enum.Enum):
    """Whether a frame the jitter buffer skipped had arrived."""

    DELIVERED = "delivered"
    MISSING = "missing"


# The receiver's label of a played frame as a truth category: concealed and comfort both mean lost.
_TRUTH_OF = {FrameSource.PRIMARY: FrameTruth.PRIMARY, FrameSource.RECOVERED: FrameTruth.RECOVERED,
             FrameSource.PARTIAL: FrameTruth.PARTIAL, FrameSource.CONCEALED: FrameTruth.LOST,
             FrameSource.COMFORT: FrameTruth.LOST}


def check_delay_ms(name: str, value: float, low: float = 0.0, high: float = MAX_DELAY_MS) -> float:
    """``value`` as a float if finite and within [low, high], else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number of milliseconds in {low:g}..{high:g}, got {value!r}")
    return float(value)


@dataclass
class Truth:
    """Per-frame ground truth from what was sent and what had arrived (see the module doc)."""

    sent_codebooks: dict[int, int] = field(default_factory=dict)
    primary_lost: set[int] = field(default_factory=set)  # frames whose primary the channel dropped
    arrived_primary: set[int] = field(default_factory=set)
    arrived_copy: dict[int, int] = field(default_factory=dict)  # frame -> most codebooks in an arrived copy
    played: Counter[FrameTruth] = field(default_factory=Counter)  # truth category of each played frame
    skipped: Counter[SkipTruth] = field(default_factory=Counter)
    mismatches: list[tuple[int, FrameTruth, FrameSource, int, int]] = field(default_factory=list)

    def on_sent(self, first_index: int, codebooks: list[int], lost: bool) -> None:
        for n, c in enumerate(codebooks):
            self.sent_codebooks[first_index + n] = c
            if lost:
                self.primary_lost.add(first_index + n)

    def on_arrival(self, first_index: int, payload: bytes) -> None:
        from largesc_codec.wire.uep import depacketize

        unpacked = depacketize(first_index, payload, min_index=None)
        self.arrived_primary.update(f.index for f in unpacked.primary)
        for f in unpacked.redundant:
            self.arrived_copy[f.index] = max(self.arrived_copy.get(f.index, 0), f.codebooks)

    def category(self, index: int) -> tuple[FrameTruth, int]:
        """(truth category, codebooks that had arrived) of ``index`` now."""
        if index in self.arrived_primary:
            return FrameTruth.PRIMARY, self.sent_codebooks.get(index, 0)
        copy = self.arrived_copy.get(index, 0)
        if copy == 0:
            return FrameTruth.LOST, 0
        whole = copy >= self.sent_codebooks.get(index, 0)
        return (FrameTruth.RECOVERED if whole else FrameTruth.PARTIAL), copy

    def on_skipped(self, index: int) -> None:
        lost = self.category(index)[0] is FrameTruth.LOST
        self.skipped[SkipTruth.MISSING if lost else SkipTruth.DELIVERED] += 1

    def on_played(self, frame: ReceivedFrame) -> None:
        truth, known = self.category(frame.index)
        self.played[truth] += 1
        label = _TRUTH_OF[frame.source]
        if label is not truth or (truth is FrameTruth.PARTIAL and frame.received_codebooks != known):
            self.mismatches.append((frame.index, truth, frame.source, known, frame.received_codebooks))


@dataclass
class Simulation:
    """Outcome of one run through sender, channel and receiver (see ``simulate``)."""

    pcm: NDArray[Any]  # float32 at 24 kHz: what the listener hears, in play order (module doc)
    frames: int  # frames sent
    sent: int  # packets
    lost: int  # packets
    payload_bytes: int
    tokens: int  # tokens sent, primary and redundant (what the research's bit rates count)
    codebooks: list[int]  # per frame sent
    sources: Counter[FrameSource]  # played frames by how the receiver made them
    skipped: int  # frames never heard
    held: int  # silent pulls after playout began
    wall_s: float
    receiver: LargeSCReceiver
    truth: Truth

    @property
    def duration_s(self) -> float:
        return self.frames * FRAME_MS / 1000.0

    @property
    def primary_lost_frames(self) -> int:
        return len(self.truth.primary_lost)


def simulate(pcm: NDArray[Any], rate: int, models: Any, channel: Any, concealer: Concealer,
             max_bps: float = 2062.5, max_codebooks: int = 8, delay_ms: float = 0.0,
             max_delay_ms: float = 400.0) -> Simulation:
    """Run PCM (float32 (n, channels) at ``rate``) through the whole pipeline on a simulated clock.

    ``delay_ms``: one-way network delay (0..10000); ``max_delay_ms``: the jitter
    buffer's largest target delay. Raises RuntimeError if the clock ran out before
    every sent frame was played or skipped (it is sized so that cannot happen).
    """
    from largesc_codec.playout.buffer import JitterBuffer
    from largesc_codec.receiver import LargeSCReceiver
    from largesc_codec.sender import LargeSCSender
    from largesc_codec.sim.channel import LossStats

    delay_ms = check_delay_ms("delay_ms", delay_ms)
    max_delay_ms = check_delay_ms("max_delay_ms", max_delay_ms)
    if pcm.ndim == 1:
        pcm = pcm[:, None]
    if pcm.shape[1] > 2:
        pcm = pcm.mean(axis=1, keepdims=True)
    sender = LargeSCSender(models.new_mimi(), sample_rate=rate, channels=pcm.shape[1],
                           max_bps=max_bps, max_codebooks=max_codebooks)
    receiver = LargeSCReceiver(models.new_mimi(), concealer, JitterBuffer(max_delay_ms=max_delay_ms),
                               codebooks=max_codebooks)
    truth = Truth()
    t0 = time.perf_counter()
    sent, n_lost, payload_bytes, tokens, codebooks = 0, 0, 0, 0, []
    in_flight: list[tuple[float, int, int, bytes]] = []  # (arrival_ms, seq, first frame, payload)
    feedback = LossStats(window=FEEDBACK_WINDOW)
    next_seq = 0
    expected = -(-len(pcm) * SAMPLE_RATE // rate // FRAME_SAMPLES)  # ceil, after resampling
    limit_ms = (expected + 200) * FRAME_MS + delay_ms + max_delay_ms
    heard: list[NDArray[Any]] = []
    silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    sources: Counter[FrameSource] = Counter()
    fed, now, flushed, last, held, skipped = 0, 0.0, False, -1, 0, 0
    while now <= limit_ms:
        # Sender: the audio of the last 80 ms arrives from the "microphone".
        upto = min(len(pcm), int(round((now / 1000.0) * rate)))
        if upto > fed:
            sender.push(pcm[fed:upto])
            fed = upto
        elif fed >= len(pcm) and not flushed:
            sender.flush()
            flushed = True
        for pkt in sender.pull():
            payload_bytes += len(pkt.payload)
            codebooks += [d.codebooks for d in pkt.decisions]
            tokens += sum(d.codebooks + sum(r.codebooks for r in d.redundancy) for d in pkt.decisions)
            seq = sent & 0xFFFF
            sent += 1
            lost = channel.lost()
            truth.on_sent(pkt.first_index, [d.codebooks for d in pkt.decisions], lost)
            if lost:
                n_lost += 1
            else:
                in_flight.append((now + delay_ms, seq, pkt.first_index, pkt.payload))
        # Receiver: packets that have arrived, then one frame on the playout clock.
        while in_flight and in_flight[0][0] <= now:
            arrival, seq, first, payload = in_flight.pop(0)
            feedback.update_run(True, (seq - next_seq) & 0xFFFF)  # a sequence gap = lost packets
            feedback.update(False)
            next_seq = (seq + 1) & 0xFFFF
            truth.on_arrival(first, payload)
            receiver.push(SSRC, seq, (first * FRAME_SAMPLES) & 0xFFFFFFFF, payload, arrival)
        got = receiver.pull(now)
        if got is None:
            if last >= 0:
                heard.append(silence)
                held += 1
        else:
            idx = got.frame.index
            end = len(codebooks) if flushed else idx  # a frame past the end of the stream is not audio
            for gap in range(last + 1, min(idx, end)):
                truth.on_skipped(gap)
                skipped += 1
            if idx < end or not flushed:
                truth.on_played(got.frame)
                sources[got.frame.source] += 1
                heard.append(got.pcm)
            last = idx
            receiver.prepare_next()
        if int(now) % FEEDBACK_MS == 0 and now > 0:  # receiver report -> sender's controller
            sender.on_loss_report(feedback.report())
        now += FRAME_MS
        if flushed and last >= len(codebooks) - 1:
            break
    frames = len(codebooks)
    if not flushed or last < frames - 1:
        raise RuntimeError(f"the simulated clock ran out at {now:.0f} ms with {last + 1} of {frames} frames "
                           "played or skipped (a bug: the clock limit covers the delays)")
    out = np.concatenate(heard) if heard else np.zeros(0, dtype=np.float32)
    return Simulation(out, frames, sent, n_lost, payload_bytes, tokens, codebooks, sources, skipped, held,
                      time.perf_counter() - t0, receiver, truth)
