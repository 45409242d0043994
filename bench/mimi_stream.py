"""Per-frame streaming Mimi encode/decode time and accuracy, stock moshi vs the fast path.

Full-size Mimi (moshi's own config), random weights: the real compute cost
(79.3 M parameters). Codebooks are calibrated on a test signal (as
`largesc make-test-weights` does) so tokens vary; input is real speech
(LibriVox clips from Debian's pocketsphinx-testdata). Each variant runs through
the product classes (MimiEncoder / MimiDecoder), one frame at a time:

  stock         moshi's own modules (fast=False)
  fast          fastmimi, fp32: exact up to float rounding (the default)
  fast-bf16     fastmimi, precision="bf16" in encoder and decoder (transformer
                linears with bf16 weights)
  fast-bf16dec  fp32 encoder (tokens as fast), bf16 decoder
  fast-fp16     fastmimi, precision="fp16": fp16 weights (fbgemm) in the transformer
                linears and the GEMM convs, fp32 arithmetic
  fast-fp16dec  fp32 encoder (tokens as fast), fp16 decoder
  rustymimi     anchor: Kyutai's own Rust Mimi (PyPI rustymimi 0.4.1, candle, f32),
                Tokenizer.encode_step / decode_step on the same random weights,
                written to a temporary safetensors file in the released key
                layout (largesc_codec/train/testweights.py); threads through
                RAYON_NUM_THREADS (candle's CPU pool), set to --threads. An
                optional test dependency (requirements/test.txt): when it is
                not installed the bench says how to install it and skips it.

Timing: variants are interleaved within each run (the order rotates per run)
so load from other jobs hits them alike. Per 80 ms frame it prints wall time
(median, p95) of encode, decode and both, and the process CPU time of both
(all threads). Accuracy (non-stock variants, against stock on the same
frames): token agreement per codebook, SNR of the variant's decoder on stock
tokens, end-to-end SNR (its own tokens through its own decoder), and the
same error relative to what redrawing all tokens at random changes in the
stock output (random weights make the decoder insensitive to tokens, so a
raw SNR alone flatters).

    .venv/bin/python bench/mimi_stream.py [--variants stock,fast,fast-bf16,rustymimi] [--threads 2]
        [--frames 100] [--runs 3] [--codebooks 8] [--accuracy-frames 150]
(--variants also takes fast-bf16dec, fast-fp16, fast-fp16dec.) The last line compares the medians of
encode + decode of this run: "fast / stock = x.xx, fast / rustymimi = y.yy".
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from largesc_codec.types import FRAME_MS

WARM = 5
SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox")
_STOCK, _FP32, _BF16, _FP16 = {"fast": False}, {"precision": "fp32"}, {"precision": "bf16"}, {"precision": "fp16"}
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # (encoder options, decoder options)
    "stock": (_STOCK, _STOCK),
    "fast": (_FP32, _FP32),
    "fast-bf16": (_BF16, _BF16),
    "fast-bf16dec": (_FP32, _BF16),
    "fast-fp16": (_FP16, _FP16),
    "fast-fp16dec": (_FP32, _FP16),
}
RUSTY = "rustymimi"  # the anchor variant, not a MimiEncoder/MimiDecoder option set
RUSTY_INSTALL = "pip install rustymimi==0.4.1 (or: make setup-test)"


def speech_frames() -> list[np.ndarray]:
    from largesc_codec.neural.framing import frames_from_file

    files = sorted(SPEECH.glob("*.wav"))
    if not files:
        raise SystemExit(f"no speech clips in {SPEECH}: install Debian's pocketsphinx-testdata")
    return [f for p in files for f in frames_from_file(p)]


def build_base(codebooks: int) -> Any:
    from moshi.models import loaders

    from largesc_codec.train.testweights import _init_codebooks

    torch.manual_seed(0)
    mimi = loaders.get_mimi(None, device="cpu").eval()
    _init_codebooks(mimi, 0)
    mimi.set_num_codebooks(codebooks)
    return mimi


def time_frames(v: Any, frames: list[np.ndarray], encode: Any, decode: Any) -> None:
    """Encode and decode ``frames`` one at a time; append wall ms (encode, decode) and CPU ms past WARM to ``v``."""
    for i, f in enumerate(frames):
        c0, w0 = time.process_time(), time.perf_counter()
        tokens = encode(f)
        w1 = time.perf_counter()
        decode(tokens)
        w2, c2 = time.perf_counter(), time.process_time()
        if i >= WARM:
            v.enc_ms.append((w1 - w0) * 1e3)
            v.dec_ms.append((w2 - w1) * 1e3)
            v.cpu_ms.append((c2 - c0) * 1e3)


class Codec:
    """One variant: its own encoder and decoder (each owns a Mimi copy, as in a call)."""

    def __init__(self, base: Any, name: str, codebooks: int) -> None:
        from largesc_codec.neural.decoder import MimiDecoder
        from largesc_codec.neural.encoder import MimiEncoder

        enc_kw, dec_kw = VARIANTS[name]
        self.name = name
        self.enc = MimiEncoder(copy.deepcopy(base), codebooks, **enc_kw)
        self.dec = MimiDecoder(copy.deepcopy(base), **dec_kw)
        self.enc_ms: list[float] = []
        self.dec_ms: list[float] = []
        self.cpu_ms: list[float] = []

    def timed_run(self, frames: list[np.ndarray]) -> None:
        self.enc.reset()
        self.dec.reset()
        time_frames(self, frames, self.enc.encode, self.dec.decode)

    def tokens(self, frames: list[np.ndarray]) -> np.ndarray:
        self.enc.reset()
        return np.stack([self.enc.encode(f) for f in frames])

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        self.dec.reset()
        return np.concatenate([self.dec.decode(t.tolist()) for t in tokens])


class RustyMimi:
    """Kyutai's Rust Mimi (rustymimi, candle on CPU, f32) on a checkpoint file; same interface as Codec.

    One ``rustymimi.Tokenizer`` for encode and one for decode (each its own
    streaming state, as in a call), fed one 1920-sample frame at a time through
    ``encode_step`` ((1, 1, 1920) float32 -> (1, codebooks, 1) uint32) and
    ``decode_step`` (back to (1, 1, 1920)). Each pass starts on new tokenizers:
    rustymimi 0.4.1's ``Tokenizer.reset()`` leaves some streaming state behind
    (the first frame encoded after a reset differed from a fresh tokenizer's
    and from stock, here).
    """

    def __init__(self, checkpoint: Path, codebooks: int) -> None:
        self.name = RUSTY
        self._checkpoint, self._codebooks = str(checkpoint), codebooks
        self.enc, self.dec = self._new(), self._new()
        self.enc_ms: list[float] = []
        self.dec_ms: list[float] = []
        self.cpu_ms: list[float] = []

    def _new(self) -> Any:
        import rustymimi

        return rustymimi.Tokenizer(self._checkpoint, num_codebooks=self._codebooks)

    @staticmethod
    def _pcm(frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame, dtype=np.float32).reshape(1, 1, -1)

    def _decode_step(self, codes: np.ndarray) -> np.ndarray:
        pcm = self.dec.decode_step(codes)
        if pcm is None:
            raise RuntimeError("rustymimi returned no samples for a frame")
        return np.asarray(pcm, dtype=np.float32).reshape(-1)

    def timed_run(self, frames: list[np.ndarray]) -> None:
        self.enc, self.dec = self._new(), self._new()
        time_frames(self, frames, lambda f: self.enc.encode_step(self._pcm(f)), self._decode_step)

    def tokens(self, frames: list[np.ndarray]) -> np.ndarray:
        self.enc = self._new()
        return np.stack([np.asarray(self.enc.encode_step(self._pcm(f)))[0, :, 0] for f in frames]).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        self.dec = self._new()
        return np.concatenate([self._decode_step(np.asarray(t, dtype=np.uint32).reshape(1, -1, 1)) for t in tokens])


def write_released_mimi(base: Any, directory: Path) -> Path:
    """``base``'s weights as a Mimi checkpoint in the released key layout (as make-test-weights writes it)."""
    from largesc_codec.neural.model import MIMI_NAME
    from largesc_codec.train.testweights import _save

    path = directory / MIMI_NAME
    _save(base.state_dict(), path)
    return path


