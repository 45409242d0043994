"""Several LargeSC calls into one answerer at once, each with its own codec state over one set of models.

Real agents (``largesc answer`` / ``largesc call`` subprocesses) on loopback,
the small test weights, one torch thread each (CI has 2 cores).
"""

from __future__ import annotations

import signal
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from tests.sip_agent.conftest import HOST, AgentRun, free_port, tone_wav
from tests.sip_agent.media.test_largesc_engine import largesc  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(240)]


def _wait_connected(runs: list[AgentRun], timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all("negotiated codec: LargeSC" in r.text() for r in runs):
            return
        time.sleep(0.1)
    pytest.fail("not every caller got its LargeSC call up:\n" + "\n---\n".join(r.text()[-800:] for r in runs))


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def _answerer(largesc: Any, tmp_path: Path, weights: Path, calls: int, record: Path,
              *extra: str) -> tuple[AgentRun, int]:
    port = free_port()
    run = largesc("answer", "answer", "--port", str(port), "--calls", str(calls), "--timeout", "150",
                  "--max-calls", "4", "--weights", str(weights), "--plc", "repeat", "--record", str(record), *extra)
    run.wait_for("waiting for calls", timeout=90)
    return run, port


def _caller(largesc: Any, name: str, port: int, weights: Path, play: Path, seconds: float) -> AgentRun:
    run: AgentRun = largesc(name, "call", f"sip:bob@{HOST}:{port}", "--weights", str(weights), "--plc", "repeat",
                            "--play", str(play), "--duration", f"{seconds:g}")
    return run


def test_four_calls_at_once_and_a_fifth_gets_486(largesc: Any, tmp_path: Path, test_weights: Path) -> None:
    play = tone_wav(tmp_path / "tone.wav", 440, 30.0)
    record = tmp_path / "heard.wav"
    answerer, port = _answerer(largesc, tmp_path, test_weights, 4, record)
    # The four calls last until the test ends them: with fixed 7 s and 12 s calls the 5th INVITE was
    # answered 200 on CI, the 1st caller having connected and ended before the 4th had loaded its models.
    callers = [_caller(largesc, f"call{i}", port, test_weights, play, 90.0) for i in range(1, 5)]
    _wait_connected(callers)
    busy = largesc("busy", "call", f"sip:bob@{HOST}:{port}", "--engine", "none", "--answer-timeout", "15",
                   "--duration", "2")
    rc_busy, busy_report = busy.finish(timeout=60)
    # 486 when pjsua finds no call slot; 480 ("Media init error", pjsua_call.c) when it finds a slot but the
    # media transports are all taken: on a loaded machine a slot can come free a moment before its transport.
    assert rc_busy == 1 and busy_report["calls"][0]["status_code"] in (486, 480), (busy_report,
                                                                                 answerer.text()[-1500:])
    assert all(run.proc.poll() is None for run in callers), [run.text()[-600:] for run in callers]
    time.sleep(6.0)
    for run in callers:
        run.proc.send_signal(signal.SIGTERM)  # the caller hangs up and writes its report
    for run in callers:
        rc, report = run.finish(timeout=60)
        assert rc == 0, run.text()[-1500:]
    rc, report = answerer.finish(timeout=60)
    # The 5th INVITE found pjsua2's 4 call slots taken: pjsua answered 486 itself (sip/endpoint.py).
    assert rc == 0 and len(report["calls"]) == 4, report
    for call in report["calls"]:
        media = call["media"]
        assert call["connected"] and call["codec"] == "LargeSC/24000", call
        assert media["packets_received"] >= 60 and media["extra"]["frames_primary"] >= 60, media  # >= 6 s each
    # Each call recorded into its own file: heard.wav, heard-2.wav .. heard-4.wav, each the call's length.
    files = [record] + [record.with_name(f"heard-{n}.wav") for n in range(2, 5)]
    assert all(f.exists() for f in files), [(f, f.exists()) for f in files]
    lengths, durations = sorted(_seconds(f) for f in files), sorted(c["duration_s"] for c in report["calls"])
    assert all(abs(a - b) <= 1.0 for a, b in zip(lengths, durations)), (lengths, durations)


def test_a_call_starting_and_ending_does_not_disturb_two_running_ones(largesc: Any, tmp_path: Path,
                                                                     test_weights: Path) -> None:
    play = tone_wav(tmp_path / "tone.wav", 440, 12.0)
    answerer, port = _answerer(largesc, tmp_path, test_weights, 3, tmp_path / "heard.wav")
    running = [_caller(largesc, f"long{i}", port, test_weights, play, 10.0) for i in (1, 2)]
    _wait_connected(running)
    time.sleep(1.0)
    short = _caller(largesc, "short", port, test_weights, play, 3.0)  # starts and ends while the two run
    assert short.finish(timeout=90)[0] == 0, short.text()[-1500:]
    results = [run.finish(timeout=120) for run in running]
    rc, report = answerer.finish(timeout=60)
    assert rc == 0 and len(report["calls"]) == 3, report
    long_calls = sorted(report["calls"], key=lambda c: c["duration_s"])[1:]
    for result in results:
        far = result[1]["calls"][0]  # a caller's side; its near side is the answerer's call that mirrors it
        near = min(long_calls, key=lambda c: abs(c["media"]["packets_sent"] - far["media"]["packets_received"])
                   + abs(c["media"]["packets_received"] - far["media"]["packets_sent"]))
        long_calls.remove(near)  # each answerer call mirrors one caller
        for rx, tx in ((near, far), (far, near)):
            assert rx["connected"] and rx["duration_s"] >= 9.0, rx
            media = rx["media"]
            # No gap: every packet of the peer's stream arrived, and nearly every 80 ms tick was played as
            # received or skipped by the sender when its CPU fell behind (``overruns``, counted there and
            # concealed here). Skips are timing (0 alone, up to 12 in a full CI run on 2 cores with three
            # calls); the capacity figure belongs to a benchmark. A few frames are concealed while the
            # jitter buffer adapts its target (1-3 here alone, 4 in a full CI run).
            ticks = media["extra"]["frames_primary"] + tx["media"]["extra"]["overruns"]
            assert media["packets_lost"] == 0 and ticks >= 100, (media, tx["media"]["extra"])  # of ~124


def test_batched_calls_carry_audio_both_ways_and_a_later_call_gets_a_fresh_row(largesc: Any, tmp_path: Path,
                                                                               test_weights: Path) -> None:
    """``answer --batch``: the calls' Mimi steps run batched (sip_agent/media/batch.py), audio flows as without."""
    play = tone_wav(tmp_path / "tone.wav", 440, 9.0)
    record = tmp_path / "heard.wav"
    answerer, port = _answerer(largesc, tmp_path, test_weights, 3, record, "--batch")
    first = [_caller(largesc, f"b{i}", port, test_weights, play, 8.0) for i in (1, 2)]
    _wait_connected(first)
    for run in first:
        assert run.finish(timeout=90)[0] == 0, run.text()[-1500:]
    later = _caller(largesc, "b3", port, test_weights, play, 4.0)  # joins rows the first two left
    rc_later, later_report = later.finish(timeout=90)
    rc, report = answerer.finish(timeout=60)
    assert rc == 0 and rc_later == 0 and len(report["calls"]) == 3, report
    for call in report["calls"] + [later_report["calls"][0]]:
        media = call["media"]
        assert call["connected"] and call["codec"] == "LargeSC/24000", call
        assert media["packets_lost"] == 0 and media["extra"]["frames_primary"] >= 30, media
    files = [record, record.with_name("heard-2.wav"), record.with_name("heard-3.wav")]
    assert all(f.exists() and _seconds(f) >= 3.5 for f in files), [(f, f.exists()) for f in files]
