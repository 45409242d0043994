"""Receive the RTP stream of ``rtp_stream_send.py`` and write it to a WAV file.

    .venv/bin/python examples/rtp_stream_recv.py --port 5004 --out recv.wav &
    .venv/bin/python examples/rtp_stream_send.py speech.wav --to 127.0.0.1:5004 --limit-s 5

    # LargeSC payloads (weights: hub, or small untrained ones from make-test-weights)
    .venv/bin/largesc make-test-weights /tmp/w
    .venv/bin/python examples/rtp_stream_recv.py --port 5004 --codec largesc --weights /tmp/w --out recv24.wav &
    .venv/bin/python examples/rtp_stream_send.py speech.wav --to 127.0.0.1:5004 --codec largesc --weights /tmp/w

Received packets reach ``on_rtp(packet, now_ms)``; the session keeps the
RFC 3550 receiver statistics and sends RTCP reports (RR + SDES + XR Loss RLE)
back to the sender, which learns loss fraction and mean burst length from
them. The run ends on the sender's BYE, after --timeout-s without any
datagram once the stream has started, or after --first-timeout-s if nothing
arrives at all (generous: a LargeSC sender loads its models first).

  --codec pcmu (default): mu-law payloads are decoded and placed by RTP
      timestamp; a lost packet becomes silence (no jitter buffer: this is an
      RTP demo, not a player). Output: 8 kHz WAV.
  --codec largesc: payloads go into ``largesc_codec.receiver.LargeSCReceiver``
      (jitter buffer + token-domain concealment), pulled every 80 ms on the
      playout clock; decoding runs on a worker thread so the event loop keeps
      the RTP/RTCP clock. Output: 24 kHz WAV. Needs --weights.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from largesc_codec.cli.options import add_weights_argument  # noqa: E402
from largesc_codec.neural.plc import PLC_CHOICES  # noqa: E402  (light: no torch)
from rtp.packet import RtpPacket  # noqa: E402
from rtp.seqnum import Unwrapper  # noqa: E402
from rtp.session import RtpSession, SessionConfig  # noqa: E402
from rtp.transport import RtpTransport, monotonic_ms  # noqa: E402

PCMU_RATE, PCMU_FRAME = 8000, 640


def mulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    """G.711 mu-law bytes -> int16 samples."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


class PcmuSink:
    """Places decoded packets by (unwrapped) RTP timestamp; gaps stay silent."""

    def __init__(self) -> None:
        self.unwrap = Unwrapper(32)
        self.first: int | None = None
        self.chunks: dict[int, npt.NDArray[np.int16]] = {}

    def __call__(self, packet: RtpPacket, now_ms: float) -> None:
        ts = self.unwrap.extend(packet.timestamp)
        self.first = ts if self.first is None else min(self.first, ts)
        self.chunks[ts] = mulaw_decode(packet.payload)

    def write(self, path: str, trim_tail: bool = False) -> float:
        """Write the WAV (``trim_tail`` is for the LargeSC sink's signature); returns its seconds."""
        if self.first is None:
            return 0.0
        end = max(ts + len(c) for ts, c in self.chunks.items())
        out = np.zeros(end - self.first, dtype=np.int16)
        for ts, c in self.chunks.items():
            out[ts - self.first : ts - self.first + len(c)] = c
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(PCMU_RATE)
            w.writeframes(out.astype("<i2").tobytes())
        return len(out) / PCMU_RATE


