"""A stranger on the network during a real LargeSC call (issue 14, measured defects 1 and 3).

Before: one RTP packet with a new SSRC, sent from another source port to the
answerer's media port, made the answerer play the stranger's stream and fall
silent for the rest of the call; forged RTCP loss reports doubled its payload.
Here a third program sends 25 valid LargeSC packets (new SSRC, PT 96) and
forged receiver reports claiming 78 % loss, from its own ports, while the
caller plays a tone: the answerer's recording keeps the caller's audio every
second, the stranger's datagrams are counted as refused, and the answerer's
sender never hears the forged loss.
"""

from __future__ import annotations

import re
import socket
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from largesc_codec.wire.payload import Payload, pack
from rtp import packet, rtcp
from rtp.packet import RtpPacket
from tests.sip_agent.conftest import HOST, only_call, tone_wav
from tests.sip_agent.media.test_largesc_engine import largesc  # noqa: F401  (a fixture)
from tests.sip_agent.conftest import free_port

pytestmark = [pytest.mark.sip, pytest.mark.timeout(180)]


def _rms_per_second(path: Path) -> list[float]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    return [float(np.sqrt(np.mean(x[i:i + rate] ** 2))) for i in range(0, len(x) - rate + 1, rate)]


def _inject(port: int, packets: int = 25) -> None:
    """A stranger's stream to the answerer's RTP port and forged reports to its RTCP port (other source ports)."""
    payload = pack(Payload(primary=((7,) * 8,)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp_sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp_sock:
        for n in range(packets):
            rtp_sock.sendto(packet.serialize(RtpPacket(96, 1000 + n, n * 1920, 0x5EED, payload)), (HOST, port))
            if n % 5 == 0:
                forged = rtcp.ReceiverReport(0x5EED, tuple(rtcp.ReportBlock(ssrc, 200, 5000, 0, 0, 0, 0)
                                                           for ssrc in range(1, 32)))
                rtcp_sock.sendto(rtcp.serialize_compound([forged]), (HOST, port + 1))
            time.sleep(0.08)


def test_a_strangers_stream_and_reports_do_not_reach_the_call(largesc: Any, tmp_path: Path,
                                                              test_weights: Path) -> None:
    port, weights = free_port(), str(test_weights)
    heard = tmp_path / "heard.wav"
    answerer = largesc("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "120",
                       "--weights", weights, "--plc", "repeat", "--record", str(heard))
    answerer.wait_for("waiting for calls", timeout=90)
    caller = largesc("call", "call", f"sip:bob@{HOST}:{port}", "--weights", weights, "--plc", "repeat",
                     "--play", str(tone_wav(tmp_path / "a.wav", 440, 8.0)), "--duration", "7")
    answerer.wait_for("we receive on port", timeout=60)
    media_port = int(re.search(r"we receive on port (\d+)", answerer.text())[1])  # type: ignore[index]
    time.sleep(1.5)
    _inject(media_port)
    rc_call, _ = caller.finish(timeout=120)
    rc_answer, report = answerer.finish(timeout=30)
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    extra = only_call(report)["media"]["extra"]
    assert extra["rtp_refused_source"] == 25 and extra["rtcp_refused_source"] == 5, extra
    assert extra.get("peer_loss_fraction", 0.0) < 0.05, extra  # the forged 78 % never reached the sender
    rms = _rms_per_second(heard)
    assert len(rms) >= 6 and min(rms[1:6]) > 100, rms  # the caller's tone, every second, through the injection
