"""The gateway's bridge port on a real pjsua2 conference bridge: tones cross it at the right pitch,
and release() takes it off the bridge at once.

pjsua2 allows one library per process, so the bridge runs in a child process
(the script below) and reports what it measured as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sip_agent.conftest import REPO, dominant, free_port, tone_wav

pytestmark = pytest.mark.sip

SCRIPT = r"""
import json, sys, time
import numpy as np
import pjsua2 as pj
from sip_agent.media.pipe import PcmPipe
from sip_agent.sip.endpoint import AgentEndpoint, EndpointConfig
from sip_agent.sip.pcm_port import PipePort

tone16k, recording, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ep = AgentEndpoint(EndpointConfig(host="127.0.0.1", sip_port=port, transports=("udp",)))
send, heard = PcmPipe(prefill=0, capacity=24000 * 3), PcmPipe(prefill=24000 * 2 - 480, capacity=24000 * 3)
t = np.arange(24000 * 2) / 24000
heard.push((0.3 * np.sin(2 * np.pi * 660 * t)).astype(np.float32))  # what the LargeSC leg would play
bridge = PipePort(send, heard)
player, recorder = pj.AudioMediaPlayer(), pj.AudioMediaRecorder()
player.createPlayer(tone16k, pj.PJMEDIA_FILE_NO_LOOP)
recorder.createRecorder(recording)
problems = bridge.connect(recorder)          # bridge -> recorder (and recorder -> bridge: nothing)
player.startTransmit(bridge)                 # the phone's 16 kHz audio -> bridge -> send pipe
end = time.monotonic() + 1.5
while time.monotonic() < end:
    ep.poll(20)
got = send.pull(send.stats().level)
spectrum = np.abs(np.fft.rfft(got))
freq = float(np.fft.rfftfreq(len(got), 1 / 24000)[spectrum.argmax()]) if len(got) else 0.0
before = (bridge.frames_in, bridge.frames_out)
bridge.release()                             # off the bridge now, not when the collector gets to it
end = time.monotonic() + 0.3
while time.monotonic() < end:
    ep.poll(20)
print(json.dumps({"after_release": [bridge.frames_in - before[0], bridge.frames_out - before[1]],
                  "reconnect": bridge.connect(recorder), "problems": problems, "freq": freq, "rms": float(np.sqrt(np.mean(got ** 2))) if len(got) else 0.0,
                  "samples": len(got), "frames_in": bridge.frames_in, "frames_out": bridge.frames_out,
                  "error": bridge.error}))
del player, recorder, bridge
ep.destroy()
"""


def test_bridge_port_carries_both_directions_at_24_khz(tmp_path: Path) -> None:
    tone = tone_wav(tmp_path / "440.wav", 440, 2.0, rate=16000)
    recording = tmp_path / "heard.wav"
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tone), str(recording), str(free_port())], cwd=REPO,
                         capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(next(ln for ln in reversed(run.stdout.splitlines()) if ln.startswith("{")))
    assert got["problems"] == [] and got["error"] is None, got
    # 1.5 s of 20 ms blocks each way (the bridge's clock), resampled 16 kHz -> 24 kHz by pjmedia.
    assert got["frames_in"] >= 60 and got["frames_out"] >= 60, got
    assert got["after_release"] == [0, 0] and got["reconnect"], got  # released: no callback, no second use
    assert abs(got["freq"] - 440) < 3 and got["rms"] > 0.1, got  # the phone's tone, at its pitch
    freq, rms = dominant(recording)
    assert abs(freq - 660) < 3 and rms > 3000, (freq, rms)  # the LargeSC leg's tone reached the phone side
