"""Network-namespace primitives for the impairment lab (the one place pyroute2 is used).

Theory of operation
-------------------
Namespaces are named and bind-mounted under /run/netns, exactly like
``ip netns add``, so ``ip netns exec NAME ...`` works on them. Links are made
and configured over rtnetlink with pyroute2 from the host process (no
per-command subprocess). Code that must *run* inside a namespace either gets a
socket made there (:func:`socket_in`, the socket keeps its namespace for life)
or forks a child that joins the namespace with setns(2) and runs a Python
callable (:func:`call_in`). Every failure is raised as :class:`LabError` with
the problem and the fix.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import time
import traceback
from typing import Any, Callable

from pyroute2 import IPRoute, NetNS, config, netns

__all__ = ["LabError", "require_root", "create", "remove", "exists", "names", "pids_in",
           "kill_processes_in", "add_veth", "move_link", "configure", "socket_in", "call_in",
           "link_exists"]

NETNS_DIR = "/run/netns"
# pyroute2 forks helpers (namespace creation, sockets) and stops them with SIGTERM; make
# them take the default action instead of running this process's handlers.
config.disable_mp_signal = True


class LabError(RuntimeError):
    """The impairment lab cannot be built or run; the message names the problem and the fix."""


def require_root() -> None:
    """Namespaces, links and qdiscs need CAP_NET_ADMIN and CAP_SYS_ADMIN."""
    if os.geteuid() != 0:
        raise LabError("the netem lab needs root (it creates network namespaces, veth/TAP links "
                       "and qdiscs). Fix: run as root, e.g. `sudo .venv/bin/largesc lab ...`.")


def create(name: str) -> None:
    """Create the named namespace and bring its loopback up."""
    try:
        netns.create(name)
    except OSError as exc:
        raise LabError(f"cannot create network namespace {name!r}: {exc}. Fix: run as root on a "
                       "kernel with network namespaces; in a container it needs CAP_SYS_ADMIN "
                       "(e.g. docker --privileged).") from exc
    with NetNS(name, flags=0) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def names() -> list[str]:
    """All named namespaces on this host."""
    return sorted(netns.listnetns())


def remove(name: str) -> None:
    """Unmount and delete the namespace name (links inside vanish with it); missing is fine."""
    if exists(name):
        netns.remove(name)


def pids_in(name: str) -> list[int]:
    """Processes (other than this one) whose network namespace is the named one."""
    try:
        target = f"net:[{os.stat(os.path.join(NETNS_DIR, name)).st_ino}]"
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == target:
                    found.append(int(entry))
            except OSError:
                continue  # exited meanwhile, or a kernel thread
    return found


def kill_processes_in(name: str, grace_s: float = 1.0) -> None:
    """SIGTERM, then SIGKILL, everything still running inside the namespace."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        pids = pids_in(name)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.02)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def link_exists(ifname: str) -> bool:
    """Whether a link of that name exists in the host (root) namespace."""
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=ifname))


def add_veth(ns_a: str, if_a: str, mac_a: str, ns_b: str, if_b: str, mac_b: str) -> None:
    """A veth pair made inside ns_a with its peer placed straight into ns_b (no root-ns names)."""
    with NetNS(ns_a, flags=0) as ns:
        ns.link("add", ifname=if_a, kind="veth", address=mac_a,
                peer={"ifname": if_b, "address": mac_b, "net_ns_fd": ns_b})


def move_link(ifname: str, target_ns: str) -> None:
    """Move a host (root-namespace) link into a namespace."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LabError(f"link {ifname!r} not found in the host namespace")
        ipr.link("set", index=found[0], state="down")
        ipr.link("set", index=found[0], net_ns_fd=target_ns)


def configure(ns_name: str, ifname: str, address: str, prefixlen: int, *, mac: str | None = None,
              gateway: str | None = None, neighbours: tuple[tuple[str, str], ...] = (),
              link_routes: tuple[str, ...] = (), txqueuelen: int | None = None) -> None:
    """Address, MAC, up, routes and permanent ARP entries for one link in a namespace.

    ``link_routes`` are prefixes reached directly on the link (no gateway);
    ``txqueuelen`` sets the link's queue (for a TAP: packets waiting for its reader).
    Permanent neighbours keep ARP out of the impaired path, so netem's loss
    applies to data packets only and no ARP retry ever stalls a measurement.
    """
    with NetNS(ns_name, flags=0) as ns:
        idx = ns.link_lookup(ifname=ifname)[0]
        if mac:
            ns.link("set", index=idx, address=mac)
        if txqueuelen:
            ns.link("set", index=idx, txqlen=txqueuelen)
        ns.addr("add", index=idx, address=address, prefixlen=prefixlen)
        ns.link("set", index=idx, state="up")
        for ip, lladdr in neighbours:
            ns.neigh("replace", dst=ip, lladdr=lladdr, ifindex=idx, state="permanent")
        for prefix in link_routes:
            ns.route("add", dst=prefix, oif=idx, scope=253)  # scope link: on this wire
        if gateway:
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)


def socket_in(ns_name: str, family: int = socket.AF_INET,
              kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A socket that lives in the namespace (made by a short child process, fd passed back)."""
    sock: socket.socket = netns.create_socket(ns_name, family, kind, flags=0)
    return sock


def call_in(ns_name: str, fn: Callable[..., Any], *args: Any, timeout: float = 60.0) -> Any:
    """Run ``fn(*args)`` in a forked child that joined the namespace; return its (pickled) result.

    An exception in the child is re-raised here as LabError with the child's traceback.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: join the namespace, run, report, and leave without cleanup handlers
        os.close(rfd)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)  # never run the parent's handlers in here
        try:
            netns.setns(ns_name, flags=0)
            payload = pickle.dumps((True, fn(*args)))
        except BaseException:  # noqa: BLE001 - everything must reach the parent
            payload = pickle.dumps((False, traceback.format_exc()))
        with os.fdopen(wfd, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(wfd)
    try:
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise LabError(f"call in namespace {ns_name!r} took longer than {timeout} s")
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)
    ok, value = pickle.loads(b"".join(chunks))
    if not ok:
        raise LabError(f"call in namespace {ns_name!r} failed:\n{value}")
    return value
