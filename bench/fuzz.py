"""Fuzz every wire parser: at least 10^6 inputs each, counts per outcome (``make fuzz``).

Parsers: the LargeSC payload (``largesc_codec.wire.payload.unpack``), RTP
(``rtp.packet.parse``), compound RTCP with XR (``rtp.rtcp.parse_compound``),
SDP (``rtp.sdp.parse``) and the LargeSC offer/answer on a parsed offer
(``largesc_codec.wire.offer_answer.make_answer``). Inputs are mutations of
valid seeds (bit flips, byte changes, truncation, splices, length-field
overwrites, duplicated chunks) and random bytes, from a fixed seed per
worker, so a run is reproducible. Outcomes: ``parsed`` (a value came back),
``refused`` (ValueError, the documented rejection), ``CRASH`` (any other
exception: a bug; the first input of each kind is printed in hex) and
``slow`` (one input over 50 ms, which the cost bound forbids).

    .venv/bin/python bench/fuzz.py [--inputs 1000000] [--jobs 2] [--parser NAME ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from largesc_codec.wire import offer_answer, payload  # noqa: E402
from rtp import packet, rtcp, sdp  # noqa: E402
from rtp.rtcp_xr import LossRleBlock, XrPacket  # noqa: E402

SLOW_S = 0.05


def _seeds_payload() -> list[bytes]:
    return [payload.pack(payload.Payload(primary=((5,) * k,), redundant=(payload.Block(d, (9,) * (k // 2 or 1)),)))
            for k, d in ((1, 1), (4, 2), (8, 3), (32, 7))] + [payload.pack(payload.Payload(primary=((1, 2),) * 3))]


def _seeds_rtp() -> list[bytes]:
    ext = packet.build_extension([packet.ExtensionElement(1, b"ab")])
    return [packet.serialize(packet.RtpPacket(96, 7, 1920, 0xABCD, b"payload")),
            packet.serialize(packet.RtpPacket(0, 1, 160, 1, b"x" * 160, marker=True, csrc=(1, 2), extension=ext))]


def _seeds_rtcp() -> list[bytes]:
    block = rtcp.ReportBlock(2, 10, 5, 70000, 30, 1, 2)
    return [rtcp.serialize_compound([rtcp.SenderReport(1, 1 << 40, 1920, 10, 200, (block,)),
                                     rtcp.Sdes((rtcp.SdesChunk(1, ((rtcp.SDES_CNAME, "a@b"),)),)),
                                     XrPacket(1, (LossRleBlock.of(2, 100, [True, False] * 40),)),
                                     rtcp.Bye((1,), "bye"), rtcp.App(0, 1, "LSC1", b"abcd")])]


_OFFER = sdp.serialize(offer_answer.make_offer(offer_answer.default_codecs(), "192.0.2.1", 5004))


def _seeds_sdp() -> list[bytes]:
    return [_OFFER.encode()]


def _parse_sdp(data: bytes) -> object:
    return sdp.parse(data.decode("utf-8", errors="surrogateescape"))


def _offer_answer(data: bytes) -> object:
    offer = sdp.parse(data.decode("utf-8", errors="surrogateescape"))
    return offer_answer.make_answer(offer, offer_answer.default_codecs(), "192.0.2.2", 6000)


PARSERS: dict[str, tuple[Callable[[bytes], object], Callable[[], list[bytes]]]] = {
    "payload": (payload.unpack, _seeds_payload),
    "rtp": (packet.parse, _seeds_rtp),
    "rtcp": (rtcp.parse_compound, _seeds_rtcp),
    "sdp": (_parse_sdp, _seeds_sdp),
    "offer-answer": (_offer_answer, _seeds_sdp),
}


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One fuzz input: a seed with 1-8 random mutations, or (1 in 16) random bytes."""
    if rng.random() < 1 / 16:
        return rng.randbytes(rng.randrange(0, 200))
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randrange(1, 9)):
        op = rng.randrange(7)
        if op == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # any byte value
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 2 and data:  # truncate
            del data[rng.randrange(len(data)):]
        elif op == 3:  # splice in random bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randrange(1, 9))
        elif op == 4 and len(data) >= 4:  # overwrite a 16-bit field with an extreme (length/count fields)
            i = rng.randrange(len(data) - 1)
            data[i:i + 2] = struct.pack("!H", rng.choice((0, 1, 0x7FFF, 0xFFFF, rng.randrange(65536))))
        elif op == 5 and data:  # duplicate a chunk
            i = rng.randrange(len(data))
            data[i:i] = data[i:i + rng.randrange(1, 33)]
        elif op == 6 and data:  # text-level: swap a digit or a separator (SDP)
            i = rng.randrange(len(data))
            data[i] = rng.choice(b"0123456789=;:/ \r\n-.e")
    return bytes(data)


def run(name: str, inputs: int, seed: int) -> tuple[Counter[str], dict[str, str], float]:
    """Feed ``inputs`` inputs to one parser; outcome counts, one example per crash kind, the slowest input (s)."""
    parse, seeds = PARSERS[name]
    rng = random.Random(seed)
    pool = seeds()
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    slowest = 0.0
    for _ in range(inputs):
        data = mutate(rng, pool)
        start = time.perf_counter()
        try:
            parse(data)
            outcome = "parsed"
        except ValueError:
            outcome = "refused"
        except Exception as exc:  # a bug: anything but the documented rejection
            outcome = f"CRASH {type(exc).__name__}"
            examples.setdefault(outcome, data.hex())
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        if elapsed > SLOW_S:
            counts["slow"] += 1
            examples.setdefault("slow", data.hex())
        counts[outcome] += 1
    return counts, examples, slowest


def _job(args: tuple[str, int, int]) -> tuple[str, Counter[str], dict[str, str], float]:
    name, inputs, seed = args
    return (name, *run(name, inputs, seed))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs per parser")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--parser", action="append", choices=sorted(PARSERS), help="only these (default: all)")
    ns = ap.parse_args()
    names = ns.parser or list(PARSERS)
    shards = max(1, ns.jobs)
    work = [(name, ns.inputs // shards + (1 if k < ns.inputs % shards else 0), 1000 * i + k)
            for i, name in enumerate(names) for k in range(shards)]
    start = time.monotonic()
    totals: dict[str, Counter[str]] = {n: Counter() for n in names}
    examples: dict[str, dict[str, str]] = {n: {} for n in names}
    slowest = dict.fromkeys(names, 0.0)
    with multiprocessing.Pool(ns.jobs) as pool:
        for name, counts, ex, slow in pool.imap_unordered(_job, work):
            totals[name] += counts
            for k, v in ex.items():
                examples[name].setdefault(k, v)
            slowest[name] = max(slowest[name], slow)
    bad = 0
    print(f"{'parser':<13} {'inputs':>9} {'parsed':>9} {'refused':>9} {'crashes':>8} {'slow':>5} {'slowest ms':>10}")
    for name in names:
        c = totals[name]
        crashes = sum(v for k, v in c.items() if k.startswith("CRASH"))
        total = c["parsed"] + c["refused"] + crashes
        print(f"{name:<13} {total:>9} {c['parsed']:>9} {c['refused']:>9} {crashes:>8} {c['slow']:>5} "
              f"{slowest[name] * 1000:>10.2f}")
        for kind, hexdata in examples[name].items():
            print(f"  {kind}: first input {hexdata[:400]}")
        bad += crashes + c["slow"]
    print(f"{sum(sum(c.values()) - c['slow'] for c in totals.values())} inputs in {time.monotonic() - start:.0f} s, "
          f"{ns.jobs} processes; {'no crash, no slow input' if not bad else f'{bad} problems'}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
