"""Two sites on loopback for the gateway tests: a baresip phone and a ``largesc gateway`` at each.

::

    baresip A  <-G.711/G.722->  gateway A  <==LargeSC trunk==>  gateway B  <-G.711/G.722->  baresip B

Every port is picked free at run time. Each baresip auto-answers, sends a
tone from a WAV file (aufile) and dumps what it decodes (sndfile,
``dump-*-dec.wav``); ``-t`` makes it quit (and hang up) after that many seconds.
"""

from __future__ import annotations

import glob
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

Launch = Callable[..., "subprocess.Popen[bytes]"]  # subprocess.Popen, or a lab's popen for one namespace


from tests.sip_agent.conftest import HOST, REPO, AgentRun, free_port, tone_wav, tool

STANDARD = ("PCMU/8000", "PCMA/8000", "G722/16000")


@dataclass
class Phone:
    """A baresip phone: its directory, SIP port and process."""

    work: Path
    port: int
    tone: Path
    host: str = HOST
    launch: Launch = subprocess.Popen
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def make(cls, work: Path, freq: float, host: str = HOST, launch: Launch = subprocess.Popen) -> "Phone":
        work.mkdir(parents=True, exist_ok=True)
        port, rtp = free_port(), random.randrange(30000, 59000, 100)
        tone = tone_wav(work / f"{freq:g}.wav", freq, 30.0, rate=8000)  # aufile wants the codec's rate
        (work / "config").write_text(
            f"sip_listen {host}:{port}\nnet_interface {host}\nmodule_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule g722.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n"
            "module account.so\nmodule menu.so\n"
            f"audio_source aufile,{tone}\naudio_player alsa,null\naudio_alert alsa,null\nsnd_path {work}\n"
            f"rtp_ports {rtp}-{rtp + 99}\n")
        (work / "accounts").write_text(f"<sip:bs@{host}>;regint=0;answermode=auto\n")
        return cls(work, port, tone, host, launch)

    def start(self, quit_after_s: float, dial: str | None = None) -> None:
        cmd = [tool("baresip"), "-f", str(self.work), "-t", f"{quit_after_s:g}"]
        if dial:
            cmd += ["-e", f"/dial {dial}"]
        with open(self.work / "baresip.out", "ab") as out:
            self.procs.append(self.launch(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.work))

    def log(self) -> str:
        return (self.work / "baresip.out").read_text(errors="replace")

    def heard(self) -> Path:
        """The WAV baresip decoded from its gateway."""
        found = sorted(glob.glob(str(self.work / "dump-*-dec.wav")))
        assert found, f"baresip wrote no decoded audio in {self.work}:\n{self.log()[-2000:]}"
        return Path(found[-1])

    def wait(self, timeout: float = 30.0) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Gateway:
    """One ``largesc gateway`` process (``run``: the suite's ``AgentRun`` once started)."""

    name: str
    port: int
    host: str = HOST
    launch: Launch = subprocess.Popen
    run: AgentRun | None = None

    def start(self, work: Path, trunk: str, local: str, *extra: str) -> None:
        out, report = work / f"{self.name}.out", work / f"{self.name}.json"
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        argv = [sys.executable, "-m", "largesc_codec.cli", "gateway", "--port", str(self.port),
                "--bind", self.host, "--trunk", trunk, "--local", local, "--report-json", str(report), *extra]
        with open(out, "wb") as sink:
            proc = self.launch(argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, env=env)
        self.run = AgentRun(proc, out, report, time.monotonic())

    def text(self) -> str:
        return self.run.text() if self.run else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.run is not None
        self.run.wait_for("gateway on ", timeout)

    def finish(self, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
        assert self.run is not None
        return self.run.finish(timeout)

    def kill(self) -> None:
        if self.run is not None and self.run.proc.poll() is None:
            self.run.proc.kill()
            self.run.proc.wait()


@dataclass
class Sites:
    """The two sites of the module docstring, started by ``start``."""

    work: Path
    phone_a: Phone
    phone_b: Phone
    gw_a: Gateway
    gw_b: Gateway

    @classmethod
    def make(cls, work: Path, hosts: tuple[str, str] = (HOST, HOST),
             launch: tuple[Launch, Launch] = (subprocess.Popen, subprocess.Popen)) -> "Sites":
        """Site A and site B, each on its own address and started by its own ``launch``."""
        return cls(work, Phone.make(work / "A", 440, hosts[0], launch[0]), Phone.make(work / "B", 660, hosts[1], launch[1]),
                   Gateway("gwA", free_port(), hosts[0], launch[0]), Gateway("gwB", free_port(), hosts[1], launch[1]))

    def start_gateways(self, *extra: str, local_b: str | None = None, only_b: tuple[str, ...] = ()) -> None:
        a, b = self.gw_a, self.gw_b
        a.start(self.work, f"sip:{b.host}:{b.port}", f"sip:{{user}}@{a.host}:{self.phone_a.port}", *extra)
        b.start(self.work, f"sip:{a.host}:{a.port}", local_b or f"sip:{{user}}@{b.host}:{self.phone_b.port}",
                *extra, *only_b)
        a.wait_ready()
        b.wait_ready()

    def stop(self) -> None:
        for phone in (self.phone_a, self.phone_b):
            for proc in phone.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.gw_a.kill()
        self.gw_b.kill()
