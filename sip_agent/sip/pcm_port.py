"""A pjsua2 conference-bridge port that connects a standard-codec call to PCM pipes (media/pipe.py).

The gateway's standard leg: pjmedia decodes the phone's codec (PCMU, PCMA,
G.722, ...) and the conference bridge resamples it to this port's 24 kHz, so
the LargeSC leg sees the rate it encodes, with pjmedia's own resampler and no
copy of ours. Every 20 ms on the bridge's clock thread:

* ``onFrameReceived``: the phone's audio -> the ``send`` pipe (to the LargeSC leg);
* ``onFrameRequested``: the ``heard`` pipe (from the LargeSC leg) -> the phone.

The callbacks run on pjmedia's thread: they only move samples and never raise
into pjsip (a failure is kept in ``error`` for the call's result).
"""

from __future__ import annotations

import numpy as np
import pjsua2 as pj

from largesc_codec.types import SAMPLE_RATE
from sip_agent.media.pipe import PcmPipe

PORT_MS = 20
PORT_SAMPLES = SAMPLE_RATE * PORT_MS // 1000


def _format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate, fmt.channelCount, fmt.bitsPerSample = SAMPLE_RATE, 1, 16
    fmt.frameTimeUsec = PORT_MS * 1000
    return fmt


class PipePort(pj.AudioMediaPort):  # type: ignore[misc]  # pjsua2 is untyped (SWIG)
    """24 kHz mono conference port between a call's stream and two pipes (see module docstring)."""

    def __init__(self, send: PcmPipe, heard: PcmPipe, name: str = "largesc-bridge") -> None:
        super().__init__()
        self.send, self.heard, self.name = send, heard, name
        self.frames_in = self.frames_out = 0
        self.error: str | None = None
        self._created = self._released = False

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size == 0:
                self.send.push(np.zeros(PORT_SAMPLES, dtype=np.float32))  # keep time: silence, not nothing
            else:
                pcm = np.frombuffer(bytes(frame.buf), dtype="<i2")
                self.send.push(pcm.astype(np.float32) / 32768.0)
            self.frames_in += 1
        except Exception as exc:  # never unwind into pjmedia
            self._fail(f"gateway bridge (from the phone): {exc!r}")

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            pcm = self.heard.pull(PORT_SAMPLES)
            data = (np.clip(pcm, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = len(data)
            self.frames_out += 1
        except Exception as exc:
            self._fail(f"gateway bridge (to the phone): {exc!r}")

    def _fail(self, problem: str) -> None:
        try:
            self.error = self.error or problem
        except AttributeError:  # a callback on a half-collected object: release() was skipped
            pass

    # -- StandardLeg (pj_audio.py) ---------------------------------------------------
    def connect(self, stream: pj.AudioMedia) -> list[str]:
        """Register the port with the bridge and connect it both ways to ``stream``."""
        if self._released:
            return ["gateway bridge: the call's audio was already released"]
        try:
            if not self._created:
                self.createPort(self.name, _format())
                self._created = True
            stream.startTransmit(self)
            self.startTransmit(stream)
        except pj.Error as exc:
            return [f"gateway bridge: cannot connect the call's audio: {exc.reason}"]
        return [self.error] if self.error else []

    def release(self) -> None:
        """Take the port off the bridge now, on the caller's thread, while this object is whole; idempotent.

        Left to the garbage collector, the C++ port would go when the cycle
        holding it is collected: on any thread, pjmedia's clock thread inside
        one of these callbacks included, with the attributes already cleared
        (seen in CI: AttributeError in onFrameReceived, then SIGSEGV).
        """
        if self._released:
            return
        self._released = True
        if self._created:
            pj.AudioMediaPort.__swig_destroy__(self)  # ~AudioMediaPort: pjsua_conf_remove_port; disowns ``this``
