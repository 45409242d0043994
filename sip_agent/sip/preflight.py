"""Checks of the ``call`` / ``answer`` / ``register`` options that cost next to nothing.

They run before models load and before pjsua2 starts, so a bad option fails in
a moment with one line naming it and the fix (exit 2), not after a minute of
model loading or as a pjsip error. ``--play`` goes through the same audio
check as every other command (``largesc_codec.neural.audio_stream``); the SIP
port is bound and released once on ``--bind`` for each transport, the way
pjsip binds it (TCP and TLS with SO_REUSEADDR, UDP without; TLS on the port
``tls.tls_port`` gives).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from largesc_codec.neural.audio_stream import audio_seconds
from sip_agent.sip.tls import tls_port

__all__ = ["TRANSPORTS", "check_port", "check_record", "play_seconds", "transports"]

TRANSPORTS = ("udp", "tcp", "tls")


def transports(text: str) -> tuple[str, ...]:
    """The ``--transport`` names (any of ``udp``, ``tcp``, ``tls``, comma-separated); ValueError with the fix."""
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    if not names or any(n not in TRANSPORTS for n in names) or len(set(names)) < len(names):
        raise ValueError(f"--transport {text!r}: give udp, tcp or udp,tcp, tls, or a list such as udp,tcp,tls")
    return names


def play_seconds(path: Path | None) -> float | None:
    """Length of the ``--play`` file (any format PyAV reads); None without one; ValueError naming the problem."""
    return None if path is None else audio_seconds(path, "--play")


def check_record(path: Path | None) -> None:
    """``--record`` must name a file, not a directory."""
    if path is not None and Path(path).is_dir():
        raise ValueError(f"--record {path} is a directory: give a WAV file name (e.g. {Path(path) / 'heard.wav'})")


def check_port(host: str, port: int, flag: str, names: tuple[str, ...]) -> None:
    """Bind ``host``:``port`` once per transport and release it; ValueError naming ``--bind`` or ``flag``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for name in names:
        kind = socket.SOCK_DGRAM if name == "udp" else socket.SOCK_STREAM
        where = tls_port(port, names) if name == "tls" and port else port
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pjsip's TCP listener
            try:
                sock.bind((host, where))
            except OSError as exc:
                raise ValueError(_bind_problem(host, port, where, flag, name, exc)) from None


def _bind_problem(host: str, port: int, where: int, flag: str, name: str, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"--bind {host}: not an IP address of this machine; give one of its addresses, e.g. 127.0.0.1"
    if exc.errno == errno.EADDRINUSE:
        return (f"{flag} {port}: {name.upper()} port {where} on {host} is in use (another agent running?); "
                f"stop that program or give another {flag}")
    return (f"cannot listen on {host}:{where} over {name.upper()} ({exc.strerror or exc}); "
            f"give another {flag} (ports below 1024 need root) or --bind")
