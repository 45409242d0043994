"""The seam between SIP and LargeSC media: the media engine interface and its registry.

pjsua2 negotiates; once the peer has accepted the dedicated LargeSC m= line
(see ``sdp_munge``) the call hands the media to a *media engine* built by a
factory from the registry below. The engine owns its UDP port (RTP on
``local_rtp_port``, RTCP on the next one) and its threads; it never calls
pjsua2, so it needs no pjlib thread registration.

Contract (called from the agent's main thread)::

    engine = factory(audio)       # audio.CallAudio: AudioFiles(play=..., record=...), pipes, a sound card
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
from typing import Callable, Protocol

from sip_agent.media.raw import RawPayloadEngine
from sip_agent.media.audio import CallAudio
from sip_agent.media.types import LargeScLink, MediaStats


class MediaEngine(Protocol):
    """One call's LargeSC media (see the module docstring for the contract)."""

    def start(self, local_rtp_port: int, remote_addr: str, remote_rtp_port: int, link: LargeScLink) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> MediaStats: ...


EngineFactory = Callable[[CallAudio], MediaEngine]
ENGINES: dict[str, EngineFactory] = {"raw": RawPayloadEngine}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``factory`` available to the agent under ``name`` (``largesc``: the codec-backed engine)."""
    ENGINES[name] = factory


def engine_factory(name: str) -> EngineFactory:
    """The factory registered as ``name``; ``raw`` is always there. KeyError names the choices."""
    if name not in ENGINES:
        known = ", ".join(sorted(set(ENGINES) | {"raw"}))
        raise KeyError(
            f"no LargeSC media engine named {name!r} (registered: {known}); "
            f"the codec registers 'largesc' via sip_agent.media.engine.register_engine"
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
