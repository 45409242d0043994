"""The agent against SIP software nobody here wrote: sipp, kamailio and baresip (requirements/apt-test.txt).

All peers run on 127.0.0.1 with ports picked at run time; each is started by
the test and stopped by its own process handle.
"""

from __future__ import annotations

import glob
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.sip_agent.conftest import HOST, dominant, free_port, only_call, tone_wav, tool
from tests.sip_agent.kamailio import PASSWORD, kamailio  # noqa: F401  (a fixture)
from tests.sip_agent.kamailio import stop as _stop

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]
STANDARD = ("PCMU/8000", "PCMA/8000", "G722/16000")


# -- sipp ----------------------------------------------------------------------
def _sipp(*args: str, port: int) -> list[str]:
    media = free_port(tcp=False)
    return [tool("sipp"), *args, "-i", HOST, "-p", str(port), "-mp", str(media), "-m", "1", "-nostdin",
            "-timeout", "30s", "-timeout_error"]


def test_call_to_sipp_uas(agent, tmp_path: Path) -> None:
    port = free_port()
    with open(tmp_path / "sipp.out", "wb") as out:
        sipp = subprocess.Popen(_sipp("-sn", "uas", port=port), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        time.sleep(0.5)
        rc, report = agent("call", "call", f"sip:service@{HOST}:{port}", "--engine", "raw", "--duration", "1.5").finish()
        call = only_call(report)
        assert rc == 0 and call["connected"] and call["codec"] in STANDARD, report  # sipp knows PCMU only
        assert sipp.wait(30) == 0, (tmp_path / "sipp.out").read_text(errors="replace")[-2000:]
    finally:
        _stop(sipp)


def test_call_from_sipp_uac(agent, tmp_path: Path) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "30", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    sipp = subprocess.run(_sipp("-sn", "uac", f"{HOST}:{port}", "-s", "bob", "-d", "1000", port=free_port()),
                          capture_output=True, cwd=tmp_path, timeout=60)
    assert sipp.returncode == 0, sipp.stdout.decode(errors="replace")[-2000:]
    rc, report = answerer.finish()
    call = only_call(report)
    assert rc == 0 and call["connected"] and call["codec"] in STANDARD and not call["outgoing"]


# -- kamailio -------------------------------------------------------------------
def test_registration_with_digest_auth(agent, kamailio: int) -> None:
    rc, report = agent("reg", "register", "--registrar", f"sip:{HOST}:{kamailio}", "--user", "alice",
                       "--password", PASSWORD).finish()
    assert rc == 0 and report["registration"]["registered"] and report["registration"]["code"] == 200, report


def test_wrong_password_fails_with_a_clear_message(agent, kamailio: int) -> None:
    run = agent("reg", "register", "--registrar", f"sip:{HOST}:{kamailio}", "--user", "alice", "--password", "nope")
    rc, report = run.finish()
    reg = report["registration"]
    assert rc == 1 and not reg["registered"] and reg["code"] in (401, 403), report
    assert "failed" in reg["message"] and "check the user name and password" in reg["message"]
    assert "check the user name and password" in run.text()


def test_call_through_kamailio_to_a_registered_largesc_agent(agent, kamailio: int) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "raw",
                     "--registrar", f"sip:{HOST}:{kamailio}", "--user", "alice", "--password", PASSWORD)
    answerer.wait_for("waiting for calls")
    rc, report = agent("call", "call", f"sip:alice@{HOST}:{kamailio}", "--engine", "raw", "--duration", "2").finish()
    assert rc == 0 and only_call(report)["codec"] == "LargeSC/24000", report
    rc, report = answerer.finish()
    call = only_call(report)
    assert rc == 0 and call["codec"] == "LargeSC/24000" and call["media"]["packets_received"] >= 15


# -- baresip --------------------------------------------------------------------
def _baresip(work: Path, play: Path) -> tuple[list[str], int]:
    """A headless baresip config in ``work``: auto-answer, WAV source, decoded audio dumped by sndfile."""
    port, rtp = free_port(), random.randrange(30000, 59000, 100)
    (work / "config").write_text(
        f"sip_listen {HOST}:{port}\nnet_interface {HOST}\nmodule_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\nmodule account.so\nmodule menu.so\n"
        f"audio_source aufile,{play}\naudio_player alsa,null\naudio_alert alsa,null\nsnd_path {work}\n"
        f"rtp_ports {rtp}-{rtp + 99}\n"
    )
    (work / "accounts").write_text(f"<sip:bs@{HOST}>;regint=0;answermode=auto\n")
    return [tool("baresip"), "-f", str(work)], port


def _baresip_heard(work: Path) -> Path:
    """The WAV baresip decoded from us (its sndfile module writes dump-<time>-dec.wav)."""
    found = glob.glob(str(work / "dump-*-dec.wav"))
    assert found, f"baresip wrote no decoded audio dump in {work}: " + (work / "baresip.out").read_text()[-2000:]
    return Path(found[0])


@pytest.mark.parametrize("direction", ["agent_calls_baresip", "baresip_calls_agent"])
def test_standard_codec_call_with_baresip_carries_audio_both_ways(agent, tmp_path: Path, direction: str) -> None:
    work = tmp_path / "baresip"
    work.mkdir()
    ours, rec = tone_wav(tmp_path / "440.wav", 440, 4.0), tmp_path / "heard.wav"
    cmd, bs_port = _baresip(work, tone_wav(work / "660.wav", 660, 6.0, rate=8000))  # aufile wants the codec's rate
    common = ("--engine", "raw", "--play", str(ours), "--record", str(rec), "--duration", "3")
    out = open(work / "baresip.out", "wb")
    baresip: subprocess.Popen[bytes] | None = None
    try:
        if direction == "agent_calls_baresip":
            baresip = subprocess.Popen([*cmd, "-t", "10"], stdout=out, stderr=subprocess.STDOUT, cwd=work)
            time.sleep(1.0)
            rc, report = agent("call", "call", f"sip:bs@{HOST}:{bs_port}", *common).finish()
        else:
            port = free_port()
            answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "30", *common)
            answerer.wait_for("waiting for calls")
            baresip = subprocess.Popen([*cmd, "-t", "8", "-e", f"/dial sip:bob@{HOST}:{port}"], stdout=out,
                                       stderr=subprocess.STDOUT, cwd=work)
            rc, report = answerer.finish()
    finally:  # our call is over (BYE answered), so baresip has closed its dump files
        if baresip is not None:
            _stop(baresip)
        out.close()
    call = only_call(report)
    assert rc == 0 and call["connected"] and call["codec"] in STANDARD, report
    freq_us, rms_us = dominant(rec)
    freq_bs, rms_bs = dominant(_baresip_heard(work))
    assert abs(freq_us - 660) < 5 and rms_us > 1000, (freq_us, rms_us)  # baresip's tone reached us
    assert abs(freq_bs - 440) < 5 and rms_bs > 1000, (freq_bs, rms_bs)  # ours reached baresip
