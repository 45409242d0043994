"""Helpers for the SIP agent tests.

pjsua2 allows one Endpoint per process, so every agent runs as
``python -m sip_agent ...`` in its own subprocess and reports through
``--report-json``. Everything listens on 127.0.0.1 with ports picked free
at run time, so parallel runs do not collide. Third-party peers (sipp,
kamailio, baresip) come from requirements/apt-test.txt.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_rtp_port() -> int:
    """An even UDP port free on 127.0.0.1 with its RTCP neighbour (port + 1) free too."""
    for _ in range(200):
        port = free_port(tcp=False) & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind((HOST, port))
                b.bind((HOST, port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free even RTP/RTCP port pair on 127.0.0.1")


def free_port(udp: bool = True, tcp: bool = True) -> int:
    """A port free on 127.0.0.1 for the protocols asked for."""
    for _ in range(200):
        port = random.randrange(20000, 60000)
        socks = []
        try:
            for kind in ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else []):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port on 127.0.0.1")


def tool(name: str) -> str:
    """Path of a third-party program the tests need; fails with the fix when it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")  # kamailio lives in /usr/sbin
    if path is None:
        pytest.fail(f"{name} is not installed: `make setup-test` installs it (requirements/apt-test.txt)")
    return path


def tone_wav(path: Path, freq: float, seconds: float, rate: int = 16000) -> Path:
    """A mono 16-bit WAV sine tone at 0.3 of full scale."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def dominant(path: Path) -> tuple[float, float]:
    """(strongest frequency in Hz, RMS) of a 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
        rate = w.getframerate()
    if x.size == 0:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[spectrum.argmax()]), float(np.sqrt(np.mean(x**2)))


@dataclass
class AgentRun:
    """One ``python -m sip_agent`` subprocess."""

    proc: subprocess.Popen[bytes]
    out: Path
    report_path: Path
    started: float

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 10.0) -> None:
        """Wait until the agent printed ``needle`` (e.g. that it listens); fail with its output if not."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"agent did not print {needle!r} within {timeout} s; output:\n{self.text()}")

    def finish(self, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        """Exit code and JSON report; the process is killed (and the test fails) past ``timeout``."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"agent still running after {timeout} s; output:\n{self.text()}")
        if not self.report_path.exists():
            pytest.fail(f"agent wrote no report (exit code {rc}); output:\n{self.text()}")
        return rc, json.loads(self.report_path.read_text())


@pytest.fixture
def agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: ``agent(name, *args)`` starts ``python -m sip_agent *args`` and returns an ``AgentRun``."""
    runs: list[AgentRun] = []

    def start(name: str, *args: str) -> AgentRun:
        out, report = tmp_path / f"{name}.out", tmp_path / f"{name}.json"
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sip_agent", *args, "--report-json", str(report)],
                cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, env=env,
            )
        run = AgentRun(proc, out, report, time.monotonic())
        runs.append(run)
        return run

    yield start
    for run in runs:  # only our own children, by handle
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def only_call(report: dict[str, Any]) -> dict[str, Any]:
    """The single call of a report (fails if there is not exactly one)."""
    calls = report["calls"]
    assert len(calls) == 1, f"expected one call, got {calls}"
    return calls[0]
