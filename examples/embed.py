"""LargeSC in your own program: a sender and a receiver, with a lossy network between them.

    largesc make-test-weights /tmp/w      # small untrained weights (audio out is then not speech)
    python examples/embed.py speech.wav received.wav --weights /tmp/w --loss 0.1

Weights: ``--weights``, else $LARGESC_WEIGHTS, else the hub (kyutai/moshiko-pytorch-bf16).

Sender: push PCM of any rate and channel count, pull payloads (one RTP packet
each). Receiver: push each payload when it arrives, pull 80 ms of 24 kHz audio
every 80 ms on the playout clock. Here the network is a seeded loss and delay
model and time is simulated (the run is faster than real time); a real program
puts the payloads into RTP (the ``rtp`` package: RtpSession, RtpTransport) and
pulls on a real 80 ms clock. docs/api.md describes every call.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
from collections import Counter

import numpy as np

import largesc_codec as lsc

SSRC = 0x1234ABCD  # the sender's RTP SSRC (a real sender draws it at random)
KINDS = ("primary", "recovered", "partial", "concealed", "comfort")  # how a played frame was obtained


class Network:
    """A seeded lossy path: each packet is lost with probability ``loss`` or arrives after delay + jitter."""

    def __init__(self, loss: float, delay_ms: float, jitter_ms: float, seed: int) -> None:
        self.loss, self.delay_ms, self.jitter_ms = loss, delay_ms, jitter_ms
        self.rng = random.Random(seed)
        self.in_flight: list[tuple[float, int, int, bytes]] = []  # heap of (arrival ms, seq, timestamp, payload)
        self.lost = 0

    def send(self, now_ms: float, seq: int, timestamp: int, payload: bytes) -> None:
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        arrival = now_ms + self.delay_ms + self.rng.uniform(0.0, self.jitter_ms)
        heapq.heappush(self.in_flight, (arrival, seq, timestamp, payload))

    def arrived(self, now_ms: float) -> list[tuple[float, int, int, bytes]]:
        """Packets that have arrived by ``now_ms``, in arrival order."""
        out = []
        while self.in_flight and self.in_flight[0][0] <= now_ms:
            out.append(heapq.heappop(self.in_flight))
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="speech file (WAV, FLAC, MP3, OGG, ...; any rate, mono or stereo)")
    p.add_argument("output", help="received audio, WAV 24 kHz mono")
    p.add_argument("--weights", default=os.environ.get("LARGESC_WEIGHTS", "hub"), help="hub or a weights directory")
    p.add_argument("--max-bps", type=float, default=1100.0, help="token bit rate budget (550..2062.5)")
    p.add_argument("--plc", choices=lsc.PLC_CHOICES, default="repeat", help="concealer")
    p.add_argument("--loss", type=float, default=0.1, help="packet loss probability")
    p.add_argument("--delay-ms", type=float, default=60.0, help="one-way network delay")
    p.add_argument("--jitter-ms", type=float, default=30.0, help="extra random delay, 0..this")
    p.add_argument("--seed", type=int, default=0, help="seed of the network's loss and jitter")
    args = p.parse_args()

    models = lsc.load_models(args.weights)
    audio = lsc.decode_audio(args.input)  # float32 (samples, channels)
    pcm = audio.pcm if audio.pcm.shape[1] <= 2 else audio.pcm.mean(axis=1, keepdims=True)
    sender = lsc.LargeSCSender(models.new_mimi(), sample_rate=audio.rate, channels=pcm.shape[1],
                               max_bps=args.max_bps)
    concealer = lsc.build_concealer(args.plc, models.load_lm)  # the LM is loaded only for --plc lm
    receiver = lsc.LargeSCReceiver(models.new_mimi(), concealer)
    network = Network(args.loss, args.delay_ms, args.jitter_ms, args.seed)
    feedback = lsc.LossStats(window=100)  # the receiver's loss estimate, from sequence gaps

    heard: list[np.ndarray] = []
    played: Counter[str] = Counter()
    seq = next_seq = fed = frames = packets = payload_bytes = held = skipped = 0
    last = -1  # index of the last frame played
    flushed = False
    now = 0.0
    while not (flushed and last >= frames - 1):
        # Sender side: the microphone delivered the audio up to now (any chunk size works).
        upto = min(len(pcm), int(now / 1000 * audio.rate))
        if upto > fed:
            sender.push(pcm[fed:upto])
            fed = upto
        elif fed == len(pcm) and not flushed:
            sender.flush()  # end of input: pad and send the last frame
            flushed = True
        for packet in sender.pull():  # SentPacket: first_index, payload, decisions (one per frame)
            frames += len(packet.decisions)
            packets += 1
            payload_bytes += len(packet.payload)
            timestamp = packet.first_index * lsc.FRAME_SAMPLES % 2**32  # RTP timestamp, 24 kHz clock
            network.send(now, seq, timestamp, packet.payload)
            seq = (seq + 1) % 2**16

        # Receiver side: insert what has arrived, then take one frame on the 80 ms playout clock.
        for arrival, s, ts, payload in network.arrived(now):
            gap = (s - next_seq) % 2**16
            if gap < 2**15:  # in order (a reordered packet was counted lost already)
                feedback.update_run(True, gap)
                feedback.update(False)
                next_seq = (s + 1) % 2**16
            receiver.push(SSRC, s, ts, payload, arrival)
        frame = receiver.pull(now)
        if frame is None:
            if last >= 0:  # the buffer holds to grow its delay: the listener hears silence
                heard.append(np.zeros(lsc.FRAME_SAMPLES, np.float32))
                held += 1
        else:
            index = frame.frame.index
            if flushed and index >= frames:
                break  # the clock ran past the stream's end (its last frame was skipped): not audio
            skipped += index - last - 1  # frames the buffer dropped to shrink its delay
            heard.append(frame.pcm)  # float32 (1920,), 24 kHz
            played[frame.frame.source.value] += 1
            last = index
            receiver.prepare_next()  # a speculative concealer works here, off the deadline path
        if now % 1000 < lsc.FRAME_MS:  # about once a second, as RTCP would carry it
            sender.on_loss_report(feedback.report())
        now += lsc.FRAME_MS

    out = np.concatenate(heard) if heard else np.zeros(0, np.float32)
    lsc.write_wav(args.output, out, lsc.SAMPLE_RATE)
    bps = payload_bytes * 8 / (frames * lsc.FRAME_MS / 1000)
    note = " (untrained weights: the audio is not speech)" if models.untrained else ""
    print(f"sent {frames} frames in {packets} packets, {network.lost} lost; payload {bps:.0f} bit/s")
    print("played " + ", ".join(f"{played[k]} {k}" for k in KINDS) + f"; {skipped} skipped, {held} held")
    print(f"wrote {args.output}: {len(out) / lsc.SAMPLE_RATE:.2f} s at {lsc.SAMPLE_RATE} Hz{note}")


if __name__ == "__main__":
    main()
