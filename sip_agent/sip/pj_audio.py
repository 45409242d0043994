"""Audio of a standard-codec call through pjsua2's own media: WAV player/recorder and stream stats.

Used when the peer did not accept LargeSC. The WAV player feeds the call's
stream through pjsua2's conference bridge (resampled to the codec's rate);
the recorder writes what the peer sends as a 16 kHz mono WAV. pjmedia reads
only 16-bit PCM WAV files: the command line hands over a 16-bit mono WAV copy
of any other ``--play`` file (cli.py), so a failure here is reported with a fix.
Players and recorders are pjsua2 objects: ``release()`` them before
``libDestroy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pjsua2 as pj

from sip_agent.media.types import AudioFiles, MediaStats


class StandardLeg(Protocol):
    """The audio of a call that ended on a standard codec, connected to pjsua2's stream of it."""

    def connect(self, stream: pj.AudioMedia) -> list[str]:
        """Start transmitting to/from ``stream``; returns problems (empty when all went well)."""
        ...

    def release(self) -> None:
        """Drop the pjsua2 objects (before ``libDestroy``); idempotent."""
        ...


class StandardAudio:
    """Plays ``audio.play`` into one pjsua2 call stream and records it to ``audio.record``."""

    def __init__(self, audio: AudioFiles) -> None:
        self.audio = audio
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None

    def connect(self, stream: pj.AudioMedia) -> list[str]:
        """Start playing/recording on ``stream``; returns problems (empty when all went well)."""
        problems: list[str] = []
        if self.player is not None:  # a media update restarted the stream: connect again (idempotent in pjmedia)
            self.player.startTransmit(stream)
        if self.recorder is not None:
            stream.startTransmit(self.recorder)
        if self.audio.play is not None and self.player is None:
            try:
                player = pj.AudioMediaPlayer()
                player.createPlayer(str(self.audio.play), pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(stream)
                self.player = player
            except pj.Error as exc:
                problems.append(
                    f"cannot play {self.audio.play}: {exc.reason} "
                    f"(pjmedia plays 16-bit PCM WAV files; convert e.g. with 'sox IN -b 16 OUT.wav')"
                )
        if self.audio.record is not None and self.recorder is None:
            try:
                Path(self.audio.record).parent.mkdir(parents=True, exist_ok=True)
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(str(self.audio.record))
                stream.startTransmit(recorder)
                self.recorder = recorder
            except (pj.Error, OSError) as exc:
                reason = exc.reason if isinstance(exc, pj.Error) else str(exc)
                problems.append(f"cannot record to {self.audio.record}: {reason} (is the directory writable?)")
        return problems

    def release(self) -> None:
        """Drop the player and recorder (the recorder's WAV header is finalised here)."""
        self.player = None
        self.recorder = None


def codec_of(call: pj.Call, media_index: int) -> tuple[str, float]:
    """(``NAME/clock``, nominal bit rate in bit/s) of a call's active audio stream."""
    info = call.getStreamInfo(media_index)
    bps = float(info.audCodecParam.info.avgBps) if info.audCodecParam is not None else 0.0
    return f"{info.codecName}/{info.codecClockRate}", bps


def stream_stats(call: pj.Call, media_index: int, codec: str, duration_s: float) -> MediaStats:
    """pjsua2's RTCP/jitter-buffer statistics of one stream as ``MediaStats``.

    ``frames_concealed`` is the jitter buffer's count of frames it had to
    fill (pjmedia PLC); a standard codec has no redundancy, so nothing is
    "recovered".
    """
    st = call.getStreamStat(media_index)
    rx, tx = st.rtcp.rxStat, st.rtcp.txStat
    return MediaStats(
        codec=codec,
        duration_s=duration_s,
        packets_sent=int(tx.pkt),
        packets_received=int(rx.pkt),
        packets_lost=int(rx.loss),
        payload_bytes_sent=int(tx.bytes),
        payload_bytes_received=int(rx.bytes),
        frames_recovered=0,
        frames_concealed=int(st.jbuf.lost),
        jitter_ms=float(rx.jitterUsec.mean) / 1000.0,
        extra={"discarded": float(rx.discard), "duplicates": float(rx.dup), "reordered": float(rx.reorder),
               "jitter_buffer_ms": float(st.jbuf.avgDelayMsec)},
    )
