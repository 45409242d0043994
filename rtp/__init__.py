"""RTP for LargeSC: RFC 3550 RTP/RTCP, RFC 3611 XR loss reports and SDP (RFC 4566) syntax.

Sans-IO core: bytes and times in, bytes and decisions out, no sockets, no clock.

  packet          RTP packets, RFC 8285 header extension elements
  seqnum          all 16/32-bit wrap arithmetic, the unwrapper
  rtcp, rtcp_xr   SR/RR/SDES/BYE/APP and XR (Loss RLE) packets, compound parse
  ntp             NTP times, LSR/DLSR, RTT
  stats           receiver statistics (RFC 3550 A.1/A.3/A.8) and loss bursts
  interval        RTCP interval and timer (A.7)
  sdp             SDP syntax
  feedback        LossReport: what a receiver tells an adaptive sender
  config, session one endpoint: pacing, reports, peer loss feedback

``transport`` is the only module with sockets (asyncio UDP). This package
imports nothing else of the project, and neither torch nor moshi. The names
below are imported on first use, so ``import rtp`` loads no submodule.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the exports, for type checkers)
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# module -> public names it defines (tests/test_api.py checks this table against the block below).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "rtp.packet": ("ExtensionElement", "HeaderExtension", "RtpPacket"),
    "rtp.config": ("Datagram", "SessionConfig"),
    "rtp.session": ("PayloadSource", "RtpSession", "RtpSink"),
    "rtp.transport": ("RtpTransport",),
    "rtp.feedback": ("LossReport",),
    "rtp.stats": ("SourceStats",),
    "rtp.seqnum": ("Unwrapper",),
    "rtp.sdp": ("Media", "SessionDescription"),
}

if TYPE_CHECKING:
    from rtp.config import Datagram, SessionConfig
    from rtp.feedback import LossReport
    from rtp.packet import ExtensionElement, HeaderExtension, RtpPacket
    from rtp.sdp import Media, SessionDescription
    from rtp.seqnum import Unwrapper
    from rtp.session import PayloadSource, RtpSession, RtpSink
    from rtp.stats import SourceStats
    from rtp.transport import RtpTransport

_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)  # noqa: PLE0605  (built from the table above)


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:  # also how ``from rtp import sdp`` falls through to the submodule
        raise AttributeError(f"module 'rtp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
