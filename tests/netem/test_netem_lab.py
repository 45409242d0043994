"""Real-network tests: packets through the lab's router, impaired by netem (native or UML)."""

from __future__ import annotations

import os
import socket

import pytest

from sip_agent.netem import Lab
from sip_agent.netem_probe import probe
from tests.netem.conftest import loss_bounds

pytestmark = pytest.mark.netem

RATE = 2000.0  # packets/s: the statistics depend on packet count, not on spacing


@pytest.fixture(autouse=True)
def _clean_after(lab: Lab):  # type: ignore[no-untyped-def]
    yield
    lab.set_profile("clean")


def test_reports_which_kernel_impairs(lab: Lab) -> None:
    info = lab.info
    assert info.backend in ("native", "uml")
    if info.backend == "uml":
        assert info.kernel.startswith("user-mode-linux 6.")
    else:
        assert info.kernel.startswith(f"Linux {os.uname().release}")
    assert info.caller.address != info.callee.address
    assert info.caller.namespace.startswith("lsclab-") and "caller" in info.caller.namespace
    assert info.backend in info.describe()


def test_clean_profile_passes_all_packets_both_ways(lab: Lab) -> None:
    for direction in ("forward", "backward"):
        res = probe(lab, 2000, RATE, direction=direction, seed=1, drain_s=0.5)
        assert res.lost <= 2, res.describe()  # allowance for a 2-core host under load
        assert res.duplicates == 0 and res.corrupted == 0
        assert res.delay_p50_ms < 5.0, res.describe()


@pytest.mark.parametrize("profile, n, min_burst", [
    ("lossy-uniform-10", 5000, 1.0),          # 10 %, bursts 1/(1-0.1) = 1.11
    ("loss gemodel 5% 40% 100% 0%", 6000, 1.8),  # Gilbert: 11.1 %, bursts 1/r = 2.5
    ("wifi-bursty", 8000, 1.4),               # full GE with delay/jitter: 4.0 %, bursts 1.85
    ("loss state 1% 30% 10% 40% 0.5%", 8000, 1.4),  # 4-state: 3.7 %, bursts 2.09
])
def test_loss_and_burst_length_within_derived_bounds(lab: Lab, profile: str, n: int,
                                                     min_burst: float) -> None:
    lab.set_profile(profile)
    (lo, hi), (blo, bhi) = loss_bounds(lab.forward, n)
    res = probe(lab, n, RATE, seed=n, drain_s=0.3 + 2 * lab.forward.delay_ms / 1e3)
    assert lo <= res.loss_fraction <= hi, res.describe()
    assert blo <= res.mean_burst <= bhi, res.describe()
    # bursty models must look bursty: memoryless loss at the same rate gives ~1.04-1.12
    assert res.mean_burst >= min_burst, res.describe()


def test_delay_applies_to_its_direction_only(lab: Lab) -> None:
    lab.set_profile("clean", forward="delay 40ms", backward="delay 5ms")
    fwd = probe(lab, 400, 1000.0, seed=5, drain_s=0.3)
    bwd = probe(lab, 400, 1000.0, direction="backward", seed=6, drain_s=0.3)
    assert fwd.lost == 0 and bwd.lost == 0
    assert 40.0 <= fwd.delay_min_ms and fwd.delay_mean_ms < 45.0, fwd.describe()
    assert 5.0 <= bwd.delay_min_ms and bwd.delay_mean_ms < 10.0, bwd.describe()


def test_jitter_spreads_delay_uniformly(lab: Lab) -> None:
    lab.set_profile("delay 30ms 10ms")
    res = probe(lab, 1000, 1000.0, seed=7, drain_s=0.3)
    # netem's default jitter is uniform on [-10, +10] ms: standard deviation 10/sqrt(3) = 5.8 ms
    assert 29.0 <= res.delay_mean_ms <= 33.0, res.describe()
    assert 4.8 <= res.delay_std_ms <= 6.8, res.describe()
    assert res.reordered > 0  # 1 ms spacing with +-10 ms jitter must reorder


def test_duplication_and_reordering_are_seen(lab: Lab) -> None:
    lab.set_profile("delay 10ms reorder 30% duplicate 10%")
    res = probe(lab, 2000, 1000.0, seed=8, drain_s=0.3)
    assert 0.10 * 2000 * 0.6 <= res.duplicates <= 0.10 * 2000 * 1.4, res.describe()
    assert res.reordered > 50, res.describe()
    assert res.lost == 0


def test_profile_stats_and_popen_run_call_socket_in_namespaces(lab: Lab) -> None:
    lab.set_profile("wifi-bursty")
    assert "gemodel" in lab.qdisc_stats()
    out = lab.run("callee", ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    assert lab.callee.address in out.stdout and lab.caller.address not in out.stdout
    proc = lab.popen("caller", ["ip", "-o", "-4", "addr", "show"], stdout=-1, text=True)
    assert lab.caller.address in proc.communicate(timeout=30)[0]
    assert lab.call("callee", socket.gethostbyname, "localhost") == "127.0.0.1"
    own = os.readlink("/proc/self/ns/net")
    assert lab.call("caller", os.readlink, "/proc/self/ns/net") != own
    with lab.socket("caller") as s:
        s.bind((lab.caller.address, 0))  # only possible inside the caller's namespace
