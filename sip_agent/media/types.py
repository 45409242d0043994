"""Values that cross the seam between SIP and LargeSC media (see ``engine``): files, the SDP agreement, figures."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from largesc_codec.wire.offer_answer import LargeScParams
from rtp.srtp import SrtpKeys

if TYPE_CHECKING:
    from sip_agent.media.audio import AudioIn, AudioOut

PAYLOAD_FINGERPRINTS = 256  # packets per direction (about 20 s at 80 ms) whose payload CRC a report keeps


@dataclass(frozen=True)
class AudioFiles:
    """WAV file to play into the call (None: silence) and WAV file to record what is heard (None: discard)."""

    play: Path | None = None
    record: Path | None = None

    def numbered(self, n: int) -> "AudioFiles":
        """The files of an answerer's ``n``-th call: the same play file, the recording NAME-n.EXT from n = 2."""
        if n <= 1 or self.record is None:
            return self
        return AudioFiles(self.play, self.record.with_name(f"{self.record.stem}-{n}{self.record.suffix}"))

    def open(self) -> tuple["AudioIn", "AudioOut"]:
        """The ``CallAudio`` ends (audio.py): the play file 80 ms a tick, the recording; raises naming the file."""
        from sip_agent.media.wav import PlaySource, RecordSink  # PyAV: only when a call starts

        source = PlaySource(self.play)
        try:
            return source, RecordSink(self.record)
        except BaseException:
            source.close()
            raise


class SrtpPolicy(enum.Enum):
    """Whether a call's media is encrypted (``--srtp``): never, when the peer agrees, or always (else no call)."""

    OFF = "off"
    OPTIONAL = "optional"
    MANDATORY = "mandatory"


@dataclass(frozen=True)
class LargeScLink:
    """What offer/answer settled for LargeSC (the names follow ``largesc_codec.wire.offer_answer.Agreement``).

    ``send``: the peer's parameters, i.e. the limits on what we send (at most
    ``send.maxcodebooks`` codebooks, ``send.maxbps`` bit/s of tokens,
    redundancy up to ``send.maxred``, ``send.frames_per_packet`` frames a
    packet). ``receive``: the parameters we declared. ``payload_type`` is the
    same both ways. ``latch`` is local policy, not negotiated: take the peer's
    media address from its first packets (a peer behind a NAT; rtp/peer.py).
    ``srtp``: the SDES-agreed suite and keys (None: plain RTP, as agreed).
    """

    payload_type: int
    send: LargeScParams
    receive: LargeScParams
    latch: bool = False
    srtp: SrtpKeys | None = None

    @property
    def ptime_ms(self) -> int:
        """Packet time to send with: the peer's wish (a multiple of 80 ms)."""
        return self.send.frames_per_packet * 80


@dataclass(frozen=True)
class MediaStats:
    """Media figures of one call, from whichever engine carried it.

    Counts are since the start of the call; ``duration_s`` is the media time
    they cover (bit rates are per second of it). ``frames_recovered``: frames
    rebuilt from in-band redundancy; ``frames_concealed``: frames the
    receiver had to invent (LM concealment for LargeSC, PLC for a standard
    codec). ``extra`` holds engine-specific figures (name -> number).
    """

    codec: str
    duration_s: float = 0.0
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    payload_bytes_sent: int = 0
    payload_bytes_received: int = 0
    frames_recovered: int = 0
    frames_concealed: int = 0
    jitter_ms: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    payload_crc32: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def loss_fraction(self) -> float:
        expected = self.packets_received + self.packets_lost
        return self.packets_lost / expected if expected else 0.0

    @property
    def send_bitrate_bps(self) -> float:
        """Payload bit rate we sent (no RTP/UDP/IP headers)."""
        return 8.0 * self.payload_bytes_sent / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> str:
        """One human line: packets, loss, recovery, concealment, bit rate."""
        text = (
            f"{self.codec}: sent {self.packets_sent} pkts ({self.send_bitrate_bps:.0f} bit/s payload), "
            f"received {self.packets_received}, lost {self.packets_lost} ({100 * self.loss_fraction:.1f}%), "
            f"recovered {self.frames_recovered} frames, concealed {self.frames_concealed}, "
            f"jitter {self.jitter_ms:.1f} ms"
        )
        if self.extra:
            text += ", " + ", ".join(f"{k} {v:g}" for k, v in sorted(self.extra.items()))
        return text
