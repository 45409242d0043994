"""Send side: PCM in, RTP payloads out (push in, pull out).

PCM chunks -> Framer (24 kHz, 1920-sample frames) -> MimiEncoder (tokens) ->
frame features + latest loss report -> AdaptiveController.decide -> Packetizer
(primary codebooks + in-band redundancy) -> payload bytes. No I/O and no clock:
the caller pulls packets and puts them on the wire (rtp.session or the
in-process channel of ``largesc transmit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from largesc_codec.neural.encoder import FrameEncoder, MimiEncoder
from largesc_codec.neural.framing import Framer
from largesc_codec.send.controller import AdaptiveController
from largesc_codec.send.features import frame_features
from largesc_codec.types import DEFAULT_MAX_BPS, MIN_SPEECH_CODEBOOKS, Decision, LossReport, TokenFrame
from largesc_codec.wire.uep import Packetizer


@dataclass(frozen=True)
class SentPacket:
    """One payload ready for RTP: ``first_index`` is the frame of its RTP timestamp."""

    first_index: int
    payload: bytes
    decisions: tuple[Decision, ...]
    talkspurt_start: bool  # set the RTP marker bit


class LargeSCSender:
    """Encode PCM into LargeSC payloads.

    Args:
        mimi: a Mimi model this sender owns (``Models.new_mimi()``).
        sample_rate, channels: of the PCM pushed in (resampled to 24 kHz mono).
        max_bps: payload budget in bit/s: every payload byte (ToC, tokens, padding), at
            least ``types.MIN_PAYLOAD_BPS`` (300: one codebook a frame).
        max_codebooks: most codebooks encoded and sent per frame (1..32). Speech
            frames get at least ``min(MIN_SPEECH_CODEBOOKS, max_codebooks)`` codebooks when
            ``max_bps`` carries them (700 bit/s for 4), else what it carries.
        frames_per_packet: ptime / 80 ms.
        encoder: encodes the frames instead of a ``MimiEncoder`` of ``mimi`` (then None): e.g. one
            call's row of a batch shared by several calls; it makes ``max_codebooks`` a frame.
    """

    def __init__(
        self,
        mimi: Any,
        sample_rate: int = 24_000,
        channels: int = 1,
        max_bps: float = DEFAULT_MAX_BPS,
        max_codebooks: int = 8,
        frames_per_packet: int = 1,
        max_redundancy_distance: int = 3,
        encoder: FrameEncoder | None = None,
    ) -> None:
        if frames_per_packet < 1:
            raise ValueError(f"frames_per_packet must be >= 1, got {frames_per_packet}")
        self.framer = Framer(sample_rate, channels)
        if encoder is not None and encoder.num_codebooks != max_codebooks:
            raise ValueError(f"the encoder makes {encoder.num_codebooks} codebooks a frame, the sender sends "
                             f"up to {max_codebooks}: give both the same count")
        self.encoder: FrameEncoder = encoder if encoder is not None else MimiEncoder(mimi, max_codebooks)
        self.controller = AdaptiveController(
            max_bps=max_bps,
            max_codebooks=max_codebooks,
            min_speech_codebooks=min(MIN_SPEECH_CODEBOOKS, max_codebooks),
            max_redundancy_distance=max_redundancy_distance,
        )
        self.packetizer = Packetizer(max_distance=max_redundancy_distance)
        self.frames_per_packet = frames_per_packet
        self._loss: LossReport | None = None
        self._next_index = 0
        self._batch: list[tuple[TokenFrame, Decision]] = []
        self._out: list[SentPacket] = []
        self._was_speech = False

    def on_loss_report(self, report: LossReport) -> None:
        """Feedback from the receiver (RTCP): used from the next frame on."""
        self._loss = report

    def push(self, pcm: NDArray[Any]) -> None:
        """Add PCM of the configured rate/channels, shape (n,) or (n, channels)."""
        for frame in self.framer.push(pcm):
            self._encode(frame)

    def flush(self) -> None:
        """End of input: pad the last frame and emit any incomplete packet."""
        for frame in self.framer.flush():
            self._encode(frame)
        if self._batch:
            self._emit()

    def pull(self) -> list[SentPacket]:
        """Packets completed since the last pull, in order."""
        out, self._out = self._out, []
        return out

    def _encode(self, pcm: NDArray[Any]) -> None:
        tokens = self.encoder.encode(pcm)
        decision = self.controller.decide(frame_features(pcm), self._loss)
        self._batch.append((TokenFrame(self._next_index, tuple(int(t) for t in tokens)), decision))
        self._next_index += 1
        if len(self._batch) == self.frames_per_packet:
            self._emit()

    def _emit(self) -> None:
        frames = [f for f, _ in self._batch]
        decisions = tuple(d for _, d in self._batch)
        payload = self.packetizer.packetize(frames, decisions)
        start = decisions[0].speech and not self._was_speech
        self._was_speech = decisions[-1].speech
        self._out.append(SentPacket(frames[0].index, payload, decisions, start))
        self._batch = []