class LargeScSink:
    """LargeSC receiver: push on arrival, pull one 80 ms frame per playout tick.

    The ``LargeSCReceiver`` belongs to one worker thread: pushes (with their
    arrival time, taken on the loop) and pulls (which run the Mimi decoder)
    are queued to it in order, so the event loop never waits for the codec.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        try:
            from largesc_codec.neural.model import load_models
            from largesc_codec.neural.plc import build_concealer
            from largesc_codec.receiver import LargeSCReceiver
        except ImportError as exc:
            raise SystemExit(f"--codec largesc needs the LargeSC codec pipeline: {exc}") from exc
        models = load_models(args.weights, num_codebooks=args.max_codebooks)
        concealer = build_concealer(args.plc, models.load_lm)
        self.receiver: Any = LargeSCReceiver(models.new_mimi(), concealer, codebooks=args.max_codebooks)
        self.frames: list[npt.NDArray[np.float32]] = []
        self.received_frames = 0  # frames[:received_frames] ends with the last frame made from packets
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="largesc-decode")

    def __call__(self, packet: RtpPacket, now_ms: float) -> None:
        self.executor.submit(self.receiver.push, packet.ssrc, packet.sequence_number, packet.timestamp,
                             packet.payload, now_ms)

    async def playout(self) -> None:
        loop = asyncio.get_running_loop()
        next_ms = monotonic_ms()
        while True:
            played = await loop.run_in_executor(self.executor, self.receiver.pull, monotonic_ms())
            if played is not None:
                self.frames.append(played.pcm)
                if played.frame.source.received:
                    self.received_frames = len(self.frames)
            next_ms += 80.0
            await asyncio.sleep(max(0.0, (next_ms - monotonic_ms()) / 1000.0))

    def write(self, path: str, trim_tail: bool = False) -> float:
        """Write the WAV; ``trim_tail`` (the sender said BYE) drops concealment played after its last frame."""
        from largesc_codec.neural.framing import write_wav

        self.executor.shutdown(wait=True)
        frames = self.frames[: self.received_frames] if trim_tail else self.frames
        pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)
        write_wav(path, pcm, 24_000)
        s = self.receiver.status()
        named = {"packets": s.packets, "malformed": s.malformed, "late_used": s.late_used,
                 **{source.value: n for source, n in s.frames.items()}}
        counts = ", ".join(f"{k} {v}" for k, v in sorted(named.items()) if v)
        jb = s.jitter
        print(f"LargeSC receiver: {counts}; jitter buffer: {jb.skipped} frames skipped (delay shrunk), "
              f"{jb.late} packets late", flush=True)
        return len(pcm) / 24_000


def waiting_over(transport: RtpTransport, started_ms: float, args: argparse.Namespace) -> bool:
    """Idle limit: --first-timeout-s until the first datagram, then --timeout-s after the latest one."""
    last = transport.last_received_ms
    if last is None:
        return monotonic_ms() - started_ms > float(args.first_timeout_s) * 1000.0
    return monotonic_ms() - last > float(args.timeout_s) * 1000.0


async def main(args: argparse.Namespace) -> None:
    sink: Any = PcmuSink() if args.codec == "pcmu" else LargeScSink(args)
    clock = (PCMU_RATE, PCMU_FRAME) if args.codec == "pcmu" else (24_000, 1_920)
    bye = asyncio.Event()
    seen: dict[int, Any] = {}  # SSRC -> its SourceStats (a BYE removes it from the session)

    def on_rtp(packet: RtpPacket, now_ms: float) -> None:
        seen.setdefault(packet.ssrc, session.sources[packet.ssrc])
        sink(packet, now_ms)

    # session bandwidth sets the RTCP share (5 %): PCMU is 64 kbit/s plus headers, LargeSC about 6
    config = SessionConfig(clock_rate=clock[0], frame_ticks=clock[1], cname="recv@" + args.host,
                           rtcp_min_interval_s=args.rtcp_min_s,
                           session_bw_bps=80_000.0 if args.codec == "pcmu" else 8_000.0)
    session = RtpSession(config, on_rtp=on_rtp, on_bye=lambda ssrc: bye.set())
    transport = RtpTransport(session, args.host, args.port, rtcp_mux=args.mux)
    await transport.start()
    print(f"listening on {args.host}:{transport.local_rtp_port} (RTCP {transport.local_rtcp_port})", flush=True)
    playout = asyncio.ensure_future(sink.playout()) if hasattr(sink, "playout") else None
    started_ms = monotonic_ms()
    while not bye.is_set() and not waiting_over(transport, started_ms, args):
        try:
            await asyncio.wait_for(bye.wait(), 0.2)
        except asyncio.TimeoutError:
            pass
    if playout is not None:
        await asyncio.sleep(0.5)  # drain the jitter buffer
        playout.cancel()
        try:
            await playout
        except asyncio.CancelledError:
            pass
    await transport.stop(bye=True, reason="receiver done")
    seconds = sink.write(args.out, trim_tail=bye.is_set())
    c = session.counters
    print(f"received {c['rtp_received']} RTP, {c['rtcp_received']} RTCP, {c['rtp_malformed']} malformed; "
          f"{'BYE' if bye.is_set() else 'timeout'}; wrote {seconds:.2f} s to {args.out}")
    for s in seen.values():
        print(f"  SSRC {s.ssrc:#010x}: lost {s.cumulative_lost} of {s.expected}, jitter {s.jitter / clock[0] * 1000:.2f} ms")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="local address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5004, help="local even RTP port (default 5004)")
    p.add_argument("--mux", action="store_true", help="RTP and RTCP on one port (RFC 5761)")
    p.add_argument("--out", default="recv.wav", help="output WAV")
    p.add_argument("--codec", choices=["pcmu", "largesc"], default="pcmu")
    add_weights_argument(p, "largesc: model weights")
    p.add_argument("--max-codebooks", type=int, default=8)
    p.add_argument("--plc", choices=PLC_CHOICES, default="repeat", help="largesc: concealer name (default repeat)")
    p.add_argument("--timeout-s", type=float, default=10.0,
                   help="end after this long without datagrams, once the stream has started (default 10)")
    p.add_argument("--first-timeout-s", type=float, default=300.0,
                   help="give up if nothing arrives within this long of starting (default 300)")
    p.add_argument("--rtcp-min-s", type=float, default=5.0, help="RTCP minimum interval (RFC 3550: 5 s)")
    args = p.parse_args(argv)
    if not Path(args.out).resolve().parent.is_dir():
        p.error(f"--out {args.out}: its directory does not exist; create it or write elsewhere")
    if not 0 <= args.port <= 65534 or args.port % 2:
        p.error(f"--port {args.port}: give an even port 0..65534 (RTCP uses the next one; 0 picks a free pair)")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
