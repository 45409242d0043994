"""The fast CPU Mimi path (fastmimi / fastconv / fasttransformer) equals moshi's own streaming code."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from moshi.modules.conv import StreamingConv1d, StreamingConvTranspose1d
from moshi.modules.transformer import StreamingTransformer

from largesc_codec.batched.mimi import BatchedMimiDecoder
from largesc_codec.fast import conv as fastconv
from largesc_codec.fast import linear as fastlinear
from largesc_codec.fast import mimi as fastmimi
from largesc_codec.fast.conv import FastConv1d, FastConvTranspose1d, conv1d_mm, convert_convs, convtr1d_mm_nobias
from largesc_codec.fast.transformer import FastTransformer, convert_transformer
from largesc_codec.neural.decoder import MimiDecoder
from largesc_codec.neural.encoder import MimiEncoder

pytestmark = pytest.mark.model

# (Cin, Cout, kernel, stride): 1x1, stride = kernel, kernel = 2 x stride (all Mimi's), kernel not a multiple.
SHAPES = [(6, 12, 1, 1), (6, 12, 3, 1), (5, 7, 4, 4), (8, 6, 8, 4), (4, 9, 7, 3), (3, 5, 16, 8)]


@pytest.mark.parametrize(("cin", "cout", "k", "s"), SHAPES)
@pytest.mark.parametrize("onednn", [True, False])
def test_matmul_convs_equal_torch(cin: int, cout: int, k: int, s: int, onednn: bool,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if not onednn:  # a torch build without oneDNN: plain F.linear
        monkeypatch.setattr(fastlinear, "onednn_available", lambda: False)
    torch.manual_seed(k * 10 + s)
    conv, convtr = torch.nn.Conv1d(cin, cout, k, s), torch.nn.ConvTranspose1d(cout, cin, k, s)
    with torch.inference_mode():
        for batch, length in ((1, 4 * s + k), (3, 40 * s + k)):
            x = torch.randn(batch, cin, length)
            np.testing.assert_allclose(conv1d_mm(x, conv), F.conv1d(x, conv.weight, conv.bias, s), atol=1e-5)
            z = torch.randn(batch, cout, length // s)
            ref = F.conv_transpose1d(z, convtr.weight, None, s)
            np.testing.assert_allclose(convtr1d_mm_nobias(z, convtr), ref, atol=1e-5)
    with torch.no_grad():
        conv.weight.mul_(2)  # changed in place: packed again, not stale
    with torch.inference_mode():
        np.testing.assert_allclose(conv1d_mm(x, conv), F.conv1d(x, conv.weight, conv.bias, s), atol=1e-5)


def _pair(module: torch.nn.Module) -> tuple[Any, Any]:
    fast = copy.deepcopy(module)
    assert convert_convs(fast) == (1, [])
    return module, fast


@pytest.mark.parametrize(("cin", "cout", "k", "s"), SHAPES)
@pytest.mark.parametrize("native_from", [0, 100, 1 << 30])
def test_streaming_convs_equal_moshi_chunked_with_masks(cin: int, cout: int, k: int, s: int, native_from: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 1, 2 and 50 steps, idle rows, a reset of one row; torch's kernel from ``native_from`` rows on."""
    monkeypatch.setattr(fastconv, "NATIVE_MIN_ROWS_CONV", native_from)
    monkeypatch.setattr(fastconv, "NATIVE_MIN_ROWS_CONVTR", native_from)
    torch.manual_seed(k + 100 * s)
    pads = ("constant", "replicate") if k - s <= s else ("constant",)  # moshi's replicate needs a step >= its history
    pairs = [_pair(StreamingConv1d(cin, cout, k, s, causal=True, pad_mode=pad)) for pad in pads]
    pairs.append(_pair(StreamingConvTranspose1d(cout, cin, k, s, causal=True)))
    assert isinstance(pairs[0][1], FastConv1d) and isinstance(pairs[-1][1], FastConvTranspose1d)
    batch = 3
    with torch.inference_mode():
        for m in (m for p in pairs for m in p):
            m.streaming_forever(batch)
        for step, chunk in enumerate([1, 2, 50, 1, 2, 50, 3]):
            live = torch.tensor([True, step % 2 == 0, step != 2])
            for stock, fast in pairs:
                if step == 4:
                    for m in (stock, fast):
                        m.reset_streaming(torch.tensor([False, False, True]))
                for m in (stock, fast):
                    m.set_exec_mask(live)
                cin_ = stock.convtr.convtr.in_channels if isinstance(stock, StreamingConvTranspose1d) else cin
                steps = chunk if isinstance(stock, StreamingConvTranspose1d) else chunk * s
                x = torch.randn(batch, cin_, steps)
                np.testing.assert_allclose(fast(x)[live], stock(x)[live], atol=1e-5)
    # Not streaming: a fresh history each call, as moshi's.
    for stock, fast in pairs:
        stock._streaming_state = fast._streaming_state = None
        x = torch.randn(2, stock.convtr.convtr.in_channels if isinstance(stock, StreamingConvTranspose1d) else cin, 6 * s)
        with torch.inference_mode():
            np.testing.assert_allclose(fast(x), stock(x), atol=1e-5)


