"""GEMMs through oneDNN with prepacked weights (exact up to float rounding).

Why. torch's fp32 GEMM on CPU is MKL's, and on the AMD CPU where this was
measured MKL runs its generic kernels: for Mimi's few-row products (2 rows a streaming step in the
transformers, 2-480 in the convs) oneDNN with a prepacked weight was 2-6x
faster at every shape measured (docs/performance.md), e.g. 2 x 8192 @ 8192 x
1024: 2.9 ms MKL, 0.73 ms oneDNN on 2 threads. torch ships oneDNN and uses
these two ops for its own frozen inductor graphs: ``mkldnn._reorder_linear_weight``
(pack once) and ``mkldnn._linear_pointwise`` (run).

The packed copy sits in a side table keyed by the owning module (a weak key:
packed oneDNN tensors cannot be deep-copied, so a copied model simply packs
again on first use) and is rebuilt when the weight's storage or version
changes (an in-place update such as ``load_state_dict``); after swapping in
new weight tensors otherwise, run ``fastmimi.accelerate`` again (it repacks).
Where the ops are missing (a torch build without oneDNN) ``linear`` is plain
``F.linear``; so is a bf16 product on a CPU where oneDNN packs no bf16
weights (no avx512bw/vl/dq, no avx_ne_convert): the same rounding, slower.

fp16 (``dtype=torch.float16``): fp16 weights, fp32 input and arithmetic, through
fbgemm (``quantized.linear_prepack_fp16`` / ``linear_dynamic_fp16``, in every x86
torch build). Mimi's streaming GEMMs have 1-16 rows, so reading the weights is
most of their cost: at 1-2 rows half the bytes ran 1.7-2.4x faster on the AVX2
CPU measured (1.1x at 96 rows; docs/performance.md), at a relative error of about 2e-4, where bf16
(7-bit mantissa, and no fast kernel without avx512) rounds inputs too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F
from torch import nn

PACK_ROWS_HINT = 16  # oneDNN picks its blocked layout for this many rows; any row count works
_PACKED: WeakKeyDictionary[nn.Module, dict[str, tuple[Any, torch.Tensor]]] = WeakKeyDictionary()


@lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether this torch build runs prepacked oneDNN linears (tried once on a tiny product)."""
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(3, 2), 2)
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 2), packed, None, "none", [], "")
        return bool(torch.backends.mkldnn.is_available() and torch.equal(y, torch.full((2, 3), 2.0)))
    except (AttributeError, RuntimeError, NotImplementedError):  # ops absent or unsupported in this build
        return False  # capability probe: callers fall back to F.linear (tested in tests/largesc_codec/fast/test_fastmimi.py)


@lru_cache(maxsize=1)
def onednn_bf16_available() -> bool:
    """Whether oneDNN packs bf16 weights on this CPU (it wants avx512bw/vl/dq or avx_ne_convert)."""
    if not onednn_available():
        return False
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.ones(3, 2, dtype=torch.bfloat16), 2)
        return True
    except RuntimeError:  # capability probe: bf16 then runs through F.linear, same rounding, slower
        return False


@lru_cache(maxsize=1)
def fbgemm_fp16_available() -> bool:
    """Whether this torch build runs fbgemm's fp16-weight linears (tried once on a tiny product)."""
    try:
        w = torch.ops.quantized.linear_prepack_fp16(torch.ones(3, 2), None)
        y = torch.ops.quantized.linear_dynamic_fp16(torch.ones(2, 2), w)
        return bool(torch.equal(y, torch.full((2, 3), 2.0)))
    except (AttributeError, RuntimeError, NotImplementedError):  # capability probe: no fbgemm (e.g. an ARM build)
        return False  # callers then run F.linear on fp16-rounded weights: same weights, slower


def _key(w: torch.Tensor, dtype: torch.dtype) -> Any:
    return w.data_ptr(), None if torch.is_inference(w) else w._version, dtype


def packed(owner: nn.Module, slot: str, weight: Callable[[], torch.Tensor], dtype: torch.dtype) -> torch.Tensor | None:
    """oneDNN-packed ``[out, in]`` matrix of ``owner`` (``weight()`` builds it), packed once per weight version.

    ``weight()`` must return a view of (or the) module parameter, so that its data
    pointer and version say when to pack again. None when oneDNN is not available.
    """
    if dtype == torch.float16:
        if not fbgemm_fp16_available():
            return None
    elif not onednn_available() or (dtype == torch.bfloat16 and not onednn_bf16_available()):
        return None
    w = weight()
    key = _key(w, dtype)
    slots = _PACKED.setdefault(owner, {})
    hit = slots.get(slot)
    if hit is None or hit[0] != key:
        with torch.inference_mode():
            if dtype == torch.float16:  # fbgemm rounds the fp32 matrix to fp16 as it packs
                hit = (key, torch.ops.quantized.linear_prepack_fp16(w.detach().float().contiguous(), None))
            else:
                mat = w.detach().to(dtype).contiguous()
                hit = (key, torch.ops.mkldnn._reorder_linear_weight(mat, PACK_ROWS_HINT))
        slots[slot] = hit
    return hit[1]


def linear(x: torch.Tensor, owner: nn.Module, slot: str, weight: Callable[[], torch.Tensor],
           bias: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``F.linear(x, weight(), bias)`` via a packed copy.

    ``dtype`` bf16 rounds weight and input, fp16 the weight only; the output is fp32.
    """
    w = packed(owner, slot, weight, dtype)
    if dtype == torch.float16 and x.dtype == torch.float32:
        y = F.linear(x, weight().half().float()) if w is None else torch.ops.quantized.linear_dynamic_fp16(x, w)
        return y if bias is None else y + bias
    if w is None:
        if dtype == x.dtype:
            return F.linear(x, weight(), bias)
        y = F.linear(x.to(dtype), weight().to(dtype)).to(x.dtype)
        return y if bias is None else y + bias
    if dtype == x.dtype:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")
    y = torch.ops.mkldnn._linear_pointwise(x.to(dtype), w, None, "none", [], "").to(x.dtype)
    return y if bias is None else y + bias


def drop(owner: nn.Module) -> None:
    """Forget ``owner``'s packed copies (e.g. when its precision changes)."""
    _PACKED.pop(owner, None)
