"""Stream an audio file over RTP/RTCP to ``rtp_stream_recv.py`` (two processes, e.g. on 127.0.0.1).

    .venv/bin/python examples/rtp_stream_recv.py --port 5004 --out recv.wav &
    .venv/bin/python examples/rtp_stream_send.py speech.wav --to 127.0.0.1:5004 --limit-s 5

    # LargeSC payloads (weights: hub, or small untrained ones from make-test-weights)
    .venv/bin/largesc make-test-weights /tmp/w
    .venv/bin/python examples/rtp_stream_recv.py --port 5004 --codec largesc --weights /tmp/w --out recv24.wav &
    .venv/bin/python examples/rtp_stream_send.py speech.wav --to 127.0.0.1:5004 --codec largesc --weights /tmp/w

The RTP side is the same whatever the payload: an ``RtpSession`` paced on the
80 ms frame clock asks a *payload source* ``source(first_frame, frames) ->
bytes | None`` for one payload per packet, and an ``RtpTransport`` puts it on
UDP, sends RTCP reports and hands the peer's loss reports back.

Payload sources here:
  --codec pcmu (default): G.711 mu-law at 8 kHz (payload type 0, 640 samples
      per 80 ms frame), no codec dependency beyond numpy; any RTP tool can
      decode it.
  --codec largesc: LargeSC payloads from ``largesc_codec.sender.LargeSCSender``
      (payload type 96, 24 kHz clock); RTCP loss reports feed its controller.
      Needs --weights (hub, or a directory from ``largesc make-test-weights``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import wave
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from largesc_codec.cli.options import add_weights_argument  # noqa: E402
from largesc_codec.types import LossReport  # noqa: E402
from rtp.session import RtpSession, SessionConfig  # noqa: E402
from rtp.transport import RtpTransport  # noqa: E402

if TYPE_CHECKING:
    from largesc_codec.sender import SentPacket

PayloadSource = Callable[[int, int], Optional[bytes]]
PCMU_RATE, PCMU_FRAME = 8000, 640  # 80 ms at 8 kHz


def mulaw_encode(pcm16: npt.NDArray[np.int16]) -> bytes:
    """G.711 mu-law of int16 samples (the reference 14-bit segment encoder, as in g711.c)."""
    v = pcm16.astype(np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((v >> (seg + 1)) & 0x0F))  # seg 8: clipped
    return bytes((code ^ mask).astype(np.uint8).tobytes())


def read_wav_mono(path: str) -> tuple[npt.NDArray[np.float32], int]:
    """16-bit PCM WAV -> (float32 mono samples in [-1, 1], rate)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: pcmu mode reads 16-bit PCM WAV files only")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        return data.reshape(-1, w.getnchannels()).mean(axis=1), w.getframerate()


def pcmu_source(path: str, limit_s: float | None, done: asyncio.Event) -> PayloadSource:
    """Frames of the file resampled (linear) to 8 kHz and mu-law coded; sets ``done`` at the end."""
    mono, rate = read_wav_mono(path)
    if limit_s is not None:
        mono = mono[: int(limit_s * rate)]
    t = np.arange(0, len(mono) / rate, 1.0 / PCMU_RATE)
    pcm = (np.interp(t, np.arange(len(mono)) / rate, mono) * 32767).astype(np.int16)

    def source(first_frame: int, frames: int) -> bytes | None:
        chunk = pcm[first_frame * PCMU_FRAME : (first_frame + frames) * PCMU_FRAME]
        if len(chunk) == 0:
            done.set()
            return None
        return mulaw_encode(np.pad(chunk, (0, frames * PCMU_FRAME - len(chunk))))

    return source


