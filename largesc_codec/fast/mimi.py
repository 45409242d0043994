"""Faster streaming Mimi on CPU: moshi's own MimiModel with its hot modules swapped in place.

``accelerate(mimi)`` keeps the model, its weights (loaded by moshi's loaders) and
its streaming state objects; it changes how some modules compute, so
``mimi.encode`` / ``mimi.decode``, ``reset_streaming`` and exec masks work as before:

- convolutions and transposed convolutions as GEMMs (fastconv.py);
- the transformers' streaming step with per-step work shared by the layers
  (fasttransformer.py);
- all those GEMMs through oneDNN with prepacked weights (fastlinear.py);
- the quantiser's nearest-codebook search with each codebook's padded matrix
  kept between frames (the same GEMM ``torch.cdist`` runs, so the same tokens)
  and the residual loop on flat ``[rows, dim]`` tensors.

These are exact up to float rounding (tokens equal stock moshi's on the test
weights and on 25 s of speech with full-size Mimi; waveforms within 1e-5).
``precision="bf16"`` (opt-in) also runs the transformer linears with bf16
weights and bf16-rounded inputs: half their memory traffic, at the token and
waveform cost measured in docs/performance.md. ``precision="fp16"`` (opt-in)
stores the weights of the transformer linears and of the GEMM convs in fp16
(fp32 inputs and arithmetic, fbgemm): Mimi's few-row GEMMs mostly read
weights, so this halves their cost; tokens and waveforms move by the fp16
rounding of the weights (measured in docs/performance.md).
``"auto"`` picks bf16 only where the CPU has native bf16 (avx512_bf16 or
amx_bf16) and fp32 elsewhere. The default stays fp32: tokens are the wire
format and the concealment LM was trained on stock Mimi's tokens.

Only CPU models are changed; on a GPU moshi's CUDA-graph path is kept.
Memory: the packed copies of the converted part's weights (one more copy of
them, 4 bytes per weight; 2 for bf16 linears), kept beside the model. Weights
changed later by other means than in place: call ``accelerate`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from moshi.quantization.core_vq import EuclideanCodebook, ResidualVectorQuantization
from torch import nn

from largesc_codec.fast import linear as fastlinear
from largesc_codec.fast.conv import convert_convs
from largesc_codec.fast.transformer import convert_transformer
from largesc_codec.types import MIMI_PRECISIONS

PRECISIONS = MIMI_PRECISIONS
SIDES = ("encode", "decode", "both")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (bf16 GEMMs at full speed)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``fp32`` | ``bf16`` | ``fp16`` | ``auto`` -> itself, ``auto`` -> ``fp32`` or ``bf16`` (bf16 on a native-bf16 CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


@dataclass(frozen=True)
class Acceleration:
    """What ``accelerate`` did: ``precision`` is fp32 / bf16 (the model's dtype if it is not
    float32), or ``stock`` when nothing was changed (not a CPU model)."""

    precision: str
    convs: int
    transformers: int
    left_to_moshi: tuple[str, ...]
    note: str = ""


class FastCodebook(EuclideanCodebook):
    """EuclideanCodebook whose search keeps the padded codebook matrix between frames.

    ``torch.cdist`` (p=2, >25 entries) computes ``[-2x, |x|^2, 1] @ [e, 1, |e|^2]^T``;
    moshi rebuilds the right-hand matrix (2048 x 258) every frame. Here it is kept
    (packed for oneDNN): the same distances up to float rounding.
    """

    def _quantize(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2
        emb = self.embedding
        key = (emb.data_ptr(), None if torch.is_inference(emb) else emb._version)
        aug = self.__dict__.get("_aug")
        if aug is None or self.__dict__.get("_aug_key") != key:
            norm = emb.pow(2).sum(-1, keepdim=True)
            aug = torch.cat([emb, torch.ones_like(norm), norm], -1)
            fastlinear.drop(self)  # a new matrix may reuse the old one's address: never match a stale pack
            self.__dict__["_aug"], self.__dict__["_aug_key"] = aug, key
        xn = x.pow(2).sum(-1, keepdim=True)
        xa = torch.cat([x.mul(-2), xn, torch.ones_like(xn)], -1)
        dist = fastlinear.linear(xa, self, "aug", lambda: aug, None)
        return dist.clamp_min_(0).sqrt_().argmin(dim=-1)


class FastRVQ(ResidualVectorQuantization):
    """Residual quantisation loop without moshi's per-level reshapes (same arithmetic)."""

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        layers: list[Any] = list(self.layers[: n_q or len(self.layers)])
        if not all(isinstance(la.project_in, nn.Identity) and type(la._codebook) is FastCodebook for la in layers):
            return super().encode(x, n_q)
        B, D, T = x.shape
        residual = x.transpose(1, 2).reshape(B * T, D)
        codes = []
        for la in layers:
            idx = la._codebook._quantize(residual)
            residual = residual - F.embedding(idx, la._codebook.embedding)
            codes.append(idx)
        return torch.stack(codes).view(len(layers), B, T)


def _parts(mimi: Any, side: str) -> list[tuple[str, nn.Module]]:
    names = {"encode": ("encoder", "encoder_transformer", "downsample"),
             "decode": ("upsample", "decoder_transformer", "decoder")}
    chosen = names["encode"] + names["decode"] if side == "both" else names[side]
    return [(n, getattr(mimi, n)) for n in chosen if getattr(mimi, n, None) is not None]


def accelerate(mimi: Any, precision: str = "fp32", side: str = "both") -> Acceleration:
    """Make a CPU MimiModel's streaming encode/decode faster, in place (see module doc).

    Args:
        mimi: a moshi MimiModel (its own copy: its modules change class).
        precision: ``fp32`` (exact up to rounding), ``bf16`` or ``auto`` (see module doc).
        side: which half to convert (``encode``, ``decode`` or ``both``): packed weights
            cost memory, so convert only the half this copy runs; the other half keeps
            moshi's modules. A later call on the same side sets its precision afresh.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}; got {side!r}")
    device = next(mimi.parameters()).device
    resolved = resolve_precision(precision, device)
    if device.type != "cpu":
        return Acceleration("stock", 0, 0, (), f"not applied on {device.type}: moshi's own (CUDA-graph) path is kept")
    dtype = next(mimi.parameters()).dtype
    note = ""
    if dtype != torch.float32:  # the GEMM convs work in any dtype; the transformer step keeps moshi's code
        resolved, note = str(dtype).removeprefix("torch."), f"model is {dtype}: precision {precision!r} not applied"
    lp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolved)
    conv_dtype = torch.float16 if resolved == "fp16" else torch.float32  # bf16 keeps the convs exact
    convs, transformers, left = 0, 0, []
    for name, part in _parts(mimi, side):
        n, skipped = convert_convs(part, conv_dtype)
        convs += n
        left += [f"{name}.{s}" for s in skipped]
        tr = getattr(part, "transformer", None)
        if tr is not None:
            if convert_transformer(tr, lp):
                transformers += 1
            else:
                left.append(f"{name}.transformer")
    if side != "decode":
        for mod in mimi.quantizer.modules():
            if type(mod) is EuclideanCodebook:
                mod.__class__ = FastCodebook
            elif type(mod) is ResidualVectorQuantization:
                mod.__class__ = FastRVQ
    return Acceleration(resolved, convs, transformers, tuple(left), note)