def _stat(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"{np.median(a):6.1f} {np.percentile(a, 95):6.1f}"


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    err = float(((ref - x) ** 2).sum())
    return float("inf") if err == 0 else 10 * np.log10(float((ref ** 2).sum()) / err)


def accuracy(base: Any, codebooks: int, codecs: dict[str, Codec | RustyMimi], frames: list[np.ndarray], seed: int = 1) -> None:
    stock = codecs.get("stock") or Codec(base, "stock", codebooks)
    ref_tok = stock.tokens(frames)
    ref_pcm = stock.decode(ref_tok)
    rng = np.random.default_rng(seed)
    rand_tok = rng.integers(0, 2048, ref_tok.shape)
    last = ref_tok.copy()
    last[:, -1] = rand_tok[:, -1]
    rand_err = float(np.linalg.norm(ref_pcm - stock.decode(rand_tok)))
    print(f"\naccuracy vs stock, {len(frames)} speech frames ({len(frames) * FRAME_MS / 1e3:.1f} s), "
          f"{ref_tok.shape[1]} codebooks. Token sensitivity of the stock decoder (random weights): "
          f"last codebook redrawn {snr_db(ref_pcm, stock.decode(last)):.1f} dB SNR, "
          f"all redrawn {snr_db(ref_pcm, stock.decode(rand_tok)):.1f} dB")
    for name, c in codecs.items():
        if name == "stock":
            continue
        tok = c.tokens(frames)
        agree = (tok == ref_tok).mean(axis=0)
        on_stock = c.decode(ref_tok)
        e2e = c.decode(tok)
        rel = float(np.linalg.norm(e2e - ref_pcm)) / rand_err
        print(f"  {name:12s} token agreement per codebook {' '.join(f'{a:.3f}' for a in agree)} (all {agree.mean():.4f}); "
              f"decoder on stock tokens SNR {snr_db(ref_pcm, on_stock):.1f} dB; end-to-end SNR "
              f"{snr_db(ref_pcm, e2e):.1f} dB; |e2e - stock| / |random tokens - stock| = {rel:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="stock,fast,fast-bf16,rustymimi",
                    help=f"comma list of {', '.join([*VARIANTS, RUSTY])}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100, help="timed frames per run and variant")
    ap.add_argument("--runs", type=int, default=3, help="0: accuracy only")
    ap.add_argument("--codebooks", type=int, default=8)
    ap.add_argument("--accuracy-frames", type=int, default=150, help="0: skip the accuracy pass")
    args = ap.parse_args()
    names = args.variants.split(",")
    bad = [n for n in names if n not in (*VARIANTS, RUSTY)]
    if bad:
        ap.error(f"unknown variant {bad[0]!r}; choose from {', '.join([*VARIANTS, RUSTY])}")
    torch.set_num_threads(args.threads)
    if RUSTY in names:
        # candle's CPU work runs on rayon's global pool, sized from this variable when it is first used.
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
        try:
            import rustymimi  # noqa: F401
        except ImportError:
            print(f"rustymimi is not installed: skipping the rustymimi variant; to run it: {RUSTY_INSTALL}")
            names.remove(RUSTY)
    with tempfile.TemporaryDirectory(prefix="mimi-stream-") as tmp:
        run(args, names, Path(tmp))


def run(args: argparse.Namespace, names: list[str], tmp: Path) -> None:
    from largesc_codec.fast.mimi import cpu_has_native_bf16

    base = build_base(args.codebooks)
    frames = speech_frames()
    codecs: dict[str, Codec | RustyMimi] = {}
    for n in names:
        codecs[n] = (RustyMimi(write_released_mimi(base, tmp), args.codebooks) if n == RUSTY
                     else Codec(base, n, args.codebooks))
    params = sum(p.numel() for p in base.parameters()) / 1e6
    print(f"full-size Mimi, random weights ({params:.1f} M params), calibrated codebooks, {args.threads} threads, "
          f"{args.codebooks} codebooks, {args.frames} speech frames x {args.runs} runs per variant (interleaved), "
          f"torch {torch.__version__}, native bf16: {cpu_has_native_bf16()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if RUSTY in codecs:
        print(f"  {RUSTY}: candle CPU, f32, the same random weights through a safetensors file in the released key "
              f"layout, RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
    for n, c in codecs.items():
        if not isinstance(c, Codec):
            continue
        for side, a in (("encoder", c.enc.acceleration), ("decoder", c.dec.acceleration)):
            if a is not None:
                print(f"  {n} {side}: {a.precision}, {a.convs} convs as GEMMs, {a.transformers} fused transformers, "
                      f"left to moshi: {', '.join(a.left_to_moshi) or 'none'}")
    timed = frames[: args.frames + WARM]
    for r in range(args.runs):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            codecs[n].timed_run(timed)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.runs:
        report(codecs, args.runs, args.frames)
    if args.accuracy_frames:
        accuracy(base, args.codebooks, codecs, frames[: args.accuracy_frames])


def report(codecs: dict[str, Codec | RustyMimi], runs: int, frames: int) -> None:
    print(f"\nper 80 ms frame, ms ({runs} x {frames} frames):")
    print(f"{'variant':12s} | encode med  p95 | decode med  p95 |   both med  p95 | both CPU med | RTF both")
    for n, c in codecs.items():
        both = [a + b for a, b in zip(c.enc_ms, c.dec_ms)]
        print(f"{n:12s} |   {_stat(c.enc_ms)} |   {_stat(c.dec_ms)} |   {_stat(both)} | {np.median(c.cpu_ms):12.1f}"
              f" | {np.median(both) / FRAME_MS:.2f}")
        per_run = [np.median(both[i * frames:(i + 1) * frames]) for i in range(runs)]
        print(f"{'':12s}   both median per run: {' '.join(f'{x:.1f}' for x in per_run)}")
    both_med = {n: float(np.median([a + b for a, b in zip(c.enc_ms, c.dec_ms)])) for n, c in codecs.items()}
    if "fast" in both_med:
        ratios = [f"fast / {n} = {both_med['fast'] / both_med[n]:.2f}" for n in ("stock", RUSTY) if n in both_med]
        if ratios:
            print(", ".join(ratios) + " (medians of encode + decode per frame, this run)")


if __name__ == "__main__":
    main()
