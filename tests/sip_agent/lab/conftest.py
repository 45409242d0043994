"""Fixtures for the netem lab tests: root/namespace gate, a shared lab, leak inspection."""

from __future__ import annotations

import math
import os
import subprocess
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from sip_agent.lab.lab import Lab
    from sip_agent.lab.netem_spec import NetemSpec

NETNS_DIR = "/run/netns"


def _namespace_problem() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "netem lab tests need root (they create network namespaces); run as root"
    from sip_agent.lab import ns as netem_ns

    name = f"lsclab-gate{os.getpid()}-probe"
    try:
        netem_ns.create(name)
    except Exception as exc:  # noqa: BLE001 - any failure means: no namespaces here
        return f"network namespaces unavailable here: {exc}"
    netem_ns.remove(name)
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    """Skip (with the reason) only when not root or namespaces cannot be created.

    Under CI (``$CI`` set, as GitHub Actions and most runners do) the same problem
    fails the tests instead: a runner without root must not turn the impairment
    tests the issue's "Done means" asks for into quiet skips.
    """
    problem = _namespace_problem()
    if problem and os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{problem} (CI is set: the impairment tests must run, not skip)",
                    pytrace=False)
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="module")
def lab(netns_ok: None) -> Iterator["Lab"]:
    """One booted lab (UML boot costs seconds) shared by a module; tests set their profile."""
    from sip_agent.lab.lab import Lab

    with Lab("clean") as shared:
        yield shared


def leftovers(lab_id: str) -> list[str]:
    """Everything of one lab still on the host: namespaces, TAPs, UML processes, state dir."""
    from sip_agent.lab import cleanup as netem_cleanup

    found = [f"netns {n}" for n in os.listdir(NETNS_DIR) if n.startswith(f"lsclab-{lab_id}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if f"lsclab{lab_id}" in line]
    found += [f"uml pid {p}" for p in netem_cleanup.uml_pids(lab_id)]
    if netem_cleanup.state_dir(lab_id).exists():
        found.append(f"dir {netem_cleanup.state_dir(lab_id)}")
    return found


def loss_bounds(spec: "NetemSpec", n: int, z: float = 4.5) -> tuple[tuple[float, float],
                                                                   tuple[float, float]]:
    """Acceptance intervals (loss fraction, mean burst) for n packets through ``spec``.

    Centre: the chain's stationary loss rate and mean burst
    (sip_agent.lab.markov). Width: z standard deviations of the large-n normal
    limit, whose variance sums the chain's autocovariances (so it widens for
    bursty, correlated loss) and, for the burst mean, uses the delta method.
    z = 4.5 keeps the false-failure rate near 1e-5 per check.
    """
    want = spec.expected_loss()
    sd_loss, sd_burst = spec.loss_fraction_sd(n), spec.mean_burst_sd(n)
    assert want is not None and sd_loss is not None and sd_burst is not None
    return ((want.loss_rate - z * sd_loss, want.loss_rate + z * sd_loss),
            (want.mean_burst - z * sd_burst, want.mean_burst + z * sd_burst))


def gilbert_bounds(p: float, r: float, n: int, z: float = 4.5) -> tuple[tuple[float, float],
                                                                         tuple[float, float]]:
    """Closed-form intervals for a Gilbert chain (1-h=1, 1-k=0), to cross-check loss_bounds.

    Loss is the stationary P(bad) = p/(p+r). Successive states are correlated
    with lag-1 coefficient lam = 1-p-r, so the variance of the mean of n
    indicators is pi(1-pi)/n * (1+lam)/(1-lam). Bursts are geometric with mean
    1/r and variance (1-r)/r^2; about n*pi_good*p of them start.
    """
    pi = p / (p + r)
    lam = 1.0 - p - r
    sd_loss = math.sqrt(pi * (1 - pi) / n * (1 + lam) / (1 - lam))
    bursts = n * (1 - pi) * p
    sd_burst = math.sqrt((1 - r) / r**2 / bursts)
    return ((pi - z * sd_loss, pi + z * sd_loss), (1 / r - z * sd_burst, 1 / r + z * sd_burst))
