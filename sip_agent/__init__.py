"""The LargeSC SIP agent: pjsua2 signalling, LargeSC media engines, the netem impairment lab.

  sip/       the only pjsua2 importers: endpoint, account, agent, call, negotiation, SDP rewriting
  media/     the media engine interface and registry, the RTP thread, the raw and largesc engines
  lab/       network namespaces, netem backends, UML, capture and analysis (the only pyroute2 importer)
  commands   adds ``call``, ``answer`` and ``register`` to the ``largesc`` command

The names below are imported on first use: ``import sip_agent`` loads neither
pjsua2 nor torch; ``Agent`` and its settings load pjsua2 when touched.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the exports, for type checkers)
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# module -> public names it defines (tests/test_api.py checks this table against the block below).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "sip_agent.sip.agent": ("Agent",),
    "sip_agent.sip.account": ("AccountSettings",),
    "sip_agent.sip.call": ("CallOptions",),
    "sip_agent.sip.call_result": ("CallResult",),
    "sip_agent.sip.endpoint": ("EndpointConfig",),
    "sip_agent.media.engine": ("EngineFactory", "MediaEngine", "engine_factory", "register_engine"),
    "sip_agent.media.types": ("AudioFiles", "LargeScLink", "MediaStats"),
}

if TYPE_CHECKING:
    from sip_agent.media.engine import EngineFactory, MediaEngine, engine_factory, register_engine
    from sip_agent.media.types import AudioFiles, LargeScLink, MediaStats
    from sip_agent.sip.account import AccountSettings
    from sip_agent.sip.agent import Agent
    from sip_agent.sip.call import CallOptions
    from sip_agent.sip.call_result import CallResult
    from sip_agent.sip.endpoint import EndpointConfig

_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)  # noqa: PLE0605  (built from the table above)


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'sip_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
