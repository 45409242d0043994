"""Opus baseline over a lossy packet channel, with libopus's own PLC and in-band FEC.

Sender: 16 kHz mono speech -> 20 ms frames -> libopus (VoIP application, VBR,
complexity 10, in-band FEC enabled, expected loss percentage = the channel's
nominal loss so libopus decides itself whether to add LBRR/FEC data) -> one
packet per frame. Channel: the loss model drops whole packets (one draw per
packet). Receiver, one frame of look-ahead as a FEC-capable VoIP receiver has:

  * packet i arrived               -> normal decode
  * packet i lost, i+1 arrived     -> ``decode_fec=1`` with packet i+1 (rebuilds
    frame i from i+1's LBRR data; libopus conceals if it carries none)
  * packet i lost, i+1 lost too    -> ``decode(NULL)``: Opus concealment

The decoder output is shifted back by the encoder look-ahead (6.5 ms) so it is
sample-aligned with the input and has the same length.

Bitrates: ``payload_bps`` is the measured Opus payload (VBR lands below the
requested rate), ``wire_bps`` adds IPv4 + UDP + RTP headers (20 + 8 + 12 = 40
bytes) per packet, 50 packets/s, i.e. +16 kbit/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation.condition import CodecOutput
from largesc_codec.evaluation.data import resample
from largesc_codec.evaluation.libopus import OpusDecoder, OpusEncoder, packet_has_fec

OPUS_BITRATES = (6000, 9000, 12000, 16000, 24000)
OPUS_RATE = 16_000
OPUS_FRAME_MS = 20  # Opus packets of 20 ms (not the LargeSC frame)
HEADER_BYTES = 40  # IPv4 20 + UDP 8 + RTP 12


@dataclass
class OpusRun:
    """Result of one clip through Opus + channel.

    ``pcm``: float32 (samples,) at ``sample_rate`` (16 kHz), aligned with the input.
    Fractions are over all packets of the clip.
    """

    pcm: npt.NDArray[np.float32]
    sample_rate: int
    payload_bps: float
    wire_bps: float
    lost_fraction: float
    concealed_fraction: float  # frames played by plain concealment (no FEC data)
    fec_fraction: float  # lost frames rebuilt from the next packet's FEC data
    packets: list[bytes] = field(repr=False, default_factory=list)


def encode_packets(pcm16k: npt.NDArray[Any], bitrate: int, loss_percent: int,
                   inband_fec: bool = True) -> tuple[list[bytes], int]:
    """float32 mono (n,) at 16 kHz -> (one Opus packet per 20 ms, encoder look-ahead in samples)."""
    return encode_with(OpusEncoder(OPUS_RATE, bitrate, loss_percent, inband_fec=inband_fec), pcm16k)


def encode_with(enc: OpusEncoder, pcm16k: npt.NDArray[Any]) -> tuple[list[bytes], int]:
    """``encode_packets`` with an encoder set up by the caller (any libopus, any CTLs).

    The input is padded with the look-ahead plus zeros up to a whole frame so the
    decoded output can cover every input sample.
    """
    fs = enc.frame_samples
    need = len(pcm16k) + enc.lookahead
    padded = np.zeros(-(-need // fs) * fs, dtype=np.float32)
    padded[: len(pcm16k)] = pcm16k
    pcm = np.round(np.clip(padded, -1.0, 1.0) * 32767.0).astype(np.int16)
    return [enc.encode(pcm[i: i + fs]) for i in range(0, len(pcm), fs)], enc.lookahead


def decode_packets(packets: list[bytes], lost: npt.NDArray[np.bool_],
                   use_fec: bool = True) -> tuple[npt.NDArray[np.int16], int, int]:
    """Decode with losses -> (int16 pcm (frames * 320,), concealed frames, FEC-rebuilt frames).

    ``lost``: bool array (len(packets),), True where the channel dropped the packet.
    """
    if len(lost) != len(packets):
        raise ValueError(f"loss mask has {len(lost)} entries for {len(packets)} packets")
    dec = OpusDecoder(OPUS_RATE)
    out, concealed, rebuilt = [], 0, 0
    for i, packet in enumerate(packets):
        if not lost[i]:
            out.append(dec.decode(packet))
            continue
        nxt = i + 1 < len(packets) and not lost[i + 1]
        if use_fec and nxt:
            has_fec = packet_has_fec(packets[i + 1])
            out.append(dec.decode(packets[i + 1], fec=True))
            rebuilt += int(has_fec)
            concealed += int(not has_fec)
        else:
            out.append(dec.decode(None))
            concealed += 1
    pcm = np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
    return pcm, concealed, rebuilt


def opus_over_channel(pcm: npt.NDArray[Any], sample_rate: int, bitrate: int,
                      lost_fn: Callable[[int], npt.NDArray[np.bool_]],
                      loss_percent: int, use_fec: bool = True) -> OpusRun:
    """Run one clip (float mono (n,) at any rate) through Opus at ``bitrate`` bit/s.

    ``lost_fn(n_packets)`` returns the channel's bool loss mask (True = lost).
    ``loss_percent`` is what the encoder is told to expect (0..100).
    """
    x = resample(np.asarray(pcm, dtype=np.float32), sample_rate, OPUS_RATE)
    packets, lookahead = encode_packets(x, bitrate, loss_percent, inband_fec=use_fec)
    lost = np.asarray(lost_fn(len(packets)), dtype=bool)
    decoded, concealed, rebuilt = decode_packets(packets, lost, use_fec=use_fec)
    return make_run(packets, lost, decoded, lookahead, len(x), concealed, rebuilt)


def make_run(packets: list[bytes], lost: npt.NDArray[np.bool_], decoded: npt.NDArray[np.int16],
             lookahead: int, n_samples: int, concealed: int, rebuilt: int) -> OpusRun:
    """The OpusRun of decoded int16 16 kHz output (trimmed by ``lookahead`` to ``n_samples``)."""
    y = decoded[lookahead: lookahead + n_samples].astype(np.float32) / 32768.0
    seconds = len(packets) * OPUS_FRAME_MS / 1000.0
    payload_bytes = sum(len(p) for p in packets)
    n = max(len(packets), 1)
    return OpusRun(
        pcm=y, sample_rate=OPUS_RATE,
        payload_bps=payload_bytes * 8 / seconds,
        wire_bps=(payload_bytes + HEADER_BYTES * len(packets)) * 8 / seconds,
        lost_fraction=float(lost.mean()) if len(lost) else 0.0,
        concealed_fraction=concealed / n, fec_fraction=rebuilt / n, packets=packets)


class OpusCodec:
    """A codec callable for the runner: ``(pcm, sample_rate, channel) -> CodecOutput``.

    ``channel`` is a seeded loss model of ``largesc_codec.sim.channel`` (one draw per
    20 ms packet). The expected-loss setting given to libopus is the channel's
    nominal loss rate (``expected_loss_rate``) rounded to a whole percent, as a
    sender that learns the loss from RTCP reports would set it.
    """

    def __init__(self, bitrate: int, use_fec: bool = True) -> None:
        if not 500 <= bitrate <= 512_000:
            raise ValueError(f"Opus bitrate {bitrate} bit/s is outside libopus's 500..512000")
        self.bitrate = bitrate
        self.use_fec = use_fec

    def __call__(self, pcm: npt.NDArray[Any], sample_rate: int, channel: Any) -> Any:
        from largesc_codec.evaluation.losses import channel_loss_rate, channel_losses

        run = opus_over_channel(
            pcm, sample_rate, self.bitrate, lambda n: channel_losses(channel, n),
            loss_percent=round(100 * channel_loss_rate(channel)), use_fec=self.use_fec)
        return CodecOutput(run.pcm, run.sample_rate, run.payload_bps, run.wire_bps,
                           run.concealed_fraction,
                           {"lost_fraction": run.lost_fraction, "fec_fraction": run.fec_fraction,
                            "plc_fraction": run.concealed_fraction})
