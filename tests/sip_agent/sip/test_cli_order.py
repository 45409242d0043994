"""`largesc call/answer`: cheap checks come before the models load; $LARGESC_WEIGHTS names the weights.

What could go wrong: a missing ``--play`` file or a busy port reported only
after a minute of model loading (or as a pjsip error), and ``--weights``
silently falling back to the hub when the environment names other weights.
Each agent is a ``largesc`` subprocess (pjsua2 allows one endpoint per process).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sip_agent.conftest import HOST, REPO, free_port

pytestmark = [pytest.mark.sip, pytest.mark.timeout(180)]
LOADED = "LargeSC codec ready"  # printed once the models are loaded


def _largesc(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict[str, object]]:
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "LARGESC_THREADS": "1", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "largesc_codec.cli", *args, "--report-json", str(report)],
                          check=False, capture_output=True, text=True, timeout=150, cwd=REPO, env=full_env)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode, done.stdout + done.stderr, json.loads(report.read_text())


def test_play_ports_and_bind_are_checked_before_the_models_load(tmp_path: Path, test_weights: Path) -> None:
    (tmp_path / "clips").mkdir()
    weights = ["--weights", str(test_weights)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((HOST, 0))
        busy = held.getsockname()[1]
        cases = [
            (["call", f"sip:bob@{HOST}:5060", "--play", str(tmp_path / "speech.flac")],
             f"--play {tmp_path / 'speech.flac'}: no such file"),
            (["call", f"sip:bob@{HOST}:5060", "--play", str(tmp_path / "clips")],
             f"--play {tmp_path / 'clips'} is a directory"),
            (["answer", "--port", str(busy)], f"--port {busy}: UDP port {busy} on {HOST} is in use"),
            (["call", f"sip:bob@{HOST}:5060", "--bind", "10.255.255.254"], "--bind 10.255.255.254: not an IP address"),
        ]
        for argv, why in cases:
            rc, out, report = _largesc(tmp_path, *argv, *weights)
            assert rc == 2 and why in out and LOADED not in out, out  # refused before loading anything
            assert report["error"] is not None and why in str(report["error"]) and report["exit_code"] == 2


def test_the_environment_names_the_weights_and_a_named_failure_is_an_error(tmp_path: Path,
                                                                          test_weights: Path) -> None:
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}  # no hub: only the env can help
    rc, out, report = _largesc(tmp_path, "answer", "--port", str(free_port()), "--calls", "1", "--timeout", "1",
                               env={**offline, "LARGESC_WEIGHTS": str(test_weights)})
    assert rc == 1 and f"{LOADED}: weights {test_weights} (UNTRAINED" in out, out  # listened, nobody called
    assert "LargeSC offered/accepted" in out and report["calls"] == []
    rc, out, report = _largesc(tmp_path, "call", f"sip:bob@{HOST}:5060",
                               env={**offline, "LARGESC_WEIGHTS": str(tmp_path / "gone")})
    assert rc == 2 and "cannot load the LargeSC models" in str(report["error"]), out  # named: no quiet fallback
    assert "LargeSC is off" not in out
