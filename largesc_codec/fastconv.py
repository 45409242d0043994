"""Mimi's 1-D convolutions as matrix products (exact up to float rounding).

Why. At batch 1 torch runs ``ConvTranspose1d`` through its reference kernel
(``slow_conv_transpose2d``): full-size Mimi's 1024->512 k16 s8 upsampler took
~35 ms per 80 ms frame on one core, more than all 16 transformer layers. As one
GEMM plus an overlap-add it takes ~3 ms; the strided encoder convs gain too.

How. A convolution is ``unfold`` (windows of K samples every S) times the
weight seen as a ``[Cin*K, Cout]`` matrix; a transposed convolution is the
input times the weight seen as ``[Cin, Cout*K]`` followed by ``F.fold``
(overlap-add of the K-sample pieces every S). Large conv weights (>= 1 M
values, the memory-bound layers at the 12.5-25 Hz end) get their storage
re-laid out once to a contiguous ``[Cin*K, Cout]`` matrix (values kept): ``x @ W``
on that layout is MKL's fast path for the 1-16 rows a streaming step has.
Where a step has many output rows (B x T >= 128 for a conv, input rows >= 64
for a transposed conv: the long, narrow layers near the waveform) torch's own
kernel is faster and is used, on the original layout. Only groups=1,
dilation=1, padding=0 layers are converted; others keep moshi's code.

Streaming keeps moshi's state objects (``previous`` history of a conv, ``partial``
tail of a transposed conv), so ``reset_streaming`` and exec masks work as before;
a partial tail is stored without bias, as moshi stores it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from moshi.modules.conv import StreamingConv1d, StreamingConvTranspose1d
from torch import nn
from torch.nn.utils import parametrize


def _plain(m: nn.Module) -> bool:
    # weight_norm (hook or parametrization) recomputes ``weight`` on each call: keep moshi's code there.
    return not m._forward_pre_hooks and not parametrize.is_parametrized(m)


def conv_fits(conv: nn.Conv1d) -> bool:
    """Whether ``FastConv1d`` can run this conv (groups 1, dilation 1, no built-in padding, plain weight)."""
    return (conv.groups == 1 and conv.dilation[0] == 1 and conv.padding == (0,)
            and conv.padding_mode == "zeros" and _plain(conv))


def convtr_fits(convtr: nn.ConvTranspose1d) -> bool:
    """Whether ``FastConvTranspose1d`` can run this transposed conv."""
    return (convtr.groups == 1 and convtr.dilation[0] == 1 and convtr.padding == (0,)
            and convtr.output_padding == (0,) and _plain(convtr))


def masked_copy(dst: torch.Tensor, src: torch.Tensor, exec_mask: torch.Tensor) -> None:
    """``dst[b] = src[b]`` for the rows whose exec mask is set (moshi's torch.where, cheaper when all are)."""
    if bool(exec_mask.all()):
        dst.copy_(src)
    elif bool(exec_mask.any()):
        dst.copy_(torch.where(exec_mask.view(-1, *([1] * (dst.dim() - 1))), src, dst))


# Measured on full-size Mimi (docs/performance.md): below these row counts the GEMM wins.
NATIVE_MIN_ROWS_CONV = 128
NATIVE_MIN_ROWS_CONVTR = 64
RELAYOUT_MIN_PARAMS = 1 << 20


def _matrix(conv: nn.Conv1d) -> torch.Tensor:
    """The conv weight as a ``[Cin*K, Cout]`` matrix (a view; contiguous once re-laid out)."""
    w = conv.weight
    return w.reshape(w.shape[0], -1).t()


def relayout_conv(conv: nn.Conv1d) -> None:
    """Store a large conv weight as a contiguous ``[Cin*K, Cout]`` matrix (values and shape kept)."""
    w = conv.weight
    if w.numel() >= RELAYOUT_MIN_PARAMS and w.is_contiguous():
        with torch.no_grad():
            w.data = w.data.reshape(w.shape[0], -1).t().contiguous().t().view(w.shape)


def conv_native(conv: nn.Conv1d, rows: int, low_precision: bool) -> bool:
    """Whether torch's own kernel beats the GEMM for ``rows`` output rows (B x Tout)."""
    return not low_precision and rows >= NATIVE_MIN_ROWS_CONV and conv.in_channels > 1 and conv.weight.is_contiguous()


def conv1d_mm(x: torch.Tensor, conv: nn.Conv1d, w_lp: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x)`` for x [B, Cin, L] -> [B, Cout, Tout] (a transposed view), as one GEMM.

    ``w_lp``: optional low-precision ``[Cout, Cin*K]`` weight (bf16); inputs are rounded to it.
    """
    B, cin, _ = x.shape
    K, S = conv.kernel_size[0], conv.stride[0]
    cols = x.transpose(1, 2) if K == 1 and S == 1 else x.unfold(2, K, S).permute(0, 2, 1, 3)
    tout = cols.shape[1]
    cols2 = cols.reshape(B * tout, cin * K)
    if w_lp is not None:
        y = F.linear(cols2.to(w_lp.dtype), w_lp).float()
        if conv.bias is not None:
            y = y + conv.bias
    elif conv.bias is not None:
        y = torch.addmm(conv.bias, cols2, _matrix(conv))
    else:
        y = cols2 @ _matrix(conv)
    return y.view(B, tout, -1).transpose(1, 2)


def convtr1d_mm_nobias(x: torch.Tensor, convtr: nn.ConvTranspose1d, w_lp: torch.Tensor | None = None) -> torch.Tensor:
    """``conv_transpose1d(x)`` without bias for x [B, Cin, T] -> [B, Cout, (T-1)*S+K], as GEMM + fold.

    ``w_lp``: optional low-precision ``[Cout*K, Cin]`` weight (bf16).
    """
    B, cin, T = x.shape
    w = convtr.weight  # [Cin, Cout, K]: as [Cin, Cout*K] already contiguous
    cout, K, S = w.shape[1], w.shape[2], convtr.stride[0]
    x2 = x.transpose(1, 2).reshape(B * T, cin)  # a contiguous 2-D input keeps the GEMM on its fast path
    if w_lp is not None:
        cols = F.linear(x2.to(w_lp.dtype), w_lp).float()
    else:
        cols = x2 @ w.reshape(cin, cout * K)
    length = (T - 1) * S + K
    out = F.fold(cols.view(B, T, cout * K).transpose(1, 2), (1, length), (1, K), stride=(1, S))
    return out.view(B, cout, length)


class FastConv1d(StreamingConv1d):
    """StreamingConv1d whose conv runs as a GEMM (same state, same results up to rounding).

    Set by ``accelerate`` through ``__class__``; ``_w_lp`` (bf16 weight or None) by it too.
    """

    _w_lp: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        B, _, T = x.shape
        S = self._stride
        assert T > 0 and T % S == 0, "Steps must be multiple of stride"
        state = self._streaming_state
        if state is None:
            state = self._init_streaming_state(B)
        TP = state.previous.shape[-1]
        if TP and self.pad_mode == "replicate":
            assert T >= TP, "Not enough content to pad streaming."
            first = state.first & state.exec_mask
            if bool(first.any()):
                state.previous[:] = torch.where(first.view(-1, 1, 1), x[..., :1], state.previous)
        xx = torch.cat([state.previous, x], dim=-1) if TP else x
        rows = B * ((xx.shape[-1] - conv.kernel_size[0]) // S + 1)
        y = conv(xx) if conv_native(conv, rows, self._w_lp is not None) else conv1d_mm(xx, conv, self._w_lp)
        if TP:
            masked_copy(state.previous, xx[..., -TP:], state.exec_mask)
            if self.pad_mode == "replicate":
                state.first.logical_and_(~state.exec_mask)  # in place: a new tensor made here could not be reset later
        return y


class FastConvTranspose1d(StreamingConvTranspose1d):
    """StreamingConvTranspose1d run as GEMM + overlap-add (same state layout as moshi's)."""

    _w_lp: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convtr = self.convtr.convtr
        K, S = self._kernel_size, self._stride
        if self._w_lp is None and x.shape[0] * x.shape[-1] >= NATIVE_MIN_ROWS_CONVTR:
            y = F.conv_transpose1d(x, convtr.weight, None, S)
        else:
            y = convtr1d_mm_nobias(x, convtr, self._w_lp)
        state = self._streaming_state
        if state is None:
            y = y[..., : y.shape[-1] - (K - S)]
        else:
            PT = state.partial.shape[-1]
            if PT > 0:
                y[..., :PT] += state.partial
                masked_copy(state.partial, y[..., -PT:], state.exec_mask)
                y = y[..., :-PT]
        bias = convtr.bias
        return y if bias is None else y + bias[:, None]


def convert_convs(module: nn.Module, lp_dtype: torch.dtype | None = None, lp_min_params: int = 1 << 20) -> tuple[int, list[str]]:
    """Swap fitting streaming (transposed) convs under ``module`` to the GEMM versions, in place.

    ``lp_dtype`` (e.g. torch.bfloat16): also keep a low-precision copy of weights with at least
    ``lp_min_params`` elements and run those layers in it (None: all full precision, and any
    earlier copies are dropped). Returns (converted count, names left to moshi's code).
    """
    done, left = 0, []
    for name, mod in module.named_modules():
        if isinstance(mod, StreamingConv1d) and not isinstance(mod, FastConv1d):
            if conv_fits(mod.conv.conv):
                mod.__class__ = FastConv1d
            else:
                left.append(name)
        elif isinstance(mod, StreamingConvTranspose1d) and not isinstance(mod, FastConvTranspose1d):
            if convtr_fits(mod.convtr.convtr):
                mod.__class__ = FastConvTranspose1d
            else:
                left.append(name)
        if isinstance(mod, FastConv1d):
            w = mod.conv.conv.weight
            relayout_conv(mod.conv.conv)
            mod._w_lp = _low(w.reshape(w.shape[0], -1), lp_dtype, lp_min_params)
            done += 1
        elif isinstance(mod, FastConvTranspose1d):
            w = mod.convtr.convtr.weight
            mod._w_lp = _low(w.reshape(w.shape[0], -1).t(), lp_dtype, lp_min_params)
            done += 1
    return done, left


def _low(mat: torch.Tensor, dtype: torch.dtype | None, min_params: int) -> Any:
    if dtype is None or mat.numel() < min_params:
        return None
    return mat.detach().to(dtype).contiguous()
