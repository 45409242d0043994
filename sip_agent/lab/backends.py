"""The lab's two routers: a native namespace with veth pairs, or a user-mode-linux kernel.

Theory of operation
-------------------
Both backends give the same picture to :class:`sip_agent.lab.lab.Lab`: a caller
namespace (10.201.1.2/24, gateway .1) and a callee namespace (10.201.2.2/24,
gateway .1), each with IPv6 off and a permanent ARP entry for its gateway, and a
router whose egress interface towards the callee carries the *forward* netem
qdisc and whose egress towards the caller carries the *backward* one.

* ``native``: the router is a third namespace; veth pairs are made inside the
  router namespace with their peers placed straight into the sides, so no
  names ever appear in the host namespace. ``tc -netns`` sets the qdiscs.
  Without a router (``router=False``) one veth pair joins the sides directly,
  each side routes the other's address onto the wire, and the forward qdisc
  sits on the caller's egress, the backward one on the callee's.
* ``uml``: the router is :class:`sip_agent.lab.uml.UmlRouter`; its TAPs are moved
  into the side namespaces after boot, and ``tc`` runs inside UML.

Addresses repeat across labs on purpose: every address lives inside the lab's
own namespaces (or inside UML), so parallel labs never see each other.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sip_agent.lab import ns as netem_ns
from sip_agent.lab.cleanup import ns_name, tap_name
from sip_agent.lab.ns import LabError
from sip_agent.lab.profiles import NetemSpec
from sip_agent.lab.uml import RouterPort, UmlRouter

__all__ = ["Endpoint", "Backend", "NativeBackend", "UmlBackend", "native_netem_available"]

# (host address, router address, host-side MAC, router-side MAC) per side.
_PLAN = {
    "caller": ("10.201.1.2", "10.201.1.1", "02:00:0a:c9:01:02", "02:00:0a:c9:01:01"),
    "callee": ("10.201.2.2", "10.201.2.1", "02:00:0a:c9:02:02", "02:00:0a:c9:02:01"),
}
_SYSPATH = "/usr/sbin:/sbin:/usr/bin:/bin"
# Packets a TAP holds for the UML process (the kernel's default: 1000). UML is one host
# process: under host load it stalls for 0.5 s and more, and at 2000 packets/s the default
# queue overflowed (657 packets dropped in one burst); 20000 rides out a 10 s stall.
_TAP_QUEUE = 20000


@dataclass(frozen=True)
class Endpoint:
    """One side of the call: its namespace, address and interface."""

    role: str
    namespace: str
    address: str
    ifname: str


def _tc() -> str:
    tc = shutil.which("tc") or shutil.which("tc", path=_SYSPATH)
    if tc is None:
        raise LabError("`tc` is missing. Fix: apt-get install iproute2 "
                       "(listed in requirements/apt-runtime.txt).")
    return tc


def _write_files(pairs: list[tuple[str, str]]) -> None:
    """Write sysctl-like files; runs in a child that joined the target namespace."""
    for path, value in pairs:
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(value)


_NO_IPV6 = [("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"),
            ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")]


def _new_side(name: str) -> None:
    netem_ns.create(name)
    # IPv6 off before links exist: no router solicitations or MLD through the impaired path.
    netem_ns.call_in(name, _write_files, _NO_IPV6)


def native_netem_available(lab_id: str) -> bool:
    """Whether the host kernel can run netem: try it on loopback in a scratch namespace."""
    modprobe = shutil.which("modprobe", path=_SYSPATH)
    if modprobe:
        subprocess.run([modprobe, "-q", "sch_netem"], capture_output=True, timeout=30)
    probe = ns_name(lab_id, "probe")
    netem_ns.create(probe)
    try:
        done = subprocess.run([_tc(), "-netns", probe, "qdisc", "add", "dev", "lo", "root",
                               "netem", "delay", "1ms"], capture_output=True, timeout=30)
        return done.returncode == 0
    finally:
        netem_ns.remove(probe)


class Backend:
    """What the lab needs from a router: build, impair per direction, report, tear down."""

    kind = ""
    kernel = ""
    path = ""  # what joins the sides, for reports
    endpoints: dict[str, Endpoint]

    def build(self) -> None:
        raise LabError("not a concrete backend")

    def apply(self, forward: NetemSpec, backward: NetemSpec) -> None:
        raise LabError("not a concrete backend")

    def stats(self) -> str:
        raise LabError("not a concrete backend")

    def close(self) -> None:
        """Backend-specific tear-down; namespaces go in netem_cleanup.cleanup_lab."""


class NativeBackend(Backend):
    """Router namespace and veth pairs (or one direct veth pair), netem of the host kernel."""

    kind = "native"

    def __init__(self, lab_id: str, router: bool = True) -> None:
        self.router = ns_name(lab_id, "router") if router else ""
        self.endpoints = {side: Endpoint(side, ns_name(lab_id, side), _PLAN[side][0], "eth0")
                          for side in _PLAN}
        self.kernel = f"Linux {os.uname().release} (host kernel, native netem)"
        ends = self.endpoints
        # (namespace, device) whose egress qdisc impairs each direction
        self._qdiscs = ({"forward": (self.router, "to-callee"), "backward": (self.router, "to-caller")}
                        if router else {"forward": (ends["caller"].namespace, "eth0"),
                                        "backward": (ends["callee"].namespace, "eth0")})
        self.path = ("native router namespace" if router
                     else "direct veth pair (no router; netem on each end's egress)")

    def build(self) -> None:
        if not self.router:
            self._build_direct()
            return
        _new_side(self.router)
        for side, (host_ip, router_ip, host_mac, router_mac) in _PLAN.items():
            ep = self.endpoints[side]
            _new_side(ep.namespace)
            dev = f"to-{side}"
            netem_ns.add_veth(self.router, dev, router_mac, ep.namespace, ep.ifname, host_mac)
            netem_ns.configure(ep.namespace, ep.ifname, host_ip, 24, gateway=router_ip,
                               neighbours=((router_ip, router_mac),))
            netem_ns.configure(self.router, dev, router_ip, 24,
                               neighbours=((host_ip, host_mac),))
        netem_ns.call_in(self.router, _write_files, [("/proc/sys/net/ipv4/ip_forward", "1")])

    def _build_direct(self) -> None:
        """One veth pair caller eth0 <-> callee eth0; each side routes the other onto it."""
        caller, callee = self.endpoints["caller"], self.endpoints["callee"]
        for ep in (caller, callee):
            _new_side(ep.namespace)
        netem_ns.add_veth(caller.namespace, "eth0", _PLAN["caller"][2],
                          callee.namespace, "eth0", _PLAN["callee"][2])
        for ep, peer in ((caller, callee), (callee, caller)):
            peer_mac = _PLAN[peer.role][2]
            netem_ns.configure(ep.namespace, "eth0", ep.address, 24,
                               link_routes=(f"{peer.address}/32",),
                               neighbours=((peer.address, peer_mac),))

    def _tc(self, ns: str, *args: str, check: bool = True) -> str:
        done = subprocess.run([_tc(), "-netns", ns, *args], capture_output=True,
                              text=True, timeout=30)
        if check and "qdisc kind is unknown" in done.stderr:
            fix = ("use Lab(..., backend='auto' or 'uml') to impair inside user-mode-linux"
                   if self.router else "keep the router (drop router=False / --no-router) so the "
                   "lab can impair inside user-mode-linux")
            raise LabError(f"the host kernel {os.uname().release} has no netem qdisc (sch_netem; "
                           f"`modprobe sch_netem` fails). Fix: {fix}, or load sch_netem.")
        if check and done.returncode != 0:
            raise LabError(f"tc {' '.join(args)} failed in {ns}: {done.stderr.strip()}")
        return done.stdout

    def apply(self, forward: NetemSpec, backward: NetemSpec) -> None:
        for (ns, dev), spec in ((self._qdiscs["forward"], forward),
                                (self._qdiscs["backward"], backward)):
            # Delete then add (not replace): fresh loss-chain state and counters per profile.
            self._tc(ns, "qdisc", "del", "dev", dev, "root", check=False)  # absent is fine
            if not spec.is_clean():
                self._tc(ns, "qdisc", "add", "dev", dev, "root", "netem", *spec.tc_args())

    def stats(self) -> str:
        return "".join(f"[{d}] " + self._tc(ns, "-s", "qdisc", "show", "dev", dev)
                       for d, (ns, dev) in self._qdiscs.items())


class UmlBackend(Backend):
    """user-mode-linux router on two TAPs; netem of the UML kernel."""

    kind = "uml"
    path = "user-mode-linux router"
    _DEV = {"forward": "vec1", "backward": "vec0"}

    def __init__(self, lab_id: str, state: Path, boot_timeout: float) -> None:
        self.endpoints = {side: Endpoint(side, ns_name(lab_id, side), _PLAN[side][0],
                                         tap_name(lab_id, side)) for side in _PLAN}
        ports = [RouterPort(self.endpoints[side].ifname, router_ip, router_mac, host_ip, host_mac)
                 for side, (host_ip, router_ip, host_mac, router_mac) in _PLAN.items()]
        self.router = UmlRouter(lab_id, state, ports, boot_timeout=boot_timeout)

    def build(self) -> None:
        for ep in self.endpoints.values():
            _new_side(ep.namespace)
        self.router.boot()
        for side, (host_ip, router_ip, host_mac, router_mac) in _PLAN.items():
            ep = self.endpoints[side]
            netem_ns.move_link(ep.ifname, ep.namespace)
            netem_ns.configure(ep.namespace, ep.ifname, host_ip, 24, mac=host_mac,
                               gateway=router_ip, neighbours=((router_ip, router_mac),),
                               txqueuelen=_TAP_QUEUE)
        self.kernel = (f"user-mode-linux {self.router.version} (host kernel "
                       f"{os.uname().release} has no sch_netem)")

    def apply(self, forward: NetemSpec, backward: NetemSpec) -> None:
        lines = []  # one round trip into UML for both directions (each costs ~0.1 s)
        for dev, spec in ((self._DEV["forward"], forward), (self._DEV["backward"], backward)):
            lines.append(f"tc qdisc del dev {dev} root 2>/dev/null || true")
            if not spec.is_clean():
                lines.append(f"tc qdisc add dev {dev} root netem "
                             + " ".join(shlex.quote(a) for a in spec.tc_args()))
        self.router.run("set -e\n" + "\n".join(lines))

    def stats(self) -> str:
        return self.router.run("; ".join(f"echo '[{d}]'; tc -s qdisc show dev {dev}"
                                         for d, dev in self._DEV.items()))

    def close(self) -> None:
        self.router.stop()
