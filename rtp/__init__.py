"""RTP for LargeSC: RFC 3550 RTP/RTCP, RFC 3611 XR loss reports and SDP offer/answer.

Sans-IO core: bytes and times in, bytes and decisions out, no sockets, no clock.

  packet          RTP packets, RFC 8285 header extension elements
  seqnum          all 16/32-bit wrap arithmetic, the unwrapper
  rtcp, rtcp_xr   SR/RR/SDES/BYE/APP and XR (Loss RLE) packets, compound parse
  ntp             NTP times, LSR/DLSR, RTT
  stats           receiver statistics (RFC 3550 A.1/A.3/A.8) and loss bursts
  interval        RTCP interval and timer (A.7)
  sdp             SDP syntax
  offer_answer    codecs, offer/answer; largesc_params: LargeSC's SDP parameters
  config, session one endpoint: pacing, reports, peer loss feedback

``transport`` is the only module with sockets (asyncio UDP). This package imports neither torch nor
moshi; from the codec it uses only ``largesc_codec.types.LossReport``.
"""

from rtp.packet import HeaderExtension, RtpPacket
from rtp.session import Datagram, RtpSession, SessionConfig

__all__ = ["Datagram", "HeaderExtension", "RtpPacket", "RtpSession", "SessionConfig"]
