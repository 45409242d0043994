"""RTP for LargeSC: RFC 3550 RTP/RTCP, RFC 3611 XR loss reports and SDP offer/answer.

Sans-IO core (``packet``, ``seqnum``, ``rtcp``, ``rtcp_xr``, ``stats``,
``interval``, ``sdp``, ``offer_answer``, ``session``): bytes and times in,
bytes and decisions out, no sockets and no clock. ``transport`` is the only
module with sockets (asyncio UDP). This package imports neither torch nor
moshi; from the codec it uses only ``largesc_codec.types.LossReport``.
"""

from .packet import HeaderExtension, RtpPacket
from .session import Datagram, RtpSession, SessionConfig

__all__ = ["Datagram", "HeaderExtension", "RtpPacket", "RtpSession", "SessionConfig"]
