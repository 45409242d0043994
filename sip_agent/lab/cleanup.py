"""Names, ownership and clean-up of lab resources, including leftovers of crashed runs.

Theory of operation
-------------------
Every lab gets a random id; everything it makes carries the id behind the
prefix ``lsclab``: namespaces ``lsclab-ID-ROLE``, TAP links ``lsclabIDc`` /
``lsclabIDe``, the state directory ``$TMPDIR/lsclab-ID`` (with an ``owner`` file
naming the creating process and its start time) and the user-mode-linux
process (``umid=lsclab-ID`` on its command line). From those marks alone,
:func:`cleanup_lab` removes one lab and :func:`cleanup_stale` removes every lab
whose owner process is gone, leaving labs of live parallel runs alone.

Three layers make tear-down happen: the lab's own ``close()`` (``with`` exit,
SIGINT/SIGTERM turned into exceptions, ``atexit``); a watchdog process per lab
that holds the read end of a pipe and runs :func:`cleanup_lab` when the owner
dies without closing it (even SIGKILL); and :func:`cleanup_stale` at the start
of the next lab for anything that escaped both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sip_agent.lab import ns as netem_ns

__all__ = ["PREFIX", "new_lab_id", "state_dir", "ns_name", "tap_name", "claim", "owner_alive",
           "uml_pids", "kill_pids", "cleanup_lab", "cleanup_stale", "start_watchdog"]

PREFIX = "lsclab"
ROLES = ("caller", "callee", "router", "probe")


def new_lab_id() -> str:
    return secrets.token_hex(3)


def state_dir(lab_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{PREFIX}-{lab_id}"


def ns_name(lab_id: str, role: str) -> str:
    return f"{PREFIX}-{lab_id}-{role}"


def tap_name(lab_id: str, role: str) -> str:
    """Host-side TAP name (15 characters at most): ``lsclabID`` + c(aller) / e (callee)."""
    return f"{PREFIX}{lab_id}{'c' if role == 'caller' else 'e'}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def claim(lab_id: str) -> Path:
    """Create the lab's state directory (FileExistsError if the id is taken) and sign it."""
    path = state_dir(lab_id)
    path.mkdir(mode=0o700)
    (path / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    return path


def owner_alive(lab_id: str) -> bool:
    """Whether the process that made the lab still runs (pid and start time both match)."""
    try:
        pid, started = (state_dir(lab_id) / "owner").read_text().split()
    except (OSError, ValueError):
        try:  # a directory just made, owner file not yet written: a lab being born
            return time.time() - state_dir(lab_id).stat().st_mtime < 30.0
        except OSError:
            return False
    return _start_time(int(pid)) == started


def uml_pids(lab_id: str | None = None) -> list[int]:
    """Live (non-zombie) user-mode-linux processes of one lab, or of all labs."""
    mark = f"umid={PREFIX}-{lab_id}" if lab_id else f"umid={PREFIX}-"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.decode(errors="replace").startswith(mark) for a in argv):
            if netem_ns._alive(int(entry)):
                found.append(int(entry))
    return found


def kill_pids(pids: list[int], timeout: float = 5.0) -> None:
    """SIGKILL the processes and their process groups; wait until none is alive."""
    for pid in pids:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + timeout
    while any(netem_ns._alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _lab_ids() -> set[str]:
    ids = {n.split("-")[1] for n in netem_ns.names() if n.startswith(PREFIX + "-")}
    ids |= {p.name.split("-", 1)[1] for p in Path(tempfile.gettempdir()).glob(PREFIX + "-*")}
    for pid in uml_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                for arg in f.read().decode(errors="replace").split("\0"):
                    if arg.startswith(f"umid={PREFIX}-"):
                        ids.add(arg.split("-", 1)[1])
        except OSError:
            continue
    return {i for i in ids if i and all(c in "0123456789abcdef" for c in i)}


def _poweroff_uml(lab_id: str, timeout: float = 3.0) -> None:
    """Ask a booted UML router of a dead owner to power off (it then reaps its own helpers,
    leaving no zombies), by posting the next command of its file channel (see uml.py)."""
    state = state_dir(lab_id)
    if not uml_pids(lab_id) or not (state / "ready").exists():
        return
    posted = [int(p.name.split(".")[1]) for p in state.glob("cmd.*") if p.name[4:].isdigit()]
    n = max(posted, default=-1) + 1
    try:
        (state / f"cmd.{n}.tmp").write_text("poweroff -f\n")
        (state / f"cmd.{n}.tmp").rename(state / f"cmd.{n}")
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while uml_pids(lab_id) and time.monotonic() < deadline:
        time.sleep(0.05)


def cleanup_lab(lab_id: str) -> None:
    """Remove everything of one lab: UML processes (its TAPs go with them), processes still
    inside its namespaces, the namespaces (veths go with them), the state directory."""
    _poweroff_uml(lab_id)
    kill_pids(uml_pids(lab_id))
    for role in ROLES:
        name = ns_name(lab_id, role)
        if netem_ns.exists(name):
            netem_ns.kill_processes_in(name)
            netem_ns.remove(name)
    shutil.rmtree(state_dir(lab_id), ignore_errors=True)


def cleanup_stale(*, force: bool = False) -> list[str]:
    """Clean every lab whose owner process is dead (all labs when force); return their ids."""
    stale = sorted(i for i in _lab_ids() if force or not owner_alive(i))
    for lab_id in stale:
        cleanup_lab(lab_id)
    return stale


def start_watchdog(lab_id: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start the watchdog; return it and the pipe's write end, which the owner keeps open.

    The watchdog runs in its own session, so Ctrl-C at the terminal does not stop it.
    """
    rfd, wfd = os.pipe()
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sip_agent.lab.cleanup import _watch; _watch()", lab_id],
        stdin=rfd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True, close_fds=True)
    os.close(rfd)
    return proc, wfd


def _watch() -> None:
    """Watchdog body: block until the owner's pipe closes, then remove whatever is left."""
    lab_id = sys.argv[1]
    while os.read(0, 4096):
        pass
    cleanup_lab(lab_id)
