"""Tear-down guarantees and error messages of the lab: nothing is left behind, ever."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sip_agent.lab import cleanup as netem_cleanup
from sip_agent.lab import ns as netem_ns
from sip_agent.lab import uml
from sip_agent.lab.backends import native_netem_available
from sip_agent.lab.lab import Lab, LabError, cleanup_stale
from sip_agent.lab.probe import probe
from tests.sip_agent.lab.conftest import leftovers

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import sys, time
from sip_agent.lab.lab import Lab
with Lab("wifi-bursty") as lab:
    lab.popen("caller", ["sleep", "300"])
    print("READY", lab.lab_id, flush=True)
    time.sleep(300)
"""


def _wait_clean(lab_id: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := leftovers(lab_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.netem
def test_nothing_left_after_normal_exit(netns_ok: None) -> None:
    with Lab("lossy-uniform-10") as lab:
        sleeper = lab.popen("callee", ["sleep", "300"])
        assert leftovers(lab.lab_id), "the lab should exist while open"
    assert leftovers(lab.lab_id) == []
    assert sleeper.poll() is not None  # children started in the lab die with it


@pytest.mark.netem
def test_nothing_left_after_exception_inside_with(netns_ok: None) -> None:
    lab = Lab("satellite")
    with pytest.raises(RuntimeError, match="boom"):
        with lab:
            raise RuntimeError("boom")
    assert leftovers(lab.lab_id) == []


@pytest.mark.netem
def test_failed_start_cleans_up(netns_ok: None) -> None:
    lab = Lab("clean", backend="uml", boot_timeout=0.05)
    with pytest.raises(LabError, match="did not finish booting"):
        lab.start()
    assert leftovers(lab.lab_id) == []


def _start_child() -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-u", "-c", CHILD], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("READY"):
        child.kill()
        pytest.fail(f"lab child did not start: {line}{child.communicate()[1]}")
    lab_id = line.split()[1]
    assert leftovers(lab_id)
    return child, lab_id


@pytest.mark.netem
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_nothing_left_after_signal_to_a_process_running_a_lab(netns_ok: None, sig: int) -> None:
    child, lab_id = _start_child()
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    assert ("KeyboardInterrupt" in err) if sig == signal.SIGINT else child.returncode == 128 + sig
    assert leftovers(lab_id) == []  # close() ran before the process exited


@pytest.mark.netem
def test_watchdog_cleans_up_after_sigkill(netns_ok: None) -> None:
    child, lab_id = _start_child()
    child.kill()
    child.communicate(timeout=30)
    assert _wait_clean(lab_id) == []


@pytest.mark.netem
def test_cleanup_stale_removes_dead_labs_and_spares_live_ones(netns_ok: None) -> None:
    dead = "dead01"
    with Lab("clean", backend="native") as live:
        netem_cleanup.cleanup_lab(dead)
        netem_cleanup.state_dir(dead).mkdir()
        (netem_cleanup.state_dir(dead) / "owner").write_text("999999999 0\n")  # no such pid
        netem_ns.create(netem_cleanup.ns_name(dead, "caller"))
        cleaned = cleanup_stale()
        assert dead in cleaned and live.lab_id not in cleaned
        assert leftovers(dead) == []
        assert netem_ns.exists(live.caller.namespace)


@pytest.mark.netem
def test_native_backend_builds_the_same_topology(netns_ok: None) -> None:
    with Lab("clean", backend="native") as lab:
        assert lab.info.backend == "native" and "host kernel" in lab.info.kernel
        res = probe(lab, 300, 1000.0, seed=9)
        assert res.lost == 0, res.describe()
        if not native_netem_available(lab.lab_id):
            with pytest.raises(LabError, match="no netem qdisc"):
                lab.set_profile("loss 5%")
    assert leftovers(lab.lab_id) == []


@pytest.mark.netem
def test_direct_veth_pair_without_a_router(netns_ok: None) -> None:
    with Lab("clean", router=False) as lab:
        info = lab.info
        assert info.backend == "native" and not info.router and "no router" in info.describe()
        mine = {n for n in netem_ns.names() if n.startswith(f"lsclab-{lab.lab_id}-")}
        assert mine == {lab.caller.namespace, lab.callee.namespace}  # no router namespace
        routes = lab.run("caller", ["ip", "-o", "route"], capture_output=True, text=True).stdout
        assert f"{lab.callee.address} dev eth0" in routes and "default" not in routes, routes
        for direction in ("forward", "backward"):  # clean: no qdisc, so no netem needed
            res = probe(lab, 300, 1000.0, direction=direction, seed=9)
            assert res.lost == 0 and res.delay_min_ms < 1.0, res.describe()
        if native_netem_available(lab.lab_id):
            lab.set_profile("clean", forward="delay 20ms", backward="delay 5ms")
            fwd = probe(lab, 200, 1000.0, seed=10)
            bwd = probe(lab, 200, 1000.0, direction="backward", seed=11)
            assert 20.0 <= fwd.delay_min_ms <= 21.5 and 5.0 <= bwd.delay_min_ms <= 6.5
        else:
            with pytest.raises(LabError, match="drop router=False"):
                lab.set_profile("loss 5%")
    assert leftovers(lab.lab_id) == []


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab("clean").start()


def test_missing_user_mode_linux_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(LabError, match="apt-get install user-mode-linux"):
        uml.find_uml()


def test_bad_profile_is_rejected_before_any_work() -> None:
    with pytest.raises(ValueError, match="named profile"):
        Lab("no-such-profile")
    with pytest.raises(ValueError, match="unit"):
        Lab("clean", forward="delay 10")
    with pytest.raises(ValueError, match="backend"):
        Lab("clean", backend="qemu")
    with pytest.raises(ValueError, match="needs the native backend"):
        Lab("clean", backend="uml", router=False)
