"""The two RTP example scripts as a user runs them: two processes on 127.0.0.1.

What could go wrong and is checked here: the receiver giving up before a
slow sender (a LargeSC sender loads its models first) sends anything, the
audio written not being the audio sent (wrong placement, byte order,
mu-law tables), packets or frames lost between the processes, and the
receiver hanging when nothing comes at all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]
SEND, RECV = REPO / "examples" / "rtp_stream_send.py", REPO / "examples" / "rtp_stream_recv.py"
SECONDS = 3.0
PACKETS = 38  # ceil(3.0 s / 80 ms)


class Script:
    """One example process; its output is collected by a thread so it never blocks on a full pipe."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.text)
            if m is not None:
                return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"{pattern!r} not printed within {timeout} s; output:\n{self.text}")

    def finish(self, timeout: float) -> str:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running after {timeout} s; output:\n{self.text}")
        self._reader.join(5)
        assert rc == 0, self.text
        return self.text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def scripts():  # type: ignore[no-untyped-def]
    started: list[Script] = []

    def start(*args: str) -> Script:
        started.append(Script(*args))
        return started[-1]

    yield start
    for s in started:  # only our own children, by handle
        s.kill()


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64), w.getframerate()


def _counts(pattern: str, text: str) -> tuple[int, ...]:
    m = re.search(pattern, text)
    assert m is not None, f"{pattern!r} not in:\n{text}"
    return tuple(int(g) for g in m.groups())


def _stream(scripts, tmp_path: Path, speech: Path, *codec: str, sender_delay_s: float = 0.0):  # type: ignore[no-untyped-def]
    out = tmp_path / "received.wav"
    recv = scripts(str(RECV), "--port", "0", "--out", str(out), "--rtcp-min-s", "0.5", "--timeout-s", "1.5", *codec)
    port = recv.wait_for(r"listening on 127\.0\.0\.1:(\d+)", timeout=120).group(1)
    time.sleep(sender_delay_s)  # longer than --timeout-s: the idle limit starts with the first datagram
    send = scripts(str(SEND), str(speech), "--to", f"127.0.0.1:{port}", "--limit-s", str(SECONDS),
                   "--rtcp-min-s", "0.5", *codec)
    sent = send.finish(timeout=120)
    received = recv.finish(timeout=30)
    return out, sent, received


def test_pcmu_stream_writes_the_audio_that_was_sent(scripts, tmp_path: Path, speech_file: Path) -> None:
    out, sent, received = _stream(scripts, tmp_path, speech_file, sender_delay_s=2.5)
    assert _counts(r"sent (\d+) RTP", sent) == (PACKETS,)
    assert _counts(r"received (\d+) RTP, \d+ RTCP, (\d+) malformed", received) == (PACKETS, 0)
    assert "BYE" in received and re.search(r"lost 0 of", received), received
    got, rate = _read_wav(out)
    source, source_rate = _read_wav(speech_file)
    assert rate == 8000
    reference = resample_poly(source[: int(SECONDS * source_rate)], rate, source_rate)
    n = min(len(reference), len(got))
    assert n >= int(SECONDS * rate) - 1
    corr = np.corrcoef(reference[:n], got[:n])[0, 1]
    assert corr > 0.99, f"received audio correlates {corr:.4f} with the input"


def test_largesc_stream_delivers_every_frame(scripts, tmp_path: Path, speech_file: Path, test_weights: Path) -> None:
    codec = ("--codec", "largesc", "--weights", str(test_weights))
    out, sent, received = _stream(scripts, tmp_path, speech_file, *codec)
    rtp_sent, = _counts(r"sent (\d+) RTP", sent)
    empty, late = _counts(r"encoder: (\d+) slots sent empty \(not encoded in time\), (\d+) late", sent)
    assert rtp_sent + late == PACKETS and empty >= late, sent  # every frame of the file was encoded
    assert _counts(r"received (\d+) RTP, \d+ RTCP, (\d+) malformed", received) == (rtp_sent, 0)
    primary, skipped, late = _counts(r"LargeSC receiver: .*primary (\d+); jitter buffer: (\d+) frames skipped "
                                     r"\(delay shrunk\), (\d+) packets late", received)
    # one 80 ms frame per packet: each decoded, or dropped by the jitter buffer to shrink its delay
    # (a loaded CPU's timing; it may also skip concealment after the stream, hence <=)
    assert primary + late <= rtp_sent <= primary + skipped + late and primary >= rtp_sent - 5, received
    got, rate = _read_wav(out)
    assert rate == 24_000
    # from the first played frame to the last received one (trailing concealment after BYE trimmed)
    assert rtp_sent * 1920 <= len(got) <= (PACKETS + 10) * 1920
    assert np.sqrt(np.mean(got**2)) > 0


def test_receiver_gives_up_when_nothing_arrives(scripts, tmp_path: Path) -> None:
    out = tmp_path / "nothing.wav"
    started = time.monotonic()
    text = scripts(str(RECV), "--port", "0", "--out", str(out), "--first-timeout-s", "1").finish(timeout=30)
    assert "received 0 RTP" in text and "timeout; wrote 0.00 s" in text
    assert time.monotonic() - started < 25


@pytest.mark.parametrize(("script", "args", "problem"), [
    (RECV, ["--out", "/nonexistent-dir/x.wav"], "its directory does not exist"),
    (RECV, ["--port", "5005"], "give an even port"),
    (SEND, ["/nonexistent.wav", "--to", "127.0.0.1:5004"], "no such file"),
    (SEND, ["{speech}", "--to", "5004"], "HOST:PORT"),
])
def test_bad_options_fail_at_once_with_the_fix(speech_file: Path, script: Path, args: list[str], problem: str) -> None:
    argv = [a.replace("{speech}", str(speech_file)) for a in args]
    done = subprocess.run([sys.executable, str(script), *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and problem in done.stderr and "Traceback" not in done.stderr, done.stderr
