"""One streaming step of moshi's StreamingTransformer with per-step work done once.

Why. Mimi's two 8-layer transformers see 2 time steps per 80 ms frame; their
cost is the weight-bound GEMMs (~100 MB fp32 each) plus ~70 small torch ops per
layer. moshi recomputes the rotary tables, the ring-KV positions and the
attention mask in every layer although all layers share them, and updates its
counters with ``torch.where`` even when every row runs.

What ``FastTransformer.forward`` does instead (same parameters, same state
objects, so ``reset_streaming`` and exec masks behave as in moshi):
- rotary cos/sin, KV write slots, key positions and the causal/context mask
  once per step; per layer only the projections, rope, KV scatter, attention
  and feed-forward (same formulas in the same order: results match moshi's);
- counters advance with ``add_`` when every row runs (``torch.where`` otherwise).
The linears run through oneDNN with packed weights (fastlinear.py), 3-4x
faster than torch's MKL GEMM for these 2-row products on this CPU.
Optional (accuracy cost, see docs/performance.md): ``_gemm_dtype`` bf16 (weights and
inputs rounded to bf16) or fp16 (weights only, fbgemm); outputs fp32.

Anything the step does not cover (cross-attention, LoRA or quantised linears,
weights per step, kv_repeat, sin embeddings, non-streaming calls) runs moshi's
own forward.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from moshi.modules.transformer import StreamingTransformer, StreamingTransformerLayer
from torch import nn

from largesc_codec.fast import linear as fastlinear


def linear(x: torch.Tensor, lin: Any) -> torch.Tensor:
    """``lin(x)`` through oneDNN (fastlinear), in the module's ``_gemm_dtype`` (fp32 unless set to bf16 or fp16)."""
    return fastlinear.linear(x, lin, "w", lambda: lin.weight, lin.bias, lin.__dict__.get("_gemm_dtype", torch.float32))


def _layer_fits(layer: Any) -> bool:
    if type(layer) is not StreamingTransformerLayer or layer.skip_self_attn or layer.cross_attention is not None:
        return False
    attn = layer.self_attn
    linears = [attn.in_projs[0], attn.out_projs[0]] + ([layer.linear1, layer.linear2] if layer.gating is None else [])
    return (attn.kv_repeat == 1 and not attn.weights_per_step and attn.causal and attn.context is not None
            and len(attn.in_projs) == 1 and all(type(m) is nn.Linear for m in linears))


def transformer_fits(tr: StreamingTransformer) -> bool:
    """Whether ``FastTransformer`` covers this transformer's streaming step."""
    return tr.positional_embedding in ("rope", "none") and len(tr.layers) > 0 and all(
        _layer_fits(layer) for layer in tr.layers)


def _advance(counter: torch.Tensor, n: int, exec_mask: torch.Tensor, live: bool) -> None:
    if live:
        counter.add_(n)
    else:
        counter.copy_(torch.where(exec_mask, counter + n, counter))


