"""Live audio: calls whose microphone and speaker are a sound card on a real JACK server.

The card is JACK's dummy driver (tests/sip_agent/media/jack.py); the agent
reaches it through PortAudio exactly as it reaches a real card. A JACK test
client plays a tone into the agent's input port and records its output
port; the peer is another ``largesc answer`` with WAV files.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests.sip_agent.conftest import HOST, dominant, free_port, tone_wav
from tests.sip_agent.media.jack import RATE, JackServer, Tap, dominant_hz, tone
from tests.sip_agent.media.test_largesc_engine import largesc  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(240)]


@pytest.fixture
def jack_server() -> Iterator[JackServer]:
    server = JackServer()
    yield server
    server.stop()


def _call(largesc: Any, server: JackServer, tmp_path: Path, seconds: float, *codec: str) -> tuple[Any, Any, Tap]:
    """``answer`` plays 660 Hz and records; ``call --sound-device`` talks through the card, the tap plays 440 Hz."""
    port = free_port()
    answerer = largesc("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "120", *codec,
                       "--play", str(tone_wav(tmp_path / "660.wav", 660, seconds + 4)),
                       "--record", str(tmp_path / "peer-heard.wav"))
    answerer.wait_for("waiting for calls", timeout=90)
    tap = Tap(server, tone(440))
    caller = largesc("caller", "call", f"sip:bob@{HOST}:{port}", "--sound-device", "--duration", f"{seconds:g}",
                     *codec, env=server.env)
    tap.attach()
    return answerer, caller, tap


def test_a_standard_call_carries_the_microphone_to_the_peer_and_the_peer_to_the_speaker(
        largesc: Any, jack_server: JackServer, tmp_path: Path) -> None:
    answerer, caller, tap = _call(largesc, jack_server, tmp_path, 5.0, "--engine", "none")
    rc, report = caller.finish(timeout=90)
    heard = tap.heard()
    tap.close()
    assert rc == 0, caller.text()[-2000:]
    assert answerer.finish(timeout=30)[0] == 0, answerer.text()[-2000:]
    call = report["calls"][0]
    assert call["codec"] in ("G722/16000", "PCMU/8000", "PCMA/8000"), call
    # The tap's 440 Hz went card -> 24 kHz pipe -> bridge -> G.722/G.711 -> the peer's recording ...
    freq, rms = dominant(tmp_path / "peer-heard.wav")
    assert abs(freq - 440) < 5 and rms > 1000, (freq, rms)
    # ... and the peer's 660 Hz came back to the card's output, at the card's 48 kHz.
    steady = heard[RATE : RATE * 4]
    assert len(steady) == 3 * RATE and abs(dominant_hz(steady) - 660) < 3, (len(heard), dominant_hz(steady))
    assert float(np.sqrt(np.mean(steady**2))) > 0.05, float(np.sqrt(np.mean(steady**2)))
    card = report["sound_device"]
    assert card["error"] is None and card["device"] == "system" and card["rate"] == RATE, card


def test_a_largesc_call_encodes_the_microphone_and_plays_the_decoder_on_the_speaker(
        largesc: Any, jack_server: JackServer, tmp_path: Path, test_weights: Path) -> None:
    codec = ("--weights", str(test_weights), "--plc", "repeat")
    answerer, caller, tap = _call(largesc, jack_server, tmp_path, 6.0, *codec)
    rc, report = caller.finish(timeout=120)
    heard = tap.heard()
    tap.close()
    assert rc == 0, caller.text()[-2000:]
    rc_answer, peer = answerer.finish(timeout=30)
    assert rc_answer == 0, answerer.text()[-2000:]
    ours, theirs = report["calls"][0], peer["calls"][0]
    assert ours["codec"] == theirs["codec"] == "LargeSC/24000", ours
    # The test weights are untrained (their audio is not speech), so what proves the path is:
    # the tone reached the encoder (the controller sends more than the 1 codebook it sends for
    # silence: 1 in a call with a silent microphone), and every frame the peer got was primary ...
    assert ours["media"]["extra"]["mean_codebooks_sent"] > 1.5, ours["media"]
    assert theirs["media"]["packets_lost"] == 0 and theirs["media"]["extra"]["frames_primary"] >= 60, theirs
    with wave.open(str(tmp_path / "peer-heard.wav")) as w:
        assert w.getnframes() / w.getframerate() > 5.0
    # ... and the decoder's output reached the card's output port for the whole call.
    steady = heard[RATE : RATE * 5]
    blocks = steady[: len(steady) // 4800 * 4800].reshape(-1, 4800)  # 100 ms
    assert len(blocks) == 40 and (np.sqrt(np.mean(blocks**2, axis=1)) > 1e-3).all(), len(blocks)
    card = report["sound_device"]
    assert card["error"] is None and card["speaker_wait_ms"] < 160 and card["mic_wait_ms"] < 160, card


def test_sound_device_names_the_problem_before_the_call(largesc: Any, jack_server: JackServer) -> None:
    for argv, problem in ((["--sound-device", "no-such-card"], "--sound-device no-such-card: "),
                          (["--sound-device", "--play", "x.wav"], "--sound-device carries the call's audio")):
        run = largesc("bad", "call", f"sip:bob@{HOST}:{free_port()}", "--engine", "none", *argv,
                      env=jack_server.env)
        rc, report = run.finish(timeout=60)
        assert rc == 2 and report["error"].startswith(problem), report
        assert "largesc devices" in report["error"] or "--play" in report["error"], report
