"""A user-mode-linux kernel used as the impairment router when the host kernel lacks netem.

Theory of operation
-------------------
Debian's ``user-mode-linux`` package is a Linux kernel that runs as an ordinary
process and ships ``sch_netem.ko``. It boots with the host's root filesystem
(hostfs, read through host system calls), so its init can be a shell script
written into the lab's state directory, and its ``tc``/``ip`` are the host's.
Each router port is a vector device ``vecN`` on the host TAP named for it; UML
opens (and so creates) the TAPs at boot, the lab then moves each TAP into the
namespace of its side. Packets from the caller's namespace enter UML on vec0,
are forwarded (ip_forward=1) and leave on vec1 towards the callee, and back;
netem on vecN's egress impairs the direction *towards* side N.

Boot readiness is a file: init writes ``ready`` (its ``uname -r``) or
``failed`` into the state directory; the host polls it with a deadline, and a
UML process that exits early is reported with its console log. After boot,
init keeps serving commands: the host drops ``cmd.N`` (a shell script) into the
state directory and reads ``out.N`` / ``rc.N`` back (polled every 50 ms after
recent activity, every 0.5 s when idle, to keep the router's idle CPU small).
The UML process tree is its own process group; stopping kills the group.
It is started under a seccomp filter that hides the host's XSAVE layout from
UML's ptrace, its processes without glibc's AVX code (``uml_fpregs``):
without that UML 6.1 panics at boot on hosts with AVX-512 or AMX.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sip_agent.lab import cleanup as netem_cleanup
from sip_agent.lab.ns import LabError
from sip_agent.lab.uml_fpregs import INIT_ENV, hide_xstate_from_ptrace

__all__ = ["RouterPort", "UmlRouter", "find_uml"]

MODULES_ROOT = Path("/usr/lib/uml/modules")
_INSTALL_HINT = ("Fix: apt-get install user-mode-linux kmod (listed in "
                 "requirements/apt-runtime.txt), or run on a host whose kernel has sch_netem.")


@dataclass(frozen=True)
class RouterPort:
    """One router interface: the host TAP it rides on and the addresses on both ends."""

    tap: str
    router_ip: str
    router_mac: str
    peer_ip: str
    peer_mac: str
    prefixlen: int = 24


def find_uml() -> tuple[str, str, Path]:
    """(linux.uml path, its kernel version, path of its sch_netem.ko) or LabError with the fix."""
    binary = shutil.which("linux.uml") or shutil.which("linux.uml", path="/usr/bin")
    if binary is None:
        raise LabError("the host kernel has no netem qdisc (sch_netem) and user-mode-linux, "
                       f"which the lab then uses as router, is not installed. {_INSTALL_HINT}")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    module = MODULES_ROOT / version / "kernel/net/sched/sch_netem.ko"
    if not module.exists():
        raise LabError(f"user-mode-linux {version!r} has no {module}. {_INSTALL_HINT}")
    if not Path("/dev/net/tun").exists():
        raise LabError("/dev/net/tun is missing, so user-mode-linux cannot attach its TAP "
                       "devices. Fix: `mkdir -p /dev/net && mknod /dev/net/tun c 10 200` "
                       "(in a container: --device /dev/net/tun).")
    if shutil.which("insmod", path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
        raise LabError(f"`insmod` is missing, UML cannot load sch_netem. {_INSTALL_HINT}")
    return binary, version, module


def _init_script(state: Path, module: Path, ports: list[RouterPort]) -> str:
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# PID 1 of the lab's user-mode-linux router (written by sip_agent/lab/uml.py).",
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"D={q(str(state))}",
        "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs /run",
        "setup() {",
        "  set -e",
        f"  insmod {q(str(module))}",
        "  ip link set lo up",
        # IPv6 off: no router solicitations or MLD reports to step netem's loss chain.
        "  for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 "
        "/proc/sys/net/ipv6/conf/default/disable_ipv6; do if [ -e $f ]; then echo 1 > $f; fi; done",
    ]
    for n, port in enumerate(ports):
        dev = f"vec{n}"
        lines += [
            f"  if [ -e /proc/sys/net/ipv6/conf/{dev} ]; then echo 1 > /proc/sys/net/ipv6/conf/{dev}/"
            "disable_ipv6; fi",
            f"  ip link set {dev} address {port.router_mac}",
            f"  ip addr add {port.router_ip}/{port.prefixlen} dev {dev}",
            f"  ip link set {dev} up",
            f"  ip neigh replace {port.peer_ip} lladdr {port.peer_mac} dev {dev} nud permanent",
        ]
    lines += [
        "  echo 1 > /proc/sys/net/ipv4/ip_forward",
        "}",
        # Not `if (setup)`: errexit is ignored inside an if condition, even in a subshell.
        '(setup) > "$D/boot.log" 2>&1',
        'if [ $? -eq 0 ]; then uname -r > "$D/ready.tmp"; mv "$D/ready.tmp" "$D/ready"; '
        'else : > "$D/failed"; fi',
        "n=0; idle=0",
        "while :; do",
        '  if [ -e "$D/cmd.$n" ]; then',
        '    sh "$D/cmd.$n" > "$D/out.$n" 2>&1; echo $? > "$D/rc.$n.tmp"; mv "$D/rc.$n.tmp" '
        '"$D/rc.$n"',
        "    n=$((n+1)); idle=0",
        "  elif [ $idle -lt 40 ]; then idle=$((idle+1)); sleep 0.05",
        "  else sleep 0.5; fi",
        "done",
    ]
    return "\n".join(lines) + "\n"


class UmlRouter:
    """The booted UML router of one lab; ``run`` executes shell inside it."""

    def __init__(self, lab_id: str, state: Path, ports: list[RouterPort], *,
                 mem_mb: int = 128, boot_timeout: float = 60.0) -> None:
        self.lab_id = lab_id
        self.state = state
        self.ports = ports
        self.mem_mb = mem_mb
        self.boot_timeout = boot_timeout
        self.version = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._next_cmd = 0

    def boot(self) -> None:
        """Start the kernel and wait until init reports the router ready (LabError otherwise)."""
        binary, self.version, module = find_uml()
        init = self.state / "init.sh"
        init.write_text(_init_script(self.state, module, self.ports))
        init.chmod(0o755)
        argv = [binary, f"mem={self.mem_mb}M", "root=/dev/root", "rootfstype=hostfs",
                "rootflags=/", "rw", f"init={init}", "con=null", "con0=null,fd:1", "ssl=null",
                f"umid={netem_cleanup.PREFIX}-{self.lab_id}", f"uml_dir={self.state}"]
        argv += [f"vec{n}:transport=tap,ifname={p.tap}" for n, p in enumerate(self.ports)]
        argv += list(INIT_ENV)
        with open(self.state / "console.log", "wb") as log:
            # Own process group: one killpg stops the whole UML tree, and Ctrl-C at the
            # terminal reaches the lab (which then tears down) instead of the kernel.
            # preexec: UML 6.1 cannot keep FPU state on AVX-512/AMX hosts (see uml_fpregs.py).
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          preexec_fn=hide_xstate_from_ptrace)
        deadline = time.monotonic() + self.boot_timeout
        while True:
            if (self.state / "ready").exists():
                self.version = (self.state / "ready").read_text().strip() or self.version
                return
            if (self.state / "failed").exists():
                raise LabError("user-mode-linux router set-up failed:\n" + self._tail("boot.log"))
            if self._proc.poll() is not None:
                raise LabError(f"user-mode-linux exited during boot (code {self._proc.returncode})"
                               f":\n{self._tail('console.log')}")
            if time.monotonic() > deadline:
                raise LabError(f"user-mode-linux did not finish booting within {self.boot_timeout}"
                               f" s (raise boot_timeout on a slow host):\n"
                               f"{self._tail('console.log')}")
            time.sleep(0.02)

    def _tail(self, name: str, lines: int = 25) -> str:
        try:
            text = (self.state / name).read_text(errors="replace")
        except OSError:
            return f"({name} missing)"
        return "\n".join(text.splitlines()[-lines:])

    def _post(self, script: str) -> int:
        n = self._next_cmd
        self._next_cmd += 1
        tmp = self.state / f"cmd.{n}.tmp"
        tmp.write_text(script + "\n")
        tmp.rename(self.state / f"cmd.{n}")  # atomic: init never sees half a script
        return n

    def run(self, script: str, timeout: float = 30.0) -> str:
        """Run shell inside UML; return its output; LabError on non-zero exit or timeout."""
        n = self._post(script)
        rc_file = self.state / f"rc.{n}"
        deadline = time.monotonic() + timeout
        while not rc_file.exists():
            if self._proc is None or self._proc.poll() is not None:
                raise LabError("user-mode-linux router is not running:\n"
                               + self._tail("console.log"))
            if time.monotonic() > deadline:
                raise LabError(f"command in user-mode-linux timed out after {timeout} s: {script}")
            time.sleep(0.01)
        out = (self.state / f"out.{n}").read_text(errors="replace")
        if rc_file.read_text().strip() != "0":
            raise LabError(f"command in user-mode-linux failed: {script}\n{out}")
        return out

    def stop(self) -> None:
        """Power UML off (it then reaps its own helpers), else kill its group; TAPs go with it."""
        proc = self._proc
        if proc is not None and proc.poll() is None and (self.state / "ready").exists():
            self._post("poweroff -f")
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass  # wedged: the kill below does it
        pids = netem_cleanup.uml_pids(self.lab_id)
        if self._proc is not None:
            pids.append(self._proc.pid)
        netem_cleanup.kill_pids(pids)
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
