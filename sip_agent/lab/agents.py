"""The two SIP agents of a lab call: their command lines, processes, logs and reports.

Each agent is its own process (pjsua2 allows one endpoint per process) started
inside its lab namespace with :meth:`sip_agent.lab.lab.Lab.popen`, so the lab's
tear-down terminates it whatever happens here. Its output goes to a log file
that is polled for progress lines (listening, connected, the negotiated codec);
its results come from the ``--report-json`` file it writes when it exits.

The agent program is ``largesc call/answer`` (``python -m largesc_codec.cli``;
``sip_agent.commands`` mounts them with the codec options ``--weights`` and
``--plc``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sip_agent.lab.lab import Lab

__all__ = ["AgentProgram", "agent_program", "pick_engine", "AgentProcess", "negotiated"]

_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class AgentProgram:
    """How to start an agent: the argv prefix before ``call``/``answer``."""

    prefix: tuple[str, ...]

    def argv(self, role: str, *args: str) -> list[str]:
        return [*self.prefix, role, *args]


def agent_program() -> AgentProgram:
    """``largesc call/answer`` (``sip_agent.commands``, mounted through the ``largesc.commands`` entry points).

    ValueError when the installed ``largesc`` command has no ``call``: the package's
    entry points are missing (a checkout that was never installed).
    """
    from largesc_codec.cli.app import commands

    if not {"call", "answer"} <= set(commands()):
        raise ValueError("the `largesc` command has no call/answer: install the package (`pip install -e .` "
                         "or `make setup`) so its entry points add the SIP commands")
    return AgentProgram((sys.executable, "-m", "largesc_codec.cli"))


def pick_engine(name: str) -> str:
    """``auto``: the codec-backed engine when its module exists, else the raw test engine."""
    if name != "auto":
        return name
    return "largesc" if importlib.util.find_spec("sip_agent.media.largesc") else "raw"


def negotiated(log: str) -> dict[str, Any]:
    """Codec, payload type, clock rate and packet time the agent printed when media started."""
    found = re.search(r"negotiated codec: (\S+)(?: pt (\d+))?", log)
    if found is None:
        return {"codec": None, "payload_type": None, "clock_rate": None, "ptime_ms": None}
    codec = found.group(1)
    rate = re.search(r"/(\d+)", codec)
    ptime = re.search(r"(\d+) ms packets", log)
    return {"codec": codec, "payload_type": int(found.group(2)) if found.group(2) else None,
            "clock_rate": int(rate.group(1)) if rate else None,
            "ptime_ms": int(ptime.group(1)) if ptime else None}


class AgentProcess:
    """One agent running in a lab namespace, logging to ``log`` and reporting to ``report``."""

    def __init__(self, lab: "Lab", side: str, argv: list[str], log: Path, report: Path) -> None:
        self.side, self.log, self.report = side, log, report
        for stale in (log, report):  # never read a previous run's files as this run's
            stale.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(
            [_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        self._sink: IO[bytes] = open(log, "wb")
        try:
            self.proc = lab.popen(side, [*argv, "--report-json", str(report)], stdout=self._sink,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        except BaseException:
            self._sink.close()
            raise

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 15) -> str:
        """The agent's own ``error:`` lines if it printed any (library retry noise left out),
        else the last ``lines`` lines of its log."""
        text = self.text().splitlines()
        errors = [line for line in text if line.startswith("error:")]
        return "\n".join(errors or text[-lines:]) + f"\n(full log: {self.log})"

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, needle: str, timeout: float) -> bool:
        """True once ``needle`` is in the log; False on timeout or when the agent exited first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return True
            if not self.running:
                return needle in self.text()
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> int:
        """SIGTERM (the agent hangs up and writes its report), SIGKILL after ``grace`` s."""
        if self.running:
            self.proc.terminate()
        code = self.wait(grace)
        if code is None:
            self.proc.kill()
            code = self.proc.wait()
        self._sink.close()
        return code

    def result(self) -> dict[str, Any] | None:
        """The agent's JSON report (None if it wrote none or it is unreadable)."""
        try:
            data: dict[str, Any] = json.loads(self.report.read_text())
            return data
        except (OSError, ValueError):
            return None

    def call(self) -> dict[str, Any] | None:
        """The one call in the agent's report, if any."""
        data = self.result()
        calls = data.get("calls") if data else None
        return calls[-1] if calls else None
