"""The seam between SIP and LargeSC media: the media engine interface and its registry.

pjsua2 negotiates; once the peer has accepted the dedicated LargeSC m= line
(see ``sdp_munge``) the call hands the media to a *media engine* built by a
factory from the registry below. The engine owns its UDP port (RTP on
``local_rtp_port``, RTCP on the next one) and its threads; it never calls
pjsua2, so it needs no pjlib thread registration.

Contract (called from the agent's main thread)::

    engine = factory(AudioFiles(play=..., record=...))
    engine.start(local_rtp_port, remote_addr, remote_rtp_port, link)  # once
    engine.stats()                                                    # any time, cheap
    engine.stop()                                                     # once; idempotent

``start`` must return quickly (start threads, do not block on audio) and
raise an exception with a clear message when it cannot run (port taken, no
model); the call then hangs up with that message. The project's codec backs
the engine named ``largesc`` (``register_engine("largesc", factory)``); the
``raw`` engine (``raw_engine.py``) moves test payloads over ``rtp/`` only.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from rtp.offer_answer import LargeScParams

PAYLOAD_FINGERPRINTS = 256  # packets per direction (about 20 s at 80 ms) whose payload CRC a report keeps


@dataclass(frozen=True)
class AudioFiles:
    """WAV file to play into the call (None: silence) and WAV file to record what is heard (None: discard)."""

    play: Path | None = None
    record: Path | None = None


@dataclass(frozen=True)
class LargeScLink:
    """What offer/answer settled for LargeSC (the names follow ``rtp.offer_answer.Agreement``).

    ``send``: the peer's parameters, i.e. the limits on what we send (at most
    ``send.maxcodebooks`` codebooks, ``send.maxbps`` bit/s of tokens,
    redundancy up to ``send.maxred``, ``send.frames_per_packet`` frames a
    packet). ``receive``: the parameters we declared. ``payload_type`` is the
    same both ways.
    """

    payload_type: int
    send: LargeScParams
    receive: LargeScParams

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


class MediaEngine(Protocol):
    """One call's LargeSC media (see the module docstring for the contract)."""

    def start(self, local_rtp_port: int, remote_addr: str, remote_rtp_port: int, link: LargeScLink) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> MediaStats: ...


EngineFactory = Callable[[AudioFiles], MediaEngine]
ENGINES: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``factory`` available to the agent under ``name`` (``largesc``: the codec-backed engine)."""
    ENGINES[name] = factory


def engine_factory(name: str) -> EngineFactory:
    """The factory registered as ``name``; ``raw`` is always there. KeyError names the choices."""
    if name == "raw" and "raw" not in ENGINES:
        from .raw_engine import RawPayloadEngine  # late: keeps the registry free of import cycles

        register_engine("raw", RawPayloadEngine)
    if name not in ENGINES:
        known = ", ".join(sorted(set(ENGINES) | {"raw"}))
        raise KeyError(
            f"no LargeSC media engine named {name!r} (registered: {known}); "
            f"the codec registers 'largesc' via sip_agent.media.register_engine"
        )
    return ENGINES[name]


def allocate_rtp_port(host: str, low: int = 20000, high: int = 60000, attempts: int = 200) -> int:
    """A free even UDP port whose odd neighbour (RTCP) is free too, on ``host``.

    The sockets are closed again before returning (the engine binds them), so
    another process could take the port in between; the random start makes
    that unlikely.
    """
    rng = random.Random()
    for _ in range(attempts):
        port = rng.randrange(low, high, 2)
        socks: list[socket.socket] = []
        try:
            for p in (port, port + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError(f"no free even/odd UDP port pair on {host} in {low}..{high} after {attempts} attempts")
