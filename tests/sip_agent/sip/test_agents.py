"""Two LargeSC agents, each in its own process, calling each other on 127.0.0.1.

What could go wrong and is checked here: pjsua2 refusing or aborting on the
extra m= line, LargeSC not being detected in the answer, frames flowing only
one way, the fallback codec not carrying audio, and calls to nowhere hanging
instead of failing with a clear message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.sip_agent.conftest import HOST, dominant, free_port, only_call, tone_wav

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]
STANDARD = ("PCMU/8000", "PCMA/8000", "G722/16000")


def _sip_messages(log: Path, first_line: str) -> list[str]:
    """Whole SIP messages in a pjsip log whose first line starts with ``first_line``."""
    text = log.read_text(errors="replace")
    return [m for m in re.findall(r":\n(.*?)\n--end msg--", text, flags=re.S) if m.startswith(first_line)]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_two_largesc_agents_negotiate_largesc_and_exchange_frames(agent, tmp_path: Path, transport: str) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "raw",
                     "--maxcodebooks", "4", "--maxbps", "1100", "--sip-log", str(tmp_path / "answer.log"))
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port};transport={transport}", "--engine", "raw",
                   "--duration", "2.5", "--sip-log", str(tmp_path / "call.log"))
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    out, inc = only_call(call_report), only_call(answer_report)
    for side in (out, inc):
        assert side["connected"] and side["codec"] == "LargeSC/24000"
        media = side["media"]
        assert media["packets_sent"] >= 20  # 2.5 s at one packet per 80 ms
        assert media["packets_received"] >= 20, media  # both directions carried frames
        assert media["extra"]["bad_payloads"] == 0
    # each side sends within what the other declared: the answerer accepts 1100 bit/s, so the caller sends less
    assert out["bitrate_bps"] == 1100 and out["media"]["extra"]["payload_bytes"] == 11
    assert inc["bitrate_bps"] == 2062.5 and inc["media"]["extra"]["payload_bytes"] == 20  # the caller's default
    ok = _sip_messages(tmp_path / "call.log", "SIP/2.0 200 OK")[0]
    assert re.search(r"m=audio [1-9]\d* RTP/AVP \d+\r?\nc=IN IP4 127\.0\.0\.1\r?\na=rtpmap:\d+ LargeSC/24000/1", ok), ok
    assert "a=inactive" in ok  # pjsua2's own stream idles while LargeSC carries the call


def test_fallback_codec_carries_audio_both_ways(agent, tmp_path: Path) -> None:
    port = free_port()
    play_a, play_c = tone_wav(tmp_path / "660.wav", 660, 3.0), tone_wav(tmp_path / "440.wav", 440, 3.0)
    rec_a, rec_c = tmp_path / "rec_answer.wav", tmp_path / "rec_call.wav"
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "none",
                     "--play", str(play_a), "--record", str(rec_a))
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--play", str(play_c),
                   "--record", str(rec_c), "--duration", "2.5", "--sip-log", str(tmp_path / "call.log"))
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    assert only_call(call_report)["codec"] in STANDARD and only_call(answer_report)["codec"] in STANDARD
    assert only_call(call_report)["media"]["packets_received"] > 50
    freq_a, rms_a = dominant(rec_a)
    freq_c, rms_c = dominant(rec_c)
    assert abs(freq_a - 440) < 5 and rms_a > 1000, (freq_a, rms_a)  # the caller's tone reached the answerer
    assert abs(freq_c - 660) < 5 and rms_c > 1000, (freq_c, rms_c)  # and the answerer's the caller
    ok = _sip_messages(tmp_path / "call.log", "SIP/2.0 200 OK")[0]
    assert re.search(r"m=audio 0 RTP/AVP", ok), ok  # pjsua2 without LargeSC rejects the dedicated line


def test_call_to_a_dead_udp_address_fails_clearly_and_quickly(agent) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    rc, report = agent("call", "call", f"sip:nobody@{HOST}:{port}", "--engine", "raw",
                       "--answer-timeout", "2").finish(timeout=20)
    elapsed = time.monotonic() - started
    call = only_call(report)
    assert rc == 1 and not call["connected"]
    assert "no SIP response within 2 s" in call["message"] and "is the peer running" in call["message"]
    assert elapsed < 10, elapsed


def test_call_to_a_dead_tcp_address_reports_the_transport_error(agent) -> None:
    port = free_port()
    rc, report = agent("call", "call", f"sip:nobody@{HOST}:{port};transport=tcp", "--engine", "raw",
                       "--answer-timeout", "5").finish(timeout=20)
    call = only_call(report)
    assert rc == 1 and call["status_code"] == 503
    assert "Connection refused" in call["message"] and "transport" in call["message"]


def test_bad_play_file_is_reported_before_anything_starts(agent, tmp_path: Path) -> None:
    rc, report = agent("call", "call", f"sip:bob@{HOST}:5060", "--play", str(tmp_path / "missing.wav")).finish()
    assert rc == 2 and "missing.wav: no such file" in report["error"]


def test_sigterm_during_a_call_hangs_up_cleanly(agent) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--duration", "60")
    caller.wait_for("call state: CONFIRMED")
    caller.proc.terminate()
    rc_call, call_report = caller.finish(timeout=15)
    rc_answer, answer_report = answerer.finish(timeout=15)
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()  # not 134 (abort) or -15
    assert "we hung up: interrupted" in only_call(call_report)["message"]
    assert "the peer hung up" in only_call(answer_report)["message"]
    assert "Assertion" not in caller.text() + answerer.text()


@pytest.mark.parametrize("name, rate, channels", [("660.flac", 44_100, 2), ("660.mp3", 22_050, 1)])
def test_any_audio_file_plays_over_a_standard_codec(agent, tmp_path: Path, name: str, rate: int,
                                                    channels: int) -> None:
    from tests.audio_files import write_tone

    port, heard = free_port(), tmp_path / "heard.wav"
    play = write_tone(tmp_path / name, 3.0, rate, channels, freq=660.0)  # pjmedia itself plays only 16-bit WAV
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "none",
                     "--play", str(play))
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "none", "--record", str(heard),
                   "--duration", "2")
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    assert only_call(answer_report)["codec"] in STANDARD and only_call(answer_report)["error"] is None
    freq, rms = dominant(heard)
    assert abs(freq - 660) < 5 and rms > 1000, (freq, rms)


def test_sound_device_without_an_audio_device_names_the_device(agent, tmp_path: Path) -> None:
    import subprocess
    import sys

    count = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(len(sd.query_devices()))"],
                           capture_output=True, text=True, timeout=30)
    if count.stdout.strip().splitlines()[-1] != "0":
        pytest.skip(f"this machine has audio devices ({count.stdout.strip()})")
    for argv in (["call", f"sip:bob@{HOST}:{free_port()}"], ["answer", "--port", str(free_port()), "--timeout", "5"]):
        rc, report = agent(argv[0], *argv, "--engine", "none", "--sound-device").finish()
        assert rc == 2 and report["calls"] == [], report
        assert report["error"].startswith("--sound-device default: no default device: PortAudio sees none"), report
        assert "SIP URI" not in report["error"] and "start an audio server" in report["error"]