class LargeScSource:
    """LargeSC payloads, encoded on a worker thread so the event loop keeps the RTP/RTCP clock.

    One single-thread executor owns the ``LargeSCSender``: it encodes up to
    ``LEAD`` packets ahead of the frame clock and also applies RTCP loss
    reports (in order with the encoding, never concurrently). ``__call__`` is
    the session's payload source and only pops ready payloads. A payload not
    ready when its frame is due is an overrun: the slot goes out empty and the
    payload, when it comes, is dropped as late (the receiver conceals it), as
    a real-time encoder would do.
    """

    LEAD = 3

    def __init__(self, args: argparse.Namespace, done: asyncio.Event) -> None:
        try:
            from largesc_codec.neural.framing import read_audio
            from largesc_codec.neural.model import load_models
            from largesc_codec.sender import LargeSCSender
        except ImportError as exc:
            raise SystemExit(f"--codec largesc needs the LargeSC codec pipeline: {exc}") from exc
        pcm, rate = read_audio(args.input)
        if args.limit_s is not None:
            pcm = pcm[: int(args.limit_s * rate)]
        models = load_models(args.weights, num_codebooks=args.max_codebooks)
        self.sender = LargeSCSender(models.new_mimi(), sample_rate=rate, channels=pcm.shape[1],
                                    max_codebooks=args.max_codebooks, frames_per_packet=args.ptime // 80)
        self.pcm, self.chunk, self.pos = pcm, max(1, rate // 50), 0
        self.pending: deque[SentPacket] = deque()
        self.finished = False  # the encoder has emitted its last packet
        self.done = done
        self.overruns = self.late = 0
        self.error: BaseException | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="largesc-encode")
        self._room = asyncio.Event()

    def _encode_next(self) -> tuple[list[SentPacket], bool]:
        """Worker thread: push PCM until at least one packet is complete (or the input ends)."""
        out: list[SentPacket] = []
        while not out and self.pos <= len(self.pcm):
            if self.pos < len(self.pcm):
                self.sender.push(self.pcm[self.pos : self.pos + self.chunk])
            else:
                self.sender.flush()
            self.pos += self.chunk
            out.extend(self.sender.pull())
        return out, self.pos > len(self.pcm)

    async def produce(self) -> None:
        """Keep ``LEAD`` packets ready; returns after the last one was encoded (or the encoder failed)."""
        loop = asyncio.get_running_loop()
        try:
            while not self.finished:
                if len(self.pending) >= self.LEAD:
                    self._room.clear()
                    await self._room.wait()
                    continue
                packets, self.finished = await loop.run_in_executor(self.executor, self._encode_next)
                self.pending.extend(packets)
        except Exception as exc:  # the stream ends; main() reports it
            self.error, self.finished = exc, True
            self.pending.clear()
            self.done.set()

    def on_loss_report(self, report: LossReport) -> None:
        """RTCP feedback for the controller, applied on the encoder thread between frames."""
        self.executor.submit(self.sender.on_loss_report, report)

    def __call__(self, first_frame: int, frames: int) -> bytes | None:
        while self.pending and self.pending[0].first_index < first_frame:
            self.pending.popleft()  # encoded too late for its slot
            self.late += 1
        self._room.set()
        if self.pending and self.pending[0].first_index == first_frame:
            return self.pending.popleft().payload
        if self.finished and not self.pending:
            self.done.set()
        else:
            self.overruns += 1
        return None

    def close(self) -> None:
        self.executor.shutdown(wait=True)


async def main(args: argparse.Namespace) -> None:
    host, _, port = args.to.rpartition(":")
    done = asyncio.Event()
    on_loss: Callable[[LossReport], None] | None = None
    largesc: LargeScSource | None = None
    producer: asyncio.Future[None] | None = None
    source: PayloadSource
    if args.codec == "pcmu":
        source = pcmu_source(args.input, args.limit_s, done)
        config = SessionConfig(payload_type=0, clock_rate=PCMU_RATE, frame_ticks=PCMU_FRAME,
                               frames_per_packet=args.ptime // 80, cname="send@" + args.host,
                               rtcp_min_interval_s=args.rtcp_min_s, session_bw_bps=64_000 + 16_000 * 80 / args.ptime)
    else:
        source = largesc = LargeScSource(args, done)
        on_loss = largesc.on_loss_report
        producer = asyncio.ensure_future(largesc.produce())
        while len(largesc.pending) < largesc.LEAD and not largesc.finished:  # pre-roll before the clock starts
            await asyncio.sleep(0.01)
        config = SessionConfig(payload_type=96, frames_per_packet=args.ptime // 80, cname="send@" + args.host,
                               rtcp_min_interval_s=args.rtcp_min_s)

    def loss_report(report: LossReport) -> None:
        print(f"peer report: {report}", flush=True)
        if on_loss is not None:
            on_loss(report)

    session = RtpSession(config, source=source, on_loss_report=loss_report)
    transport = RtpTransport(session, args.host, args.port, remote=(host, int(port)), rtcp_mux=args.mux)
    await transport.start()
    print(f"sending {args.input} ({args.codec}, ptime {args.ptime} ms) from {args.host}:{transport.local_rtp_port} "
          f"to {args.to}, SSRC {session.ssrc:#010x}", flush=True)
    try:
        await done.wait()
        await asyncio.sleep(args.linger_s)  # let the last RTCP exchange happen
    finally:
        await transport.stop(reason="end of file")
        if largesc is not None and producer is not None:
            producer.cancel()
            largesc.close()
    c = session.counters
    rtt = f"{session.rtt_ms:.1f} ms" if session.rtt_ms is not None else "n/a"
    print(f"sent {c['rtp_sent']} RTP, {c['rtcp_sent']} RTCP; heard {c['rtcp_received']} RTCP; "
          f"last peer report {session.peer_loss_report}; RTT {rtt}")
    if largesc is not None:
        if largesc.error is not None:
            raise SystemExit(f"error: the LargeSC encoder failed: {largesc.error!r}")
        print(f"encoder: {largesc.overruns} slots sent empty (not encoded in time), {largesc.late} late packets dropped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="audio file (pcmu: 16-bit WAV; largesc: anything PyAV reads)")
    p.add_argument("--to", required=True, help="receiver RTP address host:port")
    p.add_argument("--host", default="127.0.0.1", help="local address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="local even RTP port (default: any free pair)")
    p.add_argument("--mux", action="store_true", help="RTP and RTCP on one port (RFC 5761)")
    p.add_argument("--codec", choices=["pcmu", "largesc"], default="pcmu")
    add_weights_argument(p, "largesc: model weights")
    p.add_argument("--max-codebooks", type=int, default=8, help="largesc: codebooks per frame")
    p.add_argument("--ptime", type=int, default=80, help="packet duration in ms, multiple of 80 (default 80)")
    p.add_argument("--limit-s", type=float, default=None, help="send only the first N seconds")
    p.add_argument("--rtcp-min-s", type=float, default=5.0, help="RTCP minimum interval (RFC 3550: 5 s)")
    p.add_argument("--linger-s", type=float, default=0.5, help="wait after the last packet before BYE")
    args = p.parse_args(argv)
    if not Path(args.input).is_file():
        p.error(f"{args.input}: no such file")
    if args.ptime < 80 or args.ptime % 80:
        p.error("--ptime must be a positive multiple of 80")
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        p.error(f"--to {args.to}: give the receiver's address as HOST:PORT, e.g. 127.0.0.1:5004")
    if not 0 <= args.port <= 65534 or args.port % 2:
        p.error(f"--port {args.port}: give an even port 0..65534 (RTCP uses the next one; 0 picks a free pair)")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
