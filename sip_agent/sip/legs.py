"""Which audio a new call gets: files, or the sound card (media/sound.py) for both kinds of call.

A LargeSC call's engine opens a ``CallAudio``; a standard-codec call's pjsua2
stream connects to a ``StandardLeg``. With a sound card both are the card:
the engine reads and writes its pipes directly, pjsua2's stream reaches them
through a conference-bridge port (sip/pcm_port.py) at the card's 24 kHz side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pjsua2 as pj

from sip_agent.media.audio import CallAudio
from sip_agent.media.sound import SoundCard
from sip_agent.sip.pcm_port import PipePort
from sip_agent.sip.pj_audio import StandardAudio, StandardLeg

if TYPE_CHECKING:
    from sip_agent.sip.call import CallOptions


class SoundLeg:
    """``StandardLeg`` on a sound card: the card's pipes through a bridge port."""

    def __init__(self, card: SoundCard) -> None:
        self.card = card
        self.port: PipePort | None = None

    def connect(self, stream: pj.AudioMedia) -> list[str]:
        if self.port is None:
            try:
                self.card.start()
            except RuntimeError as exc:
                return [str(exc)]
            # The port's view is the gateway's: what the call's stream gives goes to ``send`` (here the
            # speaker), what it takes comes from ``heard`` (here the microphone).
            self.port = PipePort(send=self.card.speaker, heard=self.card.mic, name="largesc-sound")
        return self.port.connect(stream) + ([self.card.error] if self.card.error else [])

    def release(self) -> None:
        if self.port is not None:  # only the leg that started the card stops it (not a rejected call's)
            self.port.release()
            self.port = None
            self.card.stop()


def call_legs(options: CallOptions, n: int = 1) -> tuple[CallAudio, StandardLeg]:
    """The ``n``-th call's audio on a LargeSC and on a standard codec (``NAME-n.wav`` from the 2nd)."""
    if options.sound is not None:
        return options.sound, SoundLeg(options.sound)
    return options.audio.numbered(n), StandardAudio((options.standard_audio or options.audio).numbered(n))