@torch.inference_mode()
@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")  # moshi's norm="weight_norm"
def test_layers_that_do_not_fit_stay_moshis() -> None:
    box = torch.nn.Sequential(StreamingConv1d(4, 4, 3, dilation=2, causal=True),
                              StreamingConvTranspose1d(4, 4, 4, 2, groups=2, causal=True),
                              StreamingConv1d(4, 4, 3, causal=True, norm="weight_norm"),
                              StreamingConv1d(4, 4, 3, causal=True))
    n, left = convert_convs(box)
    assert (n, left) == (1, ["0", "1", "2"])
    assert [type(m) for m in box] == [StreamingConv1d, StreamingConvTranspose1d, StreamingConv1d, FastConv1d]


def test_fast_transformer_step_equals_moshi_past_the_ring() -> None:
    """Context 5, 2 steps per call for 12 calls: the KV ring wraps; idle rows and a reset on the way."""
    torch.manual_seed(0)
    stock = StreamingTransformer(d_model=32, num_heads=4, num_layers=2, dim_feedforward=64, causal=True, context=5,
                                 positional_embedding="rope", layer_scale=0.1)
    fast = copy.deepcopy(stock)
    assert convert_transformer(fast) and isinstance(fast, FastTransformer)
    with torch.inference_mode():
        for m in (stock, fast):
            m.streaming_forever(2)
        for step in range(12):
            live = torch.tensor([True, step not in (3, 4)])
            if step == 7:
                for m in (stock, fast):
                    m.reset_streaming(torch.tensor([True, False]))
            for m in (stock, fast):
                m.set_exec_mask(live)
            x = torch.randn(2, 2, 32)
            np.testing.assert_allclose(fast(x)[live], stock(x)[live], atol=1e-5)
    sin = StreamingTransformer(d_model=32, num_heads=4, num_layers=1, causal=True, context=5, positional_embedding="sin")
    assert not convert_transformer(sin) and type(sin) is StreamingTransformer


def _frames(speech_file: Any, n: int) -> list[np.ndarray]:
    from largesc_codec.neural.framing import frames_from_file

    return frames_from_file(speech_file)[:n]


def test_fast_encode_decode_equal_stock_streaming(models, speech_file) -> None:  # type: ignore[no-untyped-def]
    frames = _frames(speech_file, 24)
    fast_enc, stock_enc = MimiEncoder(models.new_mimi(), 8), MimiEncoder(models.new_mimi(), 8, fast=False)
    assert fast_enc.acceleration is not None and fast_enc.acceleration.precision == "fp32"
    assert fast_enc.acceleration.transformers == 1 and fast_enc.acceleration.left_to_moshi == ()
    assert stock_enc.acceleration is None
    tokens = np.stack([stock_enc.encode(f) for f in frames])
    np.testing.assert_array_equal(np.stack([fast_enc.encode(f) for f in frames]), tokens)

    fast_dec, stock_dec = MimiDecoder(models.new_mimi()), MimiDecoder(models.new_mimi(), fast=False)
    assert fast_dec.acceleration is not None and fast_dec.acceleration.left_to_moshi == ("upsample.convtr",)
    ref = np.concatenate([stock_dec.decode(t[: 1 + i % 8]) for i, t in enumerate(tokens)])
    out = np.concatenate([fast_dec.decode(t[: 1 + i % 8]) for i, t in enumerate(tokens)])
    scale = np.abs(ref).max()
    np.testing.assert_allclose(out, ref, atol=1e-5 * scale)

    # reset: the same as a fresh decoder / encoder.
    fast_dec.reset()
    fresh = MimiDecoder(models.new_mimi(), fast=False)
    np.testing.assert_allclose(fast_dec.decode(tokens[0]), fresh.decode(tokens[0]), atol=1e-5 * scale)
    fast_enc.reset()
    np.testing.assert_array_equal(fast_enc.encode(frames[0]), tokens[0])

    # Outside streaming (whole clip at once) the accelerated model equals moshi's too.
    fast_m, stock_m = models.new_mimi(), models.new_mimi()
    fastmimi.accelerate(fast_m)
    clip = torch.from_numpy(np.concatenate(frames[:6])).view(1, 1, -1)
    with torch.inference_mode():
        assert torch.equal(fast_m.encode(clip), stock_m.encode(clip))


