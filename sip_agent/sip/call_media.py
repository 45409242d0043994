"""One call's media side: the LargeSC engine or pjsua2's standard stream, and its last statistics.

The call (signalling) decides when; this object does the starting, connecting,
sampling and releasing, and keeps the codec and figures the call reports.
"""

from __future__ import annotations

from typing import Callable

import pjsua2 as pj

from sip_agent.media.audio import CallAudio
from sip_agent.media.engine import EngineFactory, MediaEngine
from sip_agent.media.types import MediaStats
from sip_agent.sip.negotiation import LargeScNegotiation
from sip_agent.sip.pj_audio import StandardLeg, codec_of, stream_stats


class CallMedia:
    def __init__(self, factory: EngineFactory | None, audio: CallAudio, standard: StandardLeg,
                 report: Callable[[str], None]) -> None:
        self._factory, self._audio, self._std, self._report = factory, audio, standard, report
        self._engine: MediaEngine | None = None
        self.std_index: int | None = None
        self.codec, self.bitrate_bps = "", 0.0
        self.stats: MediaStats | None = None

    @property
    def on_largesc(self) -> bool:
        return self._engine is not None

    def start_largesc(self, negotiation: LargeScNegotiation) -> str | None:
        """Start the engine once on the settled LargeSC line; the error that stopped it, else None."""
        if self._engine is not None or self._factory is None:
            return None
        link, remote, port = negotiation.link, negotiation.remote, negotiation.port
        assert link is not None and remote is not None and port is not None
        self.codec, self.bitrate_bps = "LargeSC/24000", float(link.send.maxbps)
        self._report(f"negotiated codec: LargeSC/24000 pt {link.payload_type}, we send to {remote.address}:"
                     f"{remote.port} at most {link.send.maxbps:g} bit/s ({link.send.maxcodebooks} codebooks, "
                     f"redundancy {link.send.maxred}, {link.ptime_ms} ms packets), we receive on port {port}, "
                     f"{'SRTP ' + link.srtp.suite.value if link.srtp else 'plain RTP (no SRTP)'}")
        try:
            engine = self._factory(self._audio)
            engine.start(port, remote.address, remote.port, link)
        except Exception as exc:
            return f"LargeSC media engine failed to start: {exc}"
        self._engine = engine
        return None

    def connect_standard(self, call: pj.Call, index: int) -> list[str]:
        """Connect the standard leg after every media update: a re-INVITE (hold, resume) restarts pjsua2's stream."""
        codec = codec_of(call, index)
        if (self.std_index, (self.codec, self.bitrate_bps)) != (index, codec):
            self.codec, self.bitrate_bps = codec
            self._report(f"negotiated codec: {self.codec} (standard codec through pjsua2), {self.bitrate_bps:.0f} bit/s")
        self.std_index = index
        problems = self._std.connect(call.getAudioMedia(index))
        for problem in problems:
            self._report(problem)
        return problems

    def sample(self, call: pj.Call, duration_s: float) -> None:
        """Refresh ``stats``; a stream already gone keeps the last sample."""
        try:
            if self._engine is not None:
                self.stats = self._engine.stats()
            elif self.std_index is not None:
                self.stats = stream_stats(call, self.std_index, self.codec, duration_s)
        except Exception as exc:
            if self.stats is None:
                self._report(f"(media statistics unavailable: {exc})")

    def release(self) -> str | None:
        """Stop the engine and take the standard leg off the bridge; the engine's stop error, else None."""
        error = None
        if self._engine is not None:  # stop() is idempotent
            try:
                self._engine.stop()
                self.stats = self._engine.stats()
            except Exception as exc:
                error = f"LargeSC media engine failed to stop: {exc}"
        self._std.release()
        return error