def _rope(qk: torch.Tensor, rotr: torch.Tensor, roti: torch.Tensor, interleave: bool) -> torch.Tensor:
    """moshi's apply_rope on stacked [2, B, H, T, D] queries and keys (same ops, same rounding)."""
    D = qk.shape[-1]
    if interleave:
        z = qk.view(*qk.shape[:-1], D // 2, 2)
        r, i = z[..., 0], z[..., 1]
    else:
        r, i = qk[..., : D // 2], qk[..., D // 2:]
    out_r = r * rotr - i * roti
    out_i = r * roti + i * rotr
    if interleave:
        return torch.stack([out_r, out_i], dim=-1).view(qk.shape)
    return torch.cat([out_r, out_i], dim=-1)


class FastTransformer(StreamingTransformer):
    """StreamingTransformer with a fused streaming step (set by ``convert_transformer`` through ``__class__``)."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        state = self._streaming_state
        if state is None or args or kwargs or x.dtype != torch.float32:
            return super().forward(x, *args, **kwargs)
        layers: list[Any] = list(self.layers)
        attn0 = layers[0].self_attn
        kv0 = attn0._streaming_state.kv_cache
        ctx, cap = attn0.context, kv0.capacity
        if any(la.self_attn.context != ctx or la.self_attn._streaming_state.kv_cache.capacity != cap
               for la in layers):
            return super().forward(x, *args, **kwargs)
        return self._step(x, layers, state.exec_mask)

    def _step(self, x: torch.Tensor, layers: list[Any], exec_mask: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        live = bool(exec_mask.all())
        attn0 = layers[0].self_attn
        st0 = attn0._streaming_state
        H = attn0.num_heads
        Dh = C // H
        offset, end, cap = st0.offset, st0.kv_cache.end_offset, st0.kv_cache.capacity
        steps = torch.arange(T, device=x.device)
        rot: tuple[torch.Tensor, torch.Tensor] | None = None
        rope: Any = self.rope
        if rope is not None:
            ds = torch.arange(Dh // 2, device=x.device, dtype=torch.float32)
            freqs = torch.exp(ds * (-math.log(rope.max_period) * 2 / Dh))
            ts = offset.float().view(-1, 1) + torch.arange(T, device=x.device, dtype=torch.float32)
            ang = freqs * ts.view(B, 1, -1, 1)
            rot = (torch.cos(ang), torch.sin(ang))
        # RingKVCache.complete's slots and positions, shared by every layer.
        slots = ((steps + end.view(-1, 1)) % cap).view(B, 1, T, 1).expand(-1, H, T, Dh)
        ring = torch.arange(cap, device=x.device)
        last = end.view(-1, 1) + T - 1
        delta = ring - last % cap
        pos_k = torch.where(delta <= 0, last + delta, last + delta - cap)
        new_end = end + T if live else torch.where(exec_mask, end + T, end)
        pos_k = torch.where(ring >= new_end.view(-1, 1), torch.full_like(pos_k, -1), pos_k)[:, None]
        d = (offset.view(-1, 1, 1) + steps.view(-1, 1)) - pos_k
        mask = ((pos_k >= 0) & (d >= 0) & (d < attn0.context))[:, None]
        for layer in layers:
            attn = layer.self_attn
            ast = attn._streaming_state
            qkv = linear(layer.norm1(x), attn.in_projs[0]).view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)
            if rot is not None:
                qk = _rope(qkv[:2], rot[0], rot[1], rope.interleave)
                q, k = qk[0], qk[1]
            else:
                q, k = qkv[0], qkv[1]
            cache = ast.kv_cache.cache
            cache[0].scatter_(2, slots, k)
            cache[1].scatter_(2, slots, qkv[2])
            o = F.scaled_dot_product_attention(q, cache[0], cache[1], mask, dropout_p=0.0)
            x = x + layer.layer_scale_1(linear(o.transpose(1, 2).reshape(B, T, C), attn.out_projs[0]))
            h = layer.norm2(x)
            if layer.gating is None:
                upd = linear(layer.activation(linear(h, layer.linear1)), layer.linear2)
            else:
                upd = layer.gating(h)
            x = x + layer.layer_scale_2(upd)
            _advance(ast.kv_cache.end_offset, T, exec_mask, live)
            _advance(ast.offset, T, exec_mask, live)
            ast.offset_cpu += T
            layer._streaming_state.offset_cpu += T
        state: Any = self._streaming_state
        _advance(state.offsets, T, exec_mask, live)
        return x


def convert_transformer(tr: StreamingTransformer, lp_dtype: torch.dtype | None = None) -> bool:
    """Swap ``tr`` to ``FastTransformer`` in place when it fits; pack its linears (``lp_dtype``: bf16, fp16 or None)."""
    if not isinstance(tr, FastTransformer):
        if not transformer_fits(tr):
            return False
        tr.__class__ = FastTransformer
    layers: list[Any] = list(tr.layers)
    dtype = lp_dtype or torch.float32
    for layer in layers:
        attn = layer.self_attn
        for lin in [attn.in_projs[0], attn.out_projs[0]] + ([layer.linear1, layer.linear2] if layer.gating is None else []):
            lin.__dict__["_gemm_dtype"] = dtype
            fastlinear.drop(lin)  # pack afresh from the current weights
            fastlinear.packed(lin, "w", lambda: lin.weight, dtype)
    return True
