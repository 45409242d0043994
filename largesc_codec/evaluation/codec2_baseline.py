"""Codec 2 baseline (libcodec2 1.2 through PyPI ``pycodec2``) over a lossy packet channel.

Codec 2 is the open low-rate speech codec a user would pick at LargeSC's bit
rates (0.7-3.2 kbit/s). Sender: the clip resampled to 8 kHz (Codec 2's only
rate) with the project's resampler (``data.resample``), int16, one Codec 2
frame every 20 ms (modes 3200, 2400) or 40 ms (1600, 1300, 700C), each frame
padded to whole bytes as a frame must be on its own (1300: 52 bits -> 7 bytes,
700C: 28 -> 4). Packets: a ptime of 40 ms for every mode (two 20 ms frames or
one 40 ms frame a packet), 25 packets/s, one channel draw per packet.

Receiver, a simple repeat/fade PLC: a lost packet decodes the last received
packet's frames again (the decoder's parameter interpolation keeps the sound
continuous) at gain 1, 0.5, 0.25, ... for the 1st, 2nd, 3rd ... packet of a
loss run (-6 dB per 40 ms), silence until one arrives if none was received
yet; the output is resampled back to the clip's rate. No delay compensation:
Codec 2 is parametric (the decoded waveform correlates 0.1-0.2 with the input
at any lag), so only the non-intrusive and the alignment-searching metrics
(PLCMOS, ViSQOL, WER) make sense for it.

Bitrates: ``payload_bps`` is the bytes sent (e.g. 1300 -> 1400 bit/s after the
byte padding), ``wire_bps`` adds IPv4 + UDP + RTP (40 bytes) per packet:
+8 kbit/s at 25 packets/s, five times the payload at 1.6 kbit/s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation.condition import CodecOutput
from largesc_codec.evaluation.data import resample
from largesc_codec.evaluation.opus_baseline import HEADER_BYTES

CODEC2_RATE = 8000
CODEC2_MODES = ("3200", "2400", "1600", "1300", "700c")  # names as the conditions use them
PTIME_MS = 40
FADE_PER_PACKET = 0.5  # PLC gain factor for each further lost packet of a run
_PYCODEC2_MODE = {"3200": 3200, "2400": 2400, "1600": 1600, "1300": 1300, "700c": 700}


def _codec2(mode: str) -> Any:
    if mode not in _PYCODEC2_MODE:
        raise ValueError(f"Codec 2 mode {mode!r} is not one of {CODEC2_MODES}")
    try:
        import pycodec2
    except ImportError as exc:
        raise ImportError("Codec 2 needs pycodec2: pip install -r requirements/runtime.txt") from exc
    return pycodec2.Codec2(_PYCODEC2_MODE[mode])


def encode_packets(pcm8k: npt.NDArray[Any], mode: str) -> tuple[list[bytes], int]:
    """float mono (n,) at 8 kHz -> (one packet of PTIME_MS per entry, samples per packet).

    The input is padded with zeros to whole packets.
    """
    enc = _codec2(mode)
    frame = int(enc.samples_per_frame())
    per_packet = CODEC2_RATE * PTIME_MS // 1000
    if per_packet % frame:
        raise ValueError(f"{PTIME_MS} ms packets do not hold whole {mode} frames of {frame} samples")
    padded = np.zeros(-(-len(pcm8k) // per_packet) * per_packet, dtype=np.float32)
    padded[: len(pcm8k)] = pcm8k
    pcm = np.round(np.clip(padded, -1.0, 1.0) * 32767.0).astype(np.int16)
    # pycodec2's encode runs codec2_encode once: one frame a call.
    packets = [b"".join(enc.encode(np.ascontiguousarray(pcm[j: j + frame]))
                        for j in range(i, i + per_packet, frame))
               for i in range(0, len(pcm), per_packet)]
    return packets, per_packet


def decode_packets(packets: list[bytes], lost: npt.NDArray[np.bool_], mode: str,
                   per_packet: int) -> tuple[npt.NDArray[np.float32], int]:
    """Decode with the repeat/fade PLC -> (float32 pcm (packets * per_packet,) at 8 kHz, concealed packets)."""
    if len(lost) != len(packets):
        raise ValueError(f"loss mask has {len(lost)} entries for {len(packets)} packets")
    dec = _codec2(mode)
    nbytes = int(dec.bytes_per_frame())

    def decode(packet: bytes) -> npt.NDArray[np.float32]:
        # pycodec2's decode runs codec2_decode once: one frame a call, whatever it is given.
        frames = [dec.decode(packet[i: i + nbytes]) for i in range(0, len(packet), nbytes)]
        return np.concatenate(frames).astype(np.float32) / 32768.0

    out: list[npt.NDArray[np.float32]] = []
    last: bytes | None = None
    run = 0
    for packet, is_lost in zip(packets, lost):
        if not is_lost:
            last, run = packet, 0
            out.append(decode(packet))
            continue
        run += 1
        if last is None:
            out.append(np.zeros(per_packet, dtype=np.float32))
        else:
            out.append(decode(last) * FADE_PER_PACKET ** (run - 1))
    pcm = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
    return pcm, int(np.count_nonzero(lost))


class Codec2Codec:
    """A codec callable for the runner: ``(pcm, sample_rate, channel) -> CodecOutput`` at ``mode``."""

    def __init__(self, mode: str) -> None:
        _codec2(mode)  # fail at set-up, not mid-run, on a bad mode or a missing pycodec2
        self.mode = mode

    def __call__(self, pcm: npt.NDArray[Any], sample_rate: int, channel: Any) -> CodecOutput:
        from largesc_codec.evaluation.losses import channel_losses

        x = resample(np.asarray(pcm, dtype=np.float32), sample_rate, CODEC2_RATE)
        packets, per_packet = encode_packets(x, self.mode)
        lost = channel_losses(channel, len(packets))
        y8, concealed = decode_packets(packets, lost, self.mode, per_packet)
        y = resample(y8[: len(x)], CODEC2_RATE, sample_rate)[: len(pcm)]
        seconds = len(packets) * PTIME_MS / 1000.0
        payload = sum(len(p) for p in packets)
        n = max(len(packets), 1)
        return CodecOutput(y, sample_rate, payload * 8 / seconds,
                           (payload + HEADER_BYTES * len(packets)) * 8 / seconds, concealed / n,
                           {"lost_fraction": float(lost.mean()) if len(lost) else 0.0,
                            "plc_fraction": concealed / n})
