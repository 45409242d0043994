"""SRTP with software nobody here wrote: baresip (srtp module, srtp-mand) calls ``largesc answer`` over TLS.

The standard-codec line is pjsua2's, with its own SRTP under the same
``--srtp`` policy; the keys (SDES) travel over TLS only. What could go wrong:
pjsua2 offering or accepting plain RTP under ``--srtp mandatory``, keys that
do not decrypt (no audio), or the crypto lines pushing the SDP past pjsua2's
limits.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest

from tests.sip_agent.conftest import dominant, free_port, only_call, tone_wav
from tests.sip_agent.sip.baresip_tls import baresip_tls, dial_over_tls
from tests.sip_agent.sip.certs import Pki, pki  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


def test_baresip_srtp_call_over_tls_carries_audio_both_ways(agent, pki: Pki, tmp_path: Path) -> None:
    work = baresip_tls(tmp_path / "baresip", pki, ";mediaenc=srtp-mand", modules=("srtp.so",))
    port, heard, log = free_port(), tmp_path / "heard.wav", tmp_path / "answer.log"
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", "--tls-cert", str(pki.cert),
                     "--tls-key", str(pki.key), "--srtp", "mandatory", "--calls", "1", "--timeout", "30",
                     "--engine", "none", "--duration", "3", "--play", str(tone_wav(tmp_path / "440.wav", 440, 4.0)),
                     "--record", str(heard), "--sip-log", str(log))
    answerer.wait_for("waiting for calls")
    rc, report = dial_over_tls(work, port, answerer)
    text = log.read_text(errors="replace")
    assert rc == 0 and only_call(report)["connected"], answerer.text() + (work / "baresip.out").read_text()[-2000:]
    assert re.search(r"m=audio \d+ RTP/SAVP", text) and "a=crypto:" in text, text[-3000:]  # offer and answer
    assert not re.search(r"m=audio [1-9]\d* RTP/AVP ", text)  # no plain line in use
    freq_us, rms_us = dominant(heard)
    dumps = glob.glob(str(work / "dump-*-dec.wav"))
    assert dumps, (work / "baresip.out").read_text(errors="replace")[-2000:]
    freq_bs, rms_bs = dominant(Path(dumps[0]))
    assert abs(freq_us - 660) < 5 and rms_us > 1000, (freq_us, rms_us)  # baresip's SRTP decrypted here
    assert abs(freq_bs - 440) < 5 and rms_bs > 1000, (freq_bs, rms_bs)  # ours decrypted by baresip
