"""A real JACK server with its dummy driver (a virtual sound card) and a test client on it.

``JackServer`` runs ``jackd -d dummy`` under its own name, so tests never meet
another server; agents reach it through ``env`` (PortAudio's JACK host API
reads ``JACK_DEFAULT_SERVER``). ``Tap`` is a JACK client with one output
(the virtual microphone: it plays a signal into the agent's input port) and
one input (the speaker's monitor: it records the agent's output port).
``wait_us`` makes the dummy card's clock run off the machine's: a period of
960 frames at 48 kHz is 20 000 us; 19 980 us is a card 1000 ppm fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from typing import Any

import numpy as np
import pytest

RATE, PERIOD = 48_000, 960


class JackServer:
    def __init__(self, wait_us: int | None = None) -> None:
        if shutil.which("jackd") is None:
            pytest.fail("jackd is missing: `make setup-test` installs Debian's jackd2 (requirements/apt-test.txt)")
        self.name = f"lsc-{uuid.uuid4().hex[:8]}"
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1", "JACK_NO_START_SERVER": "1"}
        argv = ["jackd", "-n", self.name, "--no-realtime", "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)]
        self.proc = subprocess.Popen(argv + (["-w", str(wait_us)] if wait_us else []), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        import jack

        end = time.monotonic() + 15
        while True:
            try:
                jack.Client("probe", servername=self.name, no_start_server=True).close()
                return
            except jack.JackOpenError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail(f"jackd -n {self.name} did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Tap:
    """Plays ``signal`` (48 kHz float32, looped) into a client's input, records the client's output."""

    def __init__(self, server: JackServer, signal: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        import jack

        self.client = jack.Client("tap", servername=server.name, no_start_server=True)
        self.mic = self.client.outports.register("mic")
        self.ear = self.client.inports.register("ear")
        self.signal, self.pos = signal.astype(np.float32), 0
        self.chunks: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        self._lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        idx = (self.pos + np.arange(frames)) % len(self.signal)
        self.mic.get_array()[:] = self.signal[idx]
        self.pos = (self.pos + frames) % len(self.signal)
        with self._lock:
            self.chunks.append(self.ear.get_array().copy())

    def attach(self, client: str = "PortAudio", timeout: float = 60.0) -> None:
        """Once ``client``'s ports exist: our mic -> its first input, its first output -> our ear."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ins = self.client.get_ports(f"{client}:in", is_input=True, is_audio=True)
            outs = self.client.get_ports(f"{client}:out", is_output=True, is_audio=True)
            if ins and outs:
                self.client.connect(self.mic, ins[0])
                self.client.connect(outs[0], self.ear)
                with self._lock:
                    self.chunks.clear()
                return
            time.sleep(0.05)
        pytest.fail(f"no JACK client {client!r} with ports appeared: {[p.name for p in self.client.get_ports()]}")

    def heard(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        with self._lock:
            return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def tone(freq: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray[Any, np.dtype[np.float32]]:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray[Any, np.dtype[np.float32]], rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])
