"""The impairment lab: caller and callee namespaces joined through a netem router.

Theory of operation
-------------------
``with Lab("wifi-bursty") as lab:`` builds, on the host::

    [caller ns] eth0 10.201.1.2 --- router --- 10.201.2.2 eth0 [callee ns]
                            netem on each router egress, one per direction

The router is either a third namespace with two veth pairs (``native``: the host
kernel has ``sch_netem``) or a user-mode-linux kernel reached through one TAP per
side (``uml``: see :mod:`sip_agent.lab.uml`). ``backend="auto"`` probes the host
kernel and picks. ``router=False`` (native only) joins the two sides with one
veth pair instead, netem on each end's egress. Either way the agents run natively in the host namespaces
(:meth:`Lab.popen`, :meth:`Lab.socket`, :meth:`Lab.call`) and only the router
impairs. The forward spec impairs caller->callee, the backward spec
callee->caller; both are applied with iproute2's ``tc``, because pyroute2's netem
encoder (0.9.7, ``tcmsg/sched_netem.py``) maps ``TCA_NETEM_LOSS`` to nothing and
so cannot express ``gemodel`` or ``state`` loss, nor delay distributions, and
because inside UML the same argv runs unchanged.

Tear-down (:meth:`Lab.close`) runs on ``with`` exit, on SIGINT/SIGTERM/SIGHUP
(turned into exceptions while a lab is open), at interpreter exit, and, when
the owner is killed outright, in the lab's watchdog (:mod:`sip_agent.lab.cleanup`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, Callable, Sequence

from sip_agent.lab import cleanup as netem_cleanup
from sip_agent.lab import ns as netem_ns
from sip_agent.lab.backends import Backend, Endpoint, NativeBackend, UmlBackend, native_netem_available
from sip_agent.lab.cleanup import cleanup_stale
from sip_agent.lab.ns import LabError
from sip_agent.lab.probe import check_path
from sip_agent.lab.profiles import NetemSpec, Profile, parse_netem, resolve_profile

__all__ = ["Lab", "LabInfo", "Endpoint", "LabError", "cleanup_stale"]

SIDES = ("caller", "callee")
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class LabInfo:
    """What the report needs: which kernel impairs, how, and between which endpoints."""

    backend: str
    kernel: str
    profile: str
    forward: str
    backward: str
    caller: Endpoint
    callee: Endpoint
    path: str = "router"  # what joins the sides, e.g. "direct veth pair (no router)"
    router: bool = True

    def describe(self) -> str:
        return (f"impairment kernel: {self.kernel} [{self.backend}]\n"
                f"path: {self.path}; profile {self.profile}\n"
                f"  caller->callee: {self.forward}\n  callee->caller: {self.backward}\n"
                f"caller {self.caller.address} (netns {self.caller.namespace}), "
                f"callee {self.callee.address} (netns {self.callee.namespace})")


class _Interrupted(SystemExit):
    """SIGTERM/SIGHUP while a lab is open: unwinds like sys.exit so ``with`` tears down."""


_OWNER_PID = [0]  # the process whose labs the signal handlers belong to


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _OWNER_PID[0]:
        os._exit(128 + signum)  # a forked helper (pyroute2, Lab.call): just die, own nothing
    raise _Interrupted(128 + signum)


class Lab:
    """Two host namespaces and a netem router between them; use as a context manager.

    ``profile`` is a name from ``PROFILES`` or a raw netem spec for both
    directions; ``forward`` / ``backward`` override one direction with a raw spec.
    ``backend`` is "auto", "native" or "uml"; ``router=False`` (native only) joins
    caller and callee by one veth pair, netem on each end's egress.
    """

    def __init__(self, profile: str | Profile = "clean", *, forward: str | None = None,
                 backward: str | None = None, backend: str = "auto",
                 boot_timeout: float = 60.0, router: bool = True) -> None:
        if backend not in ("auto", "native", "uml"):
            raise ValueError(f"backend must be auto, native or uml (got {backend!r})")
        if not router and backend == "uml":
            raise ValueError("no router (--no-router, router=False) needs the native backend: "
                             "under user-mode-linux the UML kernel is the router")
        self.router = router
        self._want = (profile, forward, backward)
        resolve_profile(profile)  # fail fast on a bad name or spec, before any root work
        for spec in (forward, backward):
            if spec is not None:
                parse_netem(spec)
        self.backend_choice = backend
        self.boot_timeout = boot_timeout
        self.lab_id = ""
        self._backend: Backend | None = None
        self._specs = (NetemSpec(), NetemSpec())
        self._profile_name = ""
        self._children: list[subprocess.Popen[Any]] = []
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watch_fd = -1
        self._old_handlers: dict[int, Any] = {}
        self._closed = False
        self._owner_pid = os.getpid()

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> "Lab":
        """Build the topology, boot the router if needed, apply the profile, check the path."""
        netem_ns.require_root()
        self._owner_pid = os.getpid()
        cleanup_stale()
        while True:
            self.lab_id = netem_cleanup.new_lab_id()
            try:
                state = netem_cleanup.claim(self.lab_id)
                break
            except FileExistsError:
                continue
        self._watchdog, self._watch_fd = netem_cleanup.start_watchdog(self.lab_id)
        self._install_signals()
        atexit.register(self.close)
        try:
            kind = self.backend_choice
            if kind == "auto":  # without a router only the host kernel can impair
                kind = "native" if not self.router or native_netem_available(self.lab_id) else "uml"
            if kind == "native":
                self._backend = NativeBackend(self.lab_id, router=self.router)
            else:
                self._backend = UmlBackend(self.lab_id, state, self.boot_timeout)
            self._backend.build()
            check_path(self, self.info.path)
            self.set_profile(*self._want)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove everything this lab made; safe to call twice and from signal unwinding."""
        if self._closed or os.getpid() != self._owner_pid:
            return  # a forked child unwinding a copy of the owner's stack must not tear down
        self._closed = True
        main = threading.current_thread() is threading.main_thread()
        if main:  # a second Ctrl-C must not cut the tear-down in half
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, *_SIGNALS})
        try:
            for child in self._children:  # SIGTERM first: agents may want to hang up
                if child.poll() is None:
                    child.terminate()
            for child in self._children:
                try:
                    child.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if self._backend is not None:
                self._backend.close()
            if self.lab_id:
                netem_cleanup.cleanup_lab(self.lab_id)
            if self._watch_fd >= 0:
                os.close(self._watch_fd)
                self._watch_fd = -1
            if self._watchdog is not None:
                try:
                    self._watchdog.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()  # everything is already gone; do not hang on it
                    self._watchdog.wait()
            self._restore_signals()
            atexit.unregister(self.close)
        finally:
            if main:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, *_SIGNALS})

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; close() still runs via with/atexit
        _OWNER_PID[0] = os.getpid()
        for sig in _SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                self._old_handlers[sig] = signal.signal(sig, _raise_on_signal)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    # -- impairment ---------------------------------------------------------------------------
    def set_profile(self, profile: str | Profile = "clean", forward: str | None = None,
                    backward: str | None = None) -> None:
        """(Re)apply impairment: a named profile or raw spec, with optional per-direction specs."""
        chosen = resolve_profile(profile)
        fwd = parse_netem(forward) if forward is not None else chosen.forward
        bwd = parse_netem(backward) if backward is not None else chosen.backward
        backend = self._require()
        backend.apply(fwd, bwd)
        self._specs = (fwd, bwd)
        self._profile_name = chosen.name if forward is None and backward is None else (
            f"{chosen.name} (directions overridden)")

    @property
    def forward(self) -> NetemSpec:
        return self._specs[0]

    @property
    def backward(self) -> NetemSpec:
        return self._specs[1]

    def qdisc_stats(self) -> str:
        """``tc -s qdisc show`` of the router's two impairing interfaces (netem's own counters)."""
        return self._require().stats()

    # -- endpoints and execution -------------------------------------------------------------
    def endpoint(self, side: str) -> Endpoint:
        if side not in SIDES:
            raise ValueError(f"side must be 'caller' or 'callee' (got {side!r})")
        return self._require().endpoints[side]

    @property
    def caller(self) -> Endpoint:
        return self.endpoint("caller")

    @property
    def callee(self) -> Endpoint:
        return self.endpoint("callee")

    @property
    def info(self) -> LabInfo:
        backend = self._require()
        return LabInfo(backend.kind, backend.kernel, self._profile_name, str(self.forward),
                       str(self.backward), self.caller, self.callee, backend.path, self.router)

    def popen(self, side: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the side's namespace (``ip netns exec``); killed at close."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.endpoint(side).namespace, *argv],
                                **kwargs)
        self._children.append(proc)
        return proc

    def run(self, side: str, argv: Sequence[str], timeout: float = 60.0,
            **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` to completion inside the side's namespace."""
        return subprocess.run(["ip", "netns", "exec", self.endpoint(side).namespace, *argv],
                              timeout=timeout, **kwargs)

    def socket(self, side: str, family: int = socket.AF_INET,
               kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket living in the side's namespace, usable from this process."""
        return netem_ns.socket_in(self.endpoint(side).namespace, family, kind)

    def call(self, side: str, fn: Callable[..., Any], *args: Any, timeout: float = 60.0) -> Any:
        """Run ``fn(*args)`` in a forked child inside the side's namespace; return its result."""
        return netem_ns.call_in(self.endpoint(side).namespace, fn, *args, timeout=timeout)

    def _require(self) -> Backend:
        if self._backend is None or self._closed:
            raise LabError("the lab is not running: use `with Lab(...) as lab:` or lab.start()")
        return self._backend
