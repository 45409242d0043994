"""Opus 1.5.2 baseline: deep PLC + NoLACE, and DRED, over a lossy packet channel.

Sender as the 1.3.1 baseline (``opus_baseline``: 16 kHz, 20 ms packets, VoIP,
VBR, complexity 10, in-band FEC on, expected loss = the channel's nominal
loss), on the project's 1.5.2 build (``libopus15``). With ``dred_ms`` > 0 the
encoder sends Deep REDundancy (``OPUS_SET_DRED_DURATION``, units of 10 ms)
INSTEAD of in-band FEC: libopus spends DRED bits only when told to expect
loss, out of the same bitrate budget (compute_dred_bitrate: a share of
bitrate - 12 kbit/s, or of bitrate - 20 kbit/s with LBRR on, and none unless
that buys two 40 ms chunks). Measured on a LibriVox clip: with LBRR on, DRED
got bits only at 32 kbit/s and 20 % loss; with it off, DRED reaches back
55-75 ms at 24 kbit/s / 10 % loss, 135-155 ms at 20 %, 95-195 ms at 32 kbit/s,
and nothing at all at 16 kbit/s (so ``opus15-dred-16k`` is 1.5.2 without FEC).

Receiver: decoder complexity 7 (deep PLC, LACE/NoLACE enhancement of SILK
frames). Lost frames are filled when the next packet arrives, as libopus's
own ``opus_demo`` does (src/opus_demo.c), i.e. the receiver may wait as long
as a loss burst lasts (a jitter buffer of that depth):

  * the last lost frame before the packet, if that packet has LBRR -> FEC decode
  * other lost frames, if that packet has DRED -> ``opus_decoder_dred_decode``
    (counted as DRED where the DRED covers the whole frame; libopus fills the
    part it does not cover with deep PLC)
  * the rest (and losses at the end of the clip) -> ``decode(NULL)``: deep PLC
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation.condition import CodecOutput
from largesc_codec.evaluation.data import resample
from largesc_codec.evaluation.libopus import SET_DRED_DURATION, OpusDecoder, OpusEncoder
from largesc_codec.evaluation.libopus15 import DECODER_COMPLEXITY, DredDecoder, libopus15, packet_has_lbrr
from largesc_codec.evaluation.opus_baseline import OPUS_RATE, OpusRun, encode_with, make_run

OPUS15_BITRATES = (6000, 9000, 12000, 16000, 24000)
DRED_BITRATES = (16000, 24000, 32000)  # DRED gets bits from about 12 kbit/s up
DRED_MS = 1000  # redundancy depth: 1 s (opus's maximum is 1.04 s)


def encode15(pcm16k: npt.NDArray[Any], bitrate: int, loss_percent: int, inband_fec: bool = True,
             dred_ms: int = 0) -> tuple[list[bytes], int]:
    """float32 mono (n,) at 16 kHz -> (one 1.5.2 packet per 20 ms, look-ahead in samples)."""
    enc = OpusEncoder(OPUS_RATE, bitrate, loss_percent, inband_fec=inband_fec, lib=libopus15())
    if dred_ms:
        enc.ctl(SET_DRED_DURATION, ctypes.c_int32(dred_ms // 10))
    return encode_with(enc, pcm16k)


def decode15(packets: list[bytes], lost: npt.NDArray[np.bool_], use_fec: bool = True,
             use_dred: bool = False) -> tuple[npt.NDArray[np.int16], dict[str, int]]:
    """Decode with losses -> (int16 pcm (frames * 320,), frame counts ``plc`` / ``fec`` / ``dred``)."""
    if len(lost) != len(packets):
        raise ValueError(f"loss mask has {len(lost)} entries for {len(packets)} packets")
    dec = OpusDecoder(OPUS_RATE, lib=libopus15(), complexity=DECODER_COMPLEXITY)
    dred = DredDecoder() if use_dred else None
    fs = dec.frame_samples
    counts = {"plc": 0, "fec": 0, "dred": 0}
    out: list[npt.NDArray[np.int16]] = []
    gap = 0  # lost frames waiting for the next packet
    for packet, is_lost in zip(packets, lost):
        if is_lost:
            gap += 1
            continue
        # One frame more than the gap: DRED's first feature lies a few ms back (dred_offset).
        reach = dred.parse(packet, (gap + 1) * fs, OPUS_RATE) if dred is not None and gap else 0
        for k in range(gap):
            offset = (gap - k) * fs  # samples before this packet where lost frame k starts
            if k == gap - 1 and use_fec and packet_has_lbrr(packet):
                out.append(dec.decode(packet, fec=True))
                counts["fec"] += 1
            elif dred is not None and reach > 0:
                # As opus_demo: libopus uses the DRED features it has and deep PLC for the rest.
                out.append(dred.decode(dec, offset, fs))
                counts["dred" if offset <= reach else "plc"] += 1
            else:
                out.append(dec.decode(None))
                counts["plc"] += 1
        out.append(dec.decode(packet))
        gap = 0
    for _ in range(gap):
        out.append(dec.decode(None))
        counts["plc"] += 1
    pcm = np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
    return pcm, counts


def opus15_over_channel(pcm: npt.NDArray[Any], sample_rate: int, bitrate: int,
                        lost_fn: Callable[[int], npt.NDArray[np.bool_]], loss_percent: int,
                        use_fec: bool = True, dred_ms: int = 0) -> tuple[OpusRun, dict[str, int]]:
    """One clip (float mono (n,), any rate) through Opus 1.5.2 -> (OpusRun, frame counts of decode15).

    ``OpusRun.fec_fraction`` counts FEC and DRED rebuilds together; the counts split them.
    """
    x = resample(np.asarray(pcm, dtype=np.float32), sample_rate, OPUS_RATE)
    packets, lookahead = encode15(x, bitrate, loss_percent, use_fec, dred_ms)
    lost = np.asarray(lost_fn(len(packets)), dtype=bool)
    decoded, counts = decode15(packets, lost, use_fec, use_dred=dred_ms > 0)
    run = make_run(packets, lost, decoded, lookahead, len(x), counts["plc"], counts["fec"] + counts["dred"])
    return run, counts


class Opus15Codec:
    """A codec callable for the runner, like ``OpusCodec`` but on libopus 1.5.2.

    ``dred_ms`` > 0 adds DRED of that depth (ms, multiple of 10, at most 1040);
    ``use_fec`` (in-band LBRR) defaults to on without DRED and off with it.
    """

    def __init__(self, bitrate: int, dred_ms: int = 0, use_fec: bool | None = None) -> None:
        if not 500 <= bitrate <= 512_000:
            raise ValueError(f"Opus bitrate {bitrate} bit/s is outside libopus's 500..512000")
        if not 0 <= dred_ms <= 1040 or dred_ms % 10:
            raise ValueError(f"DRED depth {dred_ms} ms must be a multiple of 10 in 0..1040")
        self.bitrate, self.dred_ms = bitrate, dred_ms
        self.use_fec = dred_ms == 0 if use_fec is None else use_fec

    def __call__(self, pcm: npt.NDArray[Any], sample_rate: int, channel: Any) -> CodecOutput:
        from largesc_codec.evaluation.losses import channel_loss_rate, channel_losses

        run, counts = opus15_over_channel(
            pcm, sample_rate, self.bitrate, lambda n: channel_losses(channel, n),
            round(100 * channel_loss_rate(channel)), self.use_fec, self.dred_ms)
        n = max(len(run.packets), 1)
        return CodecOutput(run.pcm, run.sample_rate, run.payload_bps, run.wire_bps, run.concealed_fraction,
                           {"lost_fraction": run.lost_fraction, "fec_fraction": counts["fec"] / n,
                            "dred_fraction": counts["dred"] / n, "plc_fraction": run.concealed_fraction})
