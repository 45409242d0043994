"""A baresip phone over TLS for the tests: its config directory, given the suite's certificates (certs.py)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

from tests.sip_agent.conftest import HOST, AgentRun, free_port, tone_wav, tool
from tests.sip_agent.kamailio import stop
from tests.sip_agent.sip.certs import Pki


def baresip_tls(work: Path, pki: Pki, account: str, modules: tuple[str, ...] = ()) -> Path:
    """Write baresip's config in ``work``: TLS with ``pki``, a 660 Hz tone in, decoded audio dumped.

    ``account``: the accounts line's parameters after the address (``;auth_user=..;mediaenc=..``).
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "tls.pem").write_text(pki.cert.read_text() + pki.key.read_text())  # baresip: certificate + key in one
    rtp = random.randrange(30000, 59000, 100)
    extra = "".join(f"module {m}\n" for m in modules)  # before account.so, which looks them up
    (work / "config").write_text(
        f"sip_listen {HOST}:{free_port()}\nnet_interface {HOST}\nmodule_path /usr/lib/baresip/modules\n"
        f"module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n{extra}module account.so\n"
        f"module menu.so\naudio_source aufile,{tone_wav(work / '660.wav', 660, 6.0, rate=8000)}\n"
        f"audio_player alsa,null\naudio_alert alsa,null\nsnd_path {work}\nrtp_ports {rtp}-{rtp + 99}\n"
        f"sip_certificate {work / 'tls.pem'}\nsip_cafile {pki.ca}\n")
    (work / "accounts").write_text(f"<sip:alice@{HOST};transport=tls>{account};regint=0\n")
    return work


def dial_over_tls(work: Path, port: int, answerer: AgentRun) -> tuple[int, dict[str, Any]]:
    """baresip (config in ``work``) dials bob at 127.0.0.1:``port`` over TLS; the answerer's exit code and report."""
    with open(work / "baresip.out", "wb") as out:
        baresip = subprocess.Popen([tool("baresip"), "-f", str(work), "-t", "8", "-e",
                                    f"/dial bob@{HOST}:{port};transport=tls"], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=work)
        try:
            return answerer.finish()
        finally:
            stop(baresip)
