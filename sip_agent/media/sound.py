"""A call's microphone and speaker on a sound card, through PortAudio (``sounddevice``).

Why PortAudio and not pjsua2's sound device: the pjsua2-python wheel sees no
device at all (``getDevCount()`` is 0 even with a JACK server running), while
Debian's PortAudio reaches ALSA, OSS and JACK; and LargeSC media never passes
through pjsua2's conference bridge anyway. So one audio stack serves both
kinds of call: a LargeSC call's engine reads and writes the card's pipes
(``SoundCard.open``, a ``CallAudio``), a standard-codec call reaches the same
pipes through a conference-bridge port (sip/sound_leg.py).

One duplex stream at the card's own rate (48 kHz on JACK) calls back once per
block on PortAudio's thread:

* microphone: first channel -> libsamplerate to 24 kHz -> ``mic`` pipe -> the engine's 80 ms ticks;
* speaker: ``speaker`` pipe (the engine's played frames) -> libsamplerate to the card's rate -> every channel.

Each ratio is trimmed by a ``DriftController`` (drift.py), fed the card's
measured rate (``CardClock``), so the pipes, and with them the delay, stay
where they settled while the card's clock drifts.
A card carries one conversation: ``open`` a second time while open raises.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE
from sip_agent.media.audio import Pcm
from sip_agent.media.drift import CardClock, DriftController, engine_level
from sip_agent.media.pipe import PcmPipe, PipeIn, PipeOut

BLOCK_MS = 20
HISTORY_EVERY_S = 5.0  # one sample of levels and corrections per 10 s (a 10-hour call: 3600)
HISTORY_MAX = 4000


def _portaudio() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio2 is missing
        raise ValueError(f"--sound-device: PortAudio is not installed ({exc}); install Debian's libportaudio2 "
                         "(`make setup` does)") from exc
    return sounddevice


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    hostapi: str
    inputs: int
    outputs: int
    rate: int
    default: bool


def devices() -> list[Device]:
    """Every device PortAudio sees, the default one marked."""
    sd = _portaudio()
    apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    return [Device(int(d["index"]), str(d["name"]), str(apis[d["hostapi"]]["name"]), int(d["max_input_channels"]),
                   int(d["max_output_channels"]), int(d["default_samplerate"]),
                   int(d["index"]) in (default_in, default_out)) for d in sd.query_devices()]


def find_device(name: str) -> Device:
    """The device ``name`` (``default``, an index, or part of a name); ValueError naming ``largesc devices``."""
    sd = _portaudio()
    found = devices()
    hint = "; `largesc devices` lists them" if found else (
        ": PortAudio sees none (start an audio server: JACK or PulseAudio's ALSA plugin)")
    try:
        if name == "default":
            index = max(sd.default.device[0], sd.default.device[1])  # -1 where there is none
            if index < 0:
                raise ValueError("no default device")
            info = sd.query_devices(index)
        else:
            info = sd.query_devices(int(name) if name.isdigit() else name)
    except (ValueError, sd.PortAudioError) as exc:
        raise ValueError(f"--sound-device {name}: {exc}{hint}") from None
    device = next((d for d in found if d.index == int(info["index"])), None)
    if device is None or device.inputs < 1 or device.outputs < 1:
        raise ValueError(f"--sound-device {name}: a call needs a device with a microphone and a speaker "
                         f"({info['name']}: {info['max_input_channels']} in, {info['max_output_channels']} out){hint}")
    return device


def _pipe() -> PcmPipe:
    # As the gateway's pipes (gateway/pair.py): one 80 ms frame plus two blocks of margin for the two clocks.
    margin = 2 * SAMPLE_RATE * BLOCK_MS // 1000
    return PcmPipe(prefill=FRAME_SAMPLES + margin, capacity=2 * FRAME_SAMPLES + margin)


class SoundCard:
    """A ``CallAudio`` on one PortAudio device (see module docstring)."""

    def __init__(self, device: Device, drift: bool = True) -> None:
        self.device, self.drift = device, drift
        self.mic, self.speaker = _pipe(), _pipe()
        self.mic_drift, self.speaker_drift = DriftController(SAMPLE_RATE), DriftController(SAMPLE_RATE)
        self.xruns = 0  # blocks PortAudio flagged (input overflow, output underflow)
        self.history: list[dict[str, float]] = []
        self.error: str | None = None
        self._stream: Any = None
        self._seen: dict[str, tuple[int, int]] = {}
        self.clock = CardClock(device.rate)
        self._lock = threading.Lock()
        self._started_at = self._history_at = 0.0

    # -- CallAudio ---------------------------------------------------------------------
    def open(self) -> tuple[PipeIn, PipeOut]:
        if self._stream is not None:
            raise RuntimeError(f"sound device {self.device.name} is in use by another call (one call per card)")
        self.start()
        return _CardIn(self), _CardOut(self)

    def start(self) -> None:
        """Open the duplex stream with fresh pipes (RuntimeError naming the device when it fails)."""
        import samplerate

        with self._lock:
            if self._stream is not None:
                return
            sd, dev = _portaudio(), self.device
            self._seen = {"mic": (0, 0), "speaker": (0, 0)}
            self.clock = CardClock(dev.rate)
            self.mic, self.speaker = _pipe(), _pipe()
            self.mic_drift, self.speaker_drift = DriftController(SAMPLE_RATE), DriftController(SAMPLE_RATE)
            self._in_rs = samplerate.Resampler("sinc_fastest", channels=1)
            self._out_rs = samplerate.CallbackResampler(self._speaker_block, dev.rate / SAMPLE_RATE,
                                                        "sinc_fastest", channels=1)
            self._out_channels = min(2, dev.outputs)
            try:
                self._stream = sd.Stream(samplerate=dev.rate, blocksize=dev.rate * BLOCK_MS // 1000,
                                         device=(dev.index, dev.index), channels=(1, self._out_channels),
                                         dtype="float32", callback=self._callback, latency="low")
                self._stream.start()
            except sd.PortAudioError as exc:
                self._stream = None
                raise RuntimeError(f"sound device {dev.name}: cannot start audio: {exc}") from exc
            self._started_at = self._history_at = time.monotonic()

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    # -- PortAudio's thread --------------------------------------------------------------
    def _callback(self, indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        try:
            if status:
                self.xruns += 1
            dt = frames / self.device.rate
            self.clock.observe(frames, time.monotonic())
            c_in = self._correction("mic", self.mic_drift, self.mic, dt)
            self.mic.push(self._in_rs.process(indata[:, 0], SAMPLE_RATE / self.device.rate * (1.0 - c_in)))
            c_out = self._correction("speaker", self.speaker_drift, self.speaker, dt)
            self._out_rs.ratio = self.device.rate / SAMPLE_RATE * (1.0 - c_out)
            out = self._out_rs.read(frames)
            outdata[:] = 0.0
            outdata[: len(out)] = np.clip(out, -1.0, 1.0).reshape(-1, 1)
            self._sample_history()
        except Exception as exc:  # never unwind into PortAudio
            self.error = self.error or f"sound device {self.device.name}: {exc!r}"
            outdata[:] = 0.0

    def _correction(self, name: str, control: DriftController, pipe: PcmPipe, dt: float) -> float:
        st = pipe.stats()
        if (st.underruns, st.dropped) != self._seen[name]:  # refilled from scratch: a new set-point
            self._seen[name] = (st.underruns, st.dropped)
            control.restart()
        if not self.drift or st.level == 0 and control.setpoint_s is None:
            return control.correction if self.drift else 0.0  # not flowing (yet)
        takes = pipe is self.mic
        since = time.monotonic() - (pipe.pulled_at if takes else pipe.pushed_at)
        level = engine_level(st.level, since, FRAME_SAMPLES, SAMPLE_RATE, takes)
        return control.update(level, dt, self.clock.drift if takes else -self.clock.drift)

    def _speaker_block(self) -> Pcm:
        return self.speaker.pull(SAMPLE_RATE * BLOCK_MS // 1000)

    def _sample_history(self) -> None:
        now = time.monotonic()
        if now - self._history_at < HISTORY_EVERY_S:
            return
        self._history_at = now
        if len(self.history) >= HISTORY_MAX:
            del self.history[::2]  # thin, keep the whole call's span
        self.history.append({"t_s": round(now - self._started_at, 1), **self._levels()})

    def _levels(self) -> dict[str, float]:
        return {"mic_ms": round(1000 * self.mic_drift.level_s, 1),
                "speaker_ms": round(1000 * self.speaker_drift.level_s, 1),
                "mic_ppm": round(1e6 * self.mic_drift.correction, 1),
                "speaker_ppm": round(1e6 * self.speaker_drift.correction, 1),
                "card_ppm": round(1e6 * self.clock.drift, 1)}

    def figures(self) -> dict[str, object]:
        """For the report: device, pipe delays, drift corrections, drops, underruns, xruns, level history."""
        out: dict[str, object] = {"device": self.device.name, "rate": self.device.rate, "drift_control": self.drift,
                                  "xruns": self.xruns, "error": self.error, **self._levels()}
        for name, pipe in (("mic", self.mic), ("speaker", self.speaker)):
            st = pipe.stats()
            out.update({f"{name}_wait_ms": round(1000.0 * st.wait_samples / SAMPLE_RATE, 1),
                        f"{name}_underruns": st.underruns, f"{name}_dropped": st.dropped})
        out["history"] = list(self.history)
        return out


class _CardIn(PipeIn):
    def __init__(self, card: SoundCard) -> None:
        super().__init__(card.mic)
        self.card = card

    def close(self) -> None:
        self.card.stop()


class _CardOut(PipeOut):
    def __init__(self, card: SoundCard) -> None:
        super().__init__(card.speaker)
        self.card = card

    def close(self) -> None:
        self.card.stop()
