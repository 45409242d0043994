"""A kamailio registrar/proxy for the tests (kamailio is installed by `make setup-test`).

One user (``alice`` unless told), with the static digest password ``PASSWORD``; REGISTER is
challenged, other requests are relayed to what ``location`` holds (404 if none).
"""

from __future__ import annotations

import glob
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.sip_agent.conftest import HOST, free_port, tool

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{host}:{port}"
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (has_totag()) {{ t_relay(); exit; }}
    if (is_method("REGISTER")) {{
        # one user, static password: the auth module's pv_auth_check needs no database
        if ($fU == "{user}") {{ $var(pw) = "{password}"; }} else {{ $var(pw) = ""; }}
        if ($var(pw) == "" || !pv_auth_check("$fd", "$var(pw)", "0", "1")) {{
            auth_challenge("$fd", "0");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""
PASSWORD = "alice-secret"


def stop(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def module_dir() -> Path:
    """Where kamailio's modules are installed (fails with the fix when they are not)."""
    modules = sorted(glob.glob("/usr/lib/*/kamailio/modules/auth.so") + glob.glob("/usr/lib/kamailio/modules/auth.so"))
    if not modules:
        pytest.fail("kamailio's modules (auth.so) not found under /usr/lib: `make setup-test` installs kamailio")
    return Path(modules[0]).parent


@contextmanager
def kamailio_with(work: Path, config: str, port: int) -> Iterator[int]:
    """Run kamailio with ``config`` (listening on ``port``) and its state in ``work``; yields ``port``."""
    binary = tool("kamailio")
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "kamailio.cfg"
    cfg.write_text(config)
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr.decode(errors="replace")[-2000:]
    with open(work / "kamailio.out", "wb") as out:
        proc = subprocess.Popen([binary, "-f", str(cfg), "-DD", "-E", "-Y", str(work), "-P", str(work / "pid"),
                                 "-m", "32", "-M", "8"], stdout=out, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 15
        while b"INFO: <core>" not in (work / "kamailio.out").read_bytes() or _bindable(port):
            assert proc.poll() is None and time.monotonic() < end, (work / "kamailio.out").read_text()[-2000:]
            time.sleep(0.1)
        yield port
    finally:
        stop(proc)


@contextmanager
def running_kamailio(work: Path, user: str = "alice") -> Iterator[int]:
    """The registrar/proxy of the module doc on 127.0.0.1, ``user`` its one user; yields its SIP port."""
    port = free_port()
    config = KAMAILIO_CFG.format(host=HOST, port=port, password=PASSWORD, user=user, modules=module_dir())
    with kamailio_with(work, config, port):
        yield port


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A running kamailio for the module's tests; yields its port."""
    with running_kamailio(tmp_path_factory.mktemp("kamailio")) as port:
        yield port
