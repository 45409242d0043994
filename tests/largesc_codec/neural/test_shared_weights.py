"""Per-call model copies share the weights and stream on their own (neural/model.py shared_weights_copy)."""

from __future__ import annotations

from typing import Any

import torch

from largesc_codec.neural.model import shared_weights_copy


def _encode(mimi: Any, pcm: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), mimi.streaming(1):
        return torch.cat([mimi.encode(pcm[..., i : i + 1920]) for i in range(0, pcm.shape[-1], 1920)], dim=-1)


def test_mimi_copies_share_parameters_but_not_streaming_state(models: Any) -> None:
    a, b = models.new_mimi(), models.new_mimi()
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys() and all(pa[k].data_ptr() == pb[k].data_ptr() for k in pa)
    assert a is not b
    torch.manual_seed(0)
    x, y = torch.randn(1, 1, 1920 * 4) * 0.1, torch.randn(1, 1, 1920 * 4) * 0.1
    alone = _encode(b, y)
    with torch.no_grad(), a.streaming(1):  # a is mid-stream while b encodes: b's tokens must not change
        a.encode(x[..., :1920])
        assert torch.equal(_encode(b, y), alone)


def test_lm_copies_share_parameters(models: Any) -> None:
    lm = models.load_lm()
    copy = shared_weights_copy(lm)
    params = dict(lm.named_parameters())
    assert all(params[k].data_ptr() == p.data_ptr() for k, p in copy.named_parameters())
    assert copy is not lm
