"""`largesc make-test-weights` writes the released checkpoints' layout, and loads back to what it built.

The released ``kyutai/moshiko-pytorch-bf16`` files were written by moshi 0.1: one stacked
``in_proj_weight`` / ``out_proj.weight`` per attention (the depformer's 8 per-step weights
stacked step 0 first), the LM in bfloat16, Mimi in float32. moshi >= 0.2 converts these on
load; these tests pin that the test weights take that conversion path, as users' weights do.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from largesc_codec.neural.model import MIMI_NAME, MOSHI_NAME, load_models
from largesc_codec.train.testweights import SMALL_LM, build_test_models, released_layout

pytestmark = pytest.mark.model

DEP_Q, DIM, DEP_DIM = SMALL_LM["dep_q"], SMALL_LM["dim"], SMALL_LM["depformer_dim"]


@pytest.fixture(scope="module")
def built(test_weights: Path) -> tuple[Any, Any]:
    """The float32 (Mimi, LM) that the session's test_weights fixture saved (same seed; any thread count)."""
    return build_test_models(seed=0)


def test_lm_file_has_the_released_names_stacking_and_dtype(test_weights: Path) -> None:
    saved = load_file(str(test_weights / MOSHI_NAME))
    assert not [k for k in saved if "in_projs." in k or "out_projs." in k]
    assert {v.dtype for v in saved.values()} == {torch.bfloat16}
    for layer in range(SMALL_LM["num_layers"]):
        attn = f"transformer.layers.{layer}.self_attn."
        assert saved[attn + "in_proj_weight"].shape == (3 * DIM, DIM)
        assert saved[attn + "out_proj.weight"].shape == (DIM, DIM)
    # The depformer's per-codebook attention weights: one tensor, DEP_Q steps stacked (as moshi's
    # scripts/import_mlx.py reads them: .chunk(dep_q)[step]); its other per-codebook modules stay lists.
    assert saved["depformer.layers.0.self_attn.in_proj_weight"].shape == (DEP_Q * 3 * DEP_DIM, DEP_DIM)
    assert saved["depformer.layers.0.self_attn.out_proj.weight"].shape == (DEP_Q * DEP_DIM, DEP_DIM)
    for step in range(DEP_Q):
        for key in (f"depformer_in.{step}.weight", f"linears.{step}.weight",
                    f"depformer.layers.0.gating.{step}.linear_in.weight"):
            assert key in saved, key
    assert {"emb.15.weight", "text_emb.weight", "text_linear.weight", "out_norm.alpha",
            "depformer_text_emb.weight", "depformer_emb.6.weight"} <= set(saved)


def test_mimi_file_has_the_released_names_and_dtype(test_weights: Path) -> None:
    saved = load_file(str(test_weights / MIMI_NAME))
    assert not [k for k in saved if "in_projs." in k or "out_projs." in k]
    assert {v.dtype for v in saved.values()} == {torch.float32}
    for side in ("encoder", "decoder"):
        attn = f"{side}_transformer.transformer.layers.0.self_attn."
        assert saved[attn + "in_proj_weight"].shape == (3 * 64, 64)
        assert saved[attn + "out_proj.weight"].shape == (64, 64)
    book = "quantizer.rvq_rest.vq.layers.30._codebook."
    assert {book + "embedding_sum", book + "cluster_usage", book + "_initialized"} <= set(saved)
    assert {"downsample.conv.conv.conv.weight", "upsample.convtr.convtr.convtr.weight"} <= set(saved)


def test_loading_gives_back_the_built_models(test_weights: Path, built) -> None:  # type: ignore[no-untyped-def]
    mimi, lm = built
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)  # the weights must not depend on it
    try:
        again, _ = build_test_models(seed=0)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), mimi.state_dict().values()))
    models = load_models(str(test_weights))
    want = mimi.state_dict()
    got = models.mimi.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "Mimi must load back bit for bit"

    loaded = models.load_lm()  # float32 on CPU, as users get it
    assert loaded.dtype == torch.float32
    want_lm = {k: v.to(torch.bfloat16).float() for k, v in lm.state_dict().items()}
    got_lm = loaded.state_dict()
    assert got_lm.keys() == want_lm.keys()
    differ = [k for k in want_lm if not torch.equal(got_lm[k], want_lm[k])]
    assert not differ, f"LM parameters differ from the built ones after bf16 rounding: {differ[:5]}"


