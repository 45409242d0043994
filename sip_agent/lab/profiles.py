"""Named netem profiles (one spec per direction) and the lookup the lab uses.

Theory of operation
-------------------
A :class:`Profile` holds one :class:`~sip_agent.lab.netem_spec.NetemSpec` per
direction: ``forward`` impairs caller->callee, ``backward`` callee->caller.
``PROFILES`` is the registry of named ones (parameters and their expected loss
figures are in docs/impairment-lab.md); :func:`resolve_profile` accepts a name
or any raw tc-netem spec string, applied to both directions. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip_agent.lab.netem_parse import parse_netem
from sip_agent.lab.netem_spec import (
    FourStateLoss,
    GilbertElliottLoss,
    LossExpectation,
    LossModel,
    NetemSpec,
    RandomLoss,
)

__all__ = [
    "RandomLoss", "GilbertElliottLoss", "FourStateLoss", "LossModel", "NetemSpec",
    "Profile", "PROFILES", "parse_netem", "resolve_profile", "LossExpectation",
]


@dataclass(frozen=True)
class Profile:
    """A named pair of specs: ``forward`` = caller->callee, ``backward`` = callee->caller."""

    name: str
    description: str
    forward: NetemSpec = field(default_factory=NetemSpec)
    backward: NetemSpec = field(default_factory=NetemSpec)


def _symmetric(name: str, description: str, spec: str) -> Profile:
    parsed = parse_netem(spec)
    return Profile(name, description, parsed, parsed)


# Registry of named profiles; parameters are documented in docs/impairment-lab.md.
PROFILES: dict[str, Profile] = {p.name: p for p in (
    _symmetric("clean", "no impairment (no qdisc installed)", ""),
    _symmetric("lossy-uniform-10", "10% independent loss, nothing else", "loss random 10%"),
    _symmetric("wifi-bursty", "busy Wi-Fi: short delay, jittery, bursty loss from interference",
               "delay 4ms 3ms 25% distribution normal loss gemodel 2% 40% 80% 0.2%"),
    _symmetric("cellular-edge", "cell edge: long jittery delay, bursty loss (handover, fading), "
               "narrow link", "delay 80ms 20ms 25% distribution normal "
               "loss gemodel 3% 25% 70% 0.5% rate 256kbit"),
    _symmetric("satellite", "geostationary hop: 300 ms one way, little jitter, rare loss bursts",
               "delay 300ms 5ms 25% distribution normal loss gemodel 0.5% 30% 90% 0.1%"),
    _symmetric("congested-4state", "congested path (netem 4-state model): loss bursts and "
               "isolated losses, some reordering", "delay 30ms 8ms loss state 1% 30% 10% 40% 0.5% "
               "reorder 1%"),
)}


def resolve_profile(profile: str | Profile) -> Profile:
    """A named profile, or a raw netem spec applied to both directions (ValueError otherwise)."""
    if isinstance(profile, Profile):
        return profile
    if profile in PROFILES:
        return PROFILES[profile]
    try:
        return _symmetric(profile, "custom netem spec", profile)
    except ValueError as exc:
        raise ValueError(f"{exc}\nOr use a named profile: {', '.join(PROFILES)}") from None
