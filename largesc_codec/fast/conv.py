"""Mimi's 1-D convolutions as matrix products (exact up to float rounding).

Why. At batch 1 torch runs ``ConvTranspose1d`` through its reference kernel
(``slow_conv_transpose2d``): full-size Mimi's 1024->512 k16 s8 upsampler took
~35 ms per 80 ms frame on one core, more than all 16 transformer layers. As one
GEMM plus an overlap-add it takes ~3 ms; the strided encoder convs gain too.

How. A convolution is ``unfold`` (windows of K samples every S) times the
weight seen as a ``[Cout, Cin*K]`` matrix; a transposed convolution is the
input times the weight seen as ``[Cin, Cout*K]`` followed by ``F.fold``
(overlap-add of the K-sample pieces every S). The products run through
oneDNN with prepacked weights (fastlinear.py). Where torch's own kernel is
faster (see NATIVE_MIN_ROWS_*) it is used instead. Only groups=1,
dilation=1, padding=0 layers with a plain weight are converted; others keep
moshi's code.

Streaming keeps moshi's state objects (``previous`` history of a conv, ``partial``
tail of a transposed conv), so ``reset_streaming`` and exec masks work as before;
a partial tail is stored without bias, as moshi stores it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from moshi.modules.conv import StreamingConv1d, StreamingConvTranspose1d
from torch import nn
from torch.nn.utils import parametrize

from largesc_codec.fast.linear import drop, linear, packed


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


# Measured per layer on full-size Mimi, batch 1 and 16, 2 threads: from these row counts on
# (B x output steps for a conv with K > 1 and Cin > 1, B x input steps for a transposed conv)
# torch's own kernel beats unfold + GEMM: the long, narrow layers near the waveform.
NATIVE_MIN_ROWS_CONV = 384
NATIVE_MIN_ROWS_CONVTR = 64


def _conv_matrix(conv: nn.Conv1d) -> torch.Tensor:
    w = conv.weight
    return w.reshape(w.shape[0], -1)  # [Cout, Cin*K]


def _convtr_matrix(convtr: nn.ConvTranspose1d) -> torch.Tensor:
    w = convtr.weight
    return w.reshape(w.shape[0], -1).t()  # [Cout*K, Cin]


def _dtype(conv: nn.Module) -> torch.dtype:
    """The GEMM precision ``convert_convs`` gave this conv (fp32 unless fp16 weights were asked for)."""
    dtype: torch.dtype = conv.__dict__.get("_gemm_dtype", torch.float32)
    return dtype


def conv1d_mm(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv(x)`` for x [B, Cin, L] -> [B, Cout, Tout] (a transposed view), as one GEMM."""
    B, cin, _ = x.shape
    K, S = conv.kernel_size[0], conv.stride[0]
    cols = x.transpose(1, 2) if K == 1 and S == 1 else x.unfold(2, K, S).permute(0, 2, 1, 3)
    tout = cols.shape[1]
    y = linear(cols.reshape(B * tout, cin * K), conv, "w", lambda: _conv_matrix(conv), conv.bias, _dtype(conv))
    return y.view(B, tout, -1).transpose(1, 2)


def convtr1d_mm_nobias(x: torch.Tensor, convtr: nn.ConvTranspose1d) -> torch.Tensor:
    """``conv_transpose1d(x)`` without bias for x [B, Cin, T] -> [B, Cout, (T-1)*S+K], as GEMM + fold."""
    B, cin, T = x.shape
    cout, K, S = convtr.weight.shape[1], convtr.kernel_size[0], convtr.stride[0]
    cols = linear(x.transpose(1, 2).reshape(B * T, cin), convtr, "w", lambda: _convtr_matrix(convtr), None,
                  _dtype(convtr))
    length = (T - 1) * S + K
    out = F.fold(cols.view(B, T, cout * K).transpose(1, 2), (1, length), (1, K), stride=(1, S))
    return out.view(B, cout, length)


class FastConv1d(StreamingConv1d):
    """StreamingConv1d whose conv runs as a GEMM (same state, same results up to rounding).

    Set by ``convert_convs`` through ``__class__``.
    """

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
        native = rows >= NATIVE_MIN_ROWS_CONV and conv.in_channels > 1 and conv.kernel_size[0] > 1
        y = conv(xx) if native else conv1d_mm(xx, conv)
        if TP:
            masked_copy(state.previous, xx[..., -TP:], state.exec_mask)
            if self.pad_mode == "replicate":
                state.first.logical_and_(~state.exec_mask)  # in place: a new tensor made here could not be reset later
        return y


class FastConvTranspose1d(StreamingConvTranspose1d):
    """StreamingConvTranspose1d run as GEMM + overlap-add (same state layout as moshi's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convtr = self.convtr.convtr
        K, S = self._kernel_size, self._stride
        if x.shape[0] * x.shape[-1] >= NATIVE_MIN_ROWS_CONVTR:
            y = F.conv_transpose1d(x, convtr.weight, None, S)
        else:
            y = convtr1d_mm_nobias(x, convtr)
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


def convert_convs(module: nn.Module, dtype: torch.dtype = torch.float32) -> tuple[int, list[str]]:
    """Swap fitting streaming (transposed) convs under ``module`` to the GEMM versions, in place.

    ``dtype``: the GEMMs' weights (fp32, or fp16 through fbgemm: see fastlinear).
    Returns (converted count, names left to moshi's code); weights are packed now, not on the first frame.
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
            conv = mod.conv.conv
            conv.__dict__["_gemm_dtype"] = dtype
            drop(conv)  # pack afresh from the current weights
            packed(conv, "w", lambda: _conv_matrix(conv), dtype)
            done += 1
        elif isinstance(mod, FastConvTranspose1d):
            convtr = mod.convtr.convtr
            convtr.__dict__["_gemm_dtype"] = dtype
            drop(convtr)
            packed(convtr, "w", lambda: _convtr_matrix(convtr), dtype)
            done += 1
    return done, left