def test_loaded_lm_forward_is_the_built_lm_within_bf16_rounding(test_weights: Path, built) -> None:  # type: ignore[no-untyped-def]
    _, lm = built
    loaded = load_models(str(test_weights)).load_lm()
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 2048, (1, lm.num_codebooks, 6), generator=gen)
    codes[:, 0] %= SMALL_LM["text_card"]
    rounded = copy.deepcopy(lm)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
        out, ref, exact = loaded(codes), lm(codes), rounded(codes)
    # Same weights as the built LM rounded to bf16: the same logits, every depformer step included.
    torch.testing.assert_close(out.logits, exact.logits, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(out.text_logits, exact.text_logits, rtol=0, atol=0, equal_nan=True)
    # Against the float32 original only bf16 rounding of the weights separates them.
    valid = out.mask.unsqueeze(-1).expand_as(out.logits)
    diff = (out.logits - ref.logits)[valid].abs().max()
    assert 0 < diff < 0.05 * ref.logits[valid].std(), diff


def test_released_layout_is_what_moshis_load_hook_undoes(built) -> None:  # type: ignore[no-untyped-def]
    _, lm = built
    state = lm.state_dict()
    released = released_layout(state)
    stacked = released["depformer.layers.0.self_attn.in_proj_weight"]
    for step in range(DEP_Q):  # step-major, as moshi's hook splits it: view(dep_q, -1, dim)[step]
        assert torch.equal(stacked.view(DEP_Q, -1, DEP_DIM)[step],
                           state[f"depformer.layers.0.self_attn.in_projs.{step}.weight"])
    from moshi.models import loaders

    fresh = loaders.get_moshi_lm(None, lm_kwargs=SMALL_LM, device="cpu", dtype=torch.float32)
    fresh.load_state_dict(released)  # strict: moshi's hook maps every released key back
    assert all(torch.equal(v, state[k]) for k, v in fresh.state_dict().items())
    with pytest.raises(ValueError, match="steps \\[0, 2\\]"):
        released_layout({"a.in_projs.0.weight": torch.zeros(1), "a.in_projs.2.weight": torch.zeros(1)})


def test_cli_writes_the_released_layout(tmp_path: Path) -> None:
    from largesc_codec.cli.app import main

    assert main(["make-test-weights", str(tmp_path / "w"), "--seed", "1"]) == 0
    saved = load_file(str(tmp_path / "w" / MOSHI_NAME))
    assert "transformer.layers.0.self_attn.in_proj_weight" in saved
    assert saved["emb.0.weight"].dtype == torch.bfloat16
    models = load_models(str(tmp_path / "w"))
    assert models.untrained and models.load_lm().dep_q == DEP_Q


def test_full_size_mimi_is_moshis_config_and_loads_through_the_product_loader(tmp_path: Path) -> None:
    """`--mimi full`: moshi's own Mimi config (79.3 M parameters), released layout, same token format."""
    import json

    from moshi.models import loaders

    from largesc_codec.cli.app import main
    from largesc_codec.train.testweights import MIMI_CONFIG_NAME, SMALL_MIMI

    out = tmp_path / "full"
    assert main(["make-test-weights", str(out), "--mimi", "full"]) == 0
    assert json.loads((out / MIMI_CONFIG_NAME).read_text()) == loaders._mimi_config
    saved = load_file(str(out / MIMI_NAME))
    dim = loaders._seanet_kwargs["dimension"]
    attn = "encoder_transformer.transformer.layers.7.self_attn."
    assert saved[attn + "in_proj_weight"].shape == (3 * dim, dim) and not [k for k in saved if "in_projs." in k]
    models = load_models(str(out))  # the product's loader, moshi's CheckpointInfo underneath
    reference = loaders.get_mimi(None, device="cpu")  # what the benches' `--mimi full` builds
    count = sum(p.numel() for p in models.mimi.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) > 79e6
    assert models.mimi.state_dict().keys() == reference.state_dict().keys()
    # Tokens interchangeable with the small test Mimi's: 32 codebooks of 2048 at 12.5 Hz.
    assert (models.mimi.total_codebooks, models.mimi.cardinality, models.mimi.frame_rate) == (
        SMALL_MIMI["quantizer"]["n_q"], SMALL_MIMI["quantizer"]["bins"], SMALL_MIMI["frame_rate"])
    assert models.untrained and models.checkpoint.model_id["largesc_mimi"] == "full"
    with torch.no_grad():  # codebooks filled from calibration residuals: tokens vary
        codes = models.mimi.encode(torch.randn(1, 1, 1920 * 4, generator=torch.Generator().manual_seed(0)) * 0.1)
    assert codes.shape == (1, 8, 4) and len(set(codes[0, 0].tolist() + codes[0, 1].tolist())) > 1