def test_batched_fast_decoder_equals_lone_stock_decoders(models) -> None:  # type: ignore[no-untyped-def]
    n = 3
    batched = BatchedMimiDecoder(models.new_mimi(), n)
    assert batched._rows == n  # no spare row on the fast path
    lone = [MimiDecoder(models.new_mimi(), fast=False) for _ in range(n)]
    rng = np.random.default_rng(5)
    for t in range(7):
        frames: list[tuple[int, ...] | None] = [tuple(int(x) for x in rng.integers(0, 2048, k)) for k in (8, 3, 8)]
        if t in (2, 3):
            frames[1] = None
        if t == 4:
            batched.reset(0)
            lone[0].reset()
        pcm = batched.decode(frames)
        for s, f in enumerate(frames):
            if f is None:
                assert not pcm[s].any()
            else:
                ref = lone[s].decode(f)
                np.testing.assert_allclose(pcm[s], ref, atol=1e-5 * np.abs(ref).max())


def test_precision_option(models, speech_file, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, auto"):
        MimiEncoder(models.new_mimi(), 8, precision="int8")
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(fastmimi, "cpu_has_native_bf16", lambda native=native: native)
        assert fastmimi.resolve_precision("auto") == want
        assert MimiDecoder(models.new_mimi(), precision="auto").acceleration.precision == want  # type: ignore[union-attr]
    frames = _frames(speech_file, 12)
    bf16, stock = MimiEncoder(models.new_mimi(), 8, precision="bf16"), MimiEncoder(models.new_mimi(), 8, fast=False)
    got = np.stack([bf16.encode(f) for f in frames])
    ref = np.stack([stock.encode(f) for f in frames])
    assert (got[:, 0] == ref[:, 0]).mean() >= 0.75  # bf16 moves a few tokens, not most (docs/performance.md)
    # A later call sets the precision afresh: back to fp32 = the exact path again.
    mimi = models.new_mimi()
    fastmimi.accelerate(mimi, "fp16")
    assert {m.__dict__.get("_gemm_dtype") for m in mimi.modules()} >= {torch.float16}
    fastmimi.accelerate(mimi, "bf16")
    assert fastmimi.accelerate(mimi, "fp32").precision == "fp32"
    assert all(m.__dict__.get("_gemm_dtype", torch.float32) == torch.float32 for m in mimi.modules())


@pytest.mark.parametrize("fbgemm", [True, False])
def test_fp16_weight_linears_equal_fp16_rounded_weights(fbgemm: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16: the product of the fp32 input with the fp16-rounded weight, through fbgemm or (without it) F.linear."""
    if not fbgemm:
        monkeypatch.setattr(fastlinear, "fbgemm_fp16_available", lambda: False)
    elif not fastlinear.fbgemm_fp16_available():
        pytest.skip("this torch build has no fbgemm fp16 linears")
    torch.manual_seed(0)
    lin = torch.nn.Linear(96, 40)
    with torch.inference_mode():
        for rows in (1, 2, 33):
            x = torch.randn(rows, 96)
            got = fastlinear.linear(x, lin, "w", lambda: lin.weight, lin.bias, torch.float16)
            assert got.dtype == torch.float32
            rounded = F.linear(x, lin.weight.half().float(), lin.bias)
            np.testing.assert_allclose(got, rounded, atol=1e-5)
            exact = F.linear(x, lin.weight, lin.bias)
            assert 0 < (got - exact).abs().max() < 1e-2  # the weights' rounding shows, and only it


def test_fp16_mimi_stays_close_to_stock(models, speech_file) -> None:  # type: ignore[no-untyped-def]
    """precision="fp16": most tokens as stock's, the decoder on stock tokens within the weights' rounding."""
    frames = _frames(speech_file, 12)
    fp16, stock = MimiEncoder(models.new_mimi(), 8, precision="fp16"), MimiEncoder(models.new_mimi(), 8, fast=False)
    assert fp16.acceleration is not None and fp16.acceleration.precision == "fp16"
    got, ref = np.stack([fp16.encode(f) for f in frames]), np.stack([stock.encode(f) for f in frames])
    assert (got == ref).mean() >= 0.9, (got == ref).mean(axis=0)  # 0.985 with full-size Mimi (docs/performance.md)
    dec16, dec = MimiDecoder(models.new_mimi(), precision="fp16"), MimiDecoder(models.new_mimi(), fast=False)
    a = np.concatenate([dec16.decode(t.tolist()) for t in ref])
    b = np.concatenate([dec.decode(t.tolist()) for t in ref])
    err = np.abs(a - b).max() / np.abs(b).max()
    assert 1e-7 < err < 1e-2, err
