"""Real-network tests: packets through the lab's router, impaired by netem (native or UML)."""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time

import pytest

from sip_agent.lab import cleanup as netem_cleanup
from sip_agent.lab.lab import Lab
from sip_agent.lab.probe import probe
from tests.sip_agent.lab.conftest import loss_bounds

pytestmark = pytest.mark.netem

RATE = 2000.0  # packets/s: the statistics depend on packet count, not on spacing
# LOAD: the router (a UML process, or the host kernel) and the probe share the host's CPUs,
# and host load only ever ADDS delay (2 busy loops on 2 cores: mean of `delay 30ms 10ms`
# up to 153 ms, minimum still 20.07-20.24 ms). Adding a non-negative delay to every packet
# can only raise each order statistic, so delay checks here are lower limits on quantiles,
# plus upper limits on the minimum only (one quick packet out of hundreds is enough).
# Losses are immune: the probe ends on an end marker that a stalled router delays too.


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
        res = probe(lab, 2000, RATE, direction=direction, seed=1)
        assert res.lost <= 2, res.describe()  # allowance for a 2-core host under load
        assert res.duplicates == 0 and res.corrupted == 0
        assert res.delay_min_ms < 1.0, res.describe()  # no delay added (see LOAD)


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
    res = probe(lab, n, RATE, seed=n)
    assert lo <= res.loss_fraction <= hi, res.describe()
    assert blo <= res.mean_burst <= bhi, res.describe()
    # bursty models must look bursty: memoryless loss at the same rate gives ~1.04-1.12
    assert res.mean_burst >= min_burst, res.describe()


def test_delay_applies_to_its_direction_only(lab: Lab) -> None:
    lab.set_profile("clean", forward="delay 40ms", backward="delay 5ms")
    fwd = probe(lab, 400, 1000.0, seed=5)
    bwd = probe(lab, 400, 1000.0, direction="backward", seed=6)
    assert fwd.lost == 0 and bwd.lost == 0
    # minimum pinned both ways (LOAD): forward got 40 ms and not 45, backward 5 ms and not 40
    assert 40.0 <= fwd.delay_min_ms <= 41.5 and fwd.delay_p50_ms >= 40.0, fwd.describe()
    assert 5.0 <= bwd.delay_min_ms <= 6.5 and bwd.delay_p50_ms >= 5.0, bwd.describe()


def test_jitter_spreads_delay_uniformly(lab: Lab) -> None:
    lab.set_profile("delay 30ms 10ms")
    res = probe(lab, 1000, 1000.0, seed=7)
    # netem's default jitter is uniform on [20, 40] ms: min ~20.0, median 30, p95 39. Under
    # LOAD only the minimum has an upper limit: ~75 of 1000 packets draw under 21.5 ms.
    assert 19.5 <= res.delay_min_ms <= 21.5, res.describe()
    assert res.delay_p50_ms >= 28.0, res.describe()  # the centre is 30 ms, not 20
    assert res.delay_p95_ms - res.delay_min_ms >= 15.0, res.describe()  # spread: about 19 ms
    assert res.reordered > 0  # 1 ms spacing with +-10 ms jitter must reorder


def test_duplication_and_reordering_are_seen(lab: Lab) -> None:
    lab.set_profile("delay 10ms reorder 30% duplicate 10%")
    res = probe(lab, 2000, 1000.0, seed=8)
    assert 0.10 * 2000 * 0.6 <= res.duplicates <= 0.10 * 2000 * 1.4, res.describe()
    assert res.reordered > 50, res.describe()
    assert res.lost == 0


def test_corruption_shows_as_loss_because_checksums_catch_it(lab: Lab) -> None:
    lab.set_profile("corrupt 20%")
    n = 2000
    res = probe(lab, n, RATE, seed=10)
    # netem flips one random bit of the frame, Ethernet header included; the IP and UDP
    # checksums (or the MAC filter) drop the packet unless the bit is in the source MAC,
    # 48 of the 848 bits of this 106-byte frame: so ~18.9 % loss, never a corrupted arrival.
    want = 0.20 * (1 - 48 / (8 * (14 + 20 + 8 + 64)))
    sd = math.sqrt(want * (1 - want) / n)
    assert abs(res.loss_fraction - want) <= 4.5 * sd, res.describe()
    assert res.corrupted == 0 and res.mean_burst < 1.5, res.describe()  # independent


def test_rate_limit_serialises_packets(lab: Lab) -> None:
    lab.set_profile("rate 2mbit")
    n, size = 150, 1000
    res = probe(lab, n, RATE, seed=11, payload_bytes=size)
    slot_ms = 8 * (14 + 20 + 8 + size) / 2e6 * 1e3  # netem counts the Ethernet frame: 4.17 ms
    assert res.lost == 0 and res.reordered == 0, res.describe()  # one queue, in order
    # each packet leaves a slot after the one ahead of it (lower limits only: LOAD)
    assert res.delay_min_ms >= 0.98 * slot_ms, res.describe()
    assert res.span_ms >= 0.98 * n * slot_ms, res.span_ms  # 625 ms; sent in 75 ms


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_a_stalled_router_delays_packets_but_loses_none(lab: Lab) -> None:
    """What host load does to the UML router (one process), made on purpose: SIGSTOP it."""
    if lab.info.backend != "uml":
        pytest.skip("the native router is the host kernel: no process to stall")
    pids = netem_cleanup.uml_pids(lab.lab_id)
    # the UML kernel itself: its helpers and ptraced user processes wait on it (stopping
    # those too panics UML)
    kernel = [p for p in pids if _ppid(p) not in pids]

    def stall() -> None:  # 1.0-3.5 s: the train's second half and its end markers queue up
        time.sleep(1.0)
        try:
            for pid in kernel:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(2.5)
        finally:
            for pid in kernel:
                os.kill(pid, signal.SIGCONT)

    staller = threading.Thread(target=stall)
    staller.start()
    res = probe(lab, 2000, 1000.0, seed=12)
    staller.join()
    # ~1000 packets waited in the TAP's queue (the kernel's default of 1000 overflows) and
    # came after the train had ended (a fixed drain would have counted them lost)
    assert res.lost == 0 and res.delay_p95_ms > 1000.0, res.describe()


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
