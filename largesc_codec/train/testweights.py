"""Small random checkpoints in the released on-disk format (``largesc make-test-weights``).

The directory written here is laid out like the hub repo ``kyutai/moshiko-pytorch-bf16``:
``model.safetensors`` (a 2-layer Moshi LM) and the Mimi safetensors, under the key
names, stacking and dtypes of the released files (see ``released_layout``), plus
a ``config.json`` (LM config and file names, read by moshi's ``CheckpointInfo``;
the hub repo has none, moshi then assumes the 7B config) and a ``mimi_config.json``
for the Mimi written. Same architecture code as the real models, random
initialisation: they are UNTRAINED, so the audio they decode is not speech. They
exist so tests and offline runs go through moshi's loaders, key conversion
included, exactly as the released weights do.

Mimi comes in two sizes (``mimi=``): ``small`` (default; ``SMALL_MIMI``, real
strides and token format, narrow layers: fast to build and run) and ``full``
(moshi's own full-size config, 79.3 M parameters, the one ``bench/many_calls.py
--mimi full`` and ``largesc bench latency --mimi full`` build with random
weights): a directory whose Mimi costs what the released one costs, for
capacity runs of the real commands (``--weights DIR``). Both have 32 codebooks
of 2048 entries at 12.5 Hz, so their tokens are interchangeable on the wire.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from largesc_codec.neural.model import MIMI_NAME, MOSHI_NAME

MIMI_CONFIG_NAME = "mimi_config.json"

# Mimi keeps its real strides (24 kHz -> 12.5 Hz, 32 codebooks of 2048); only widths shrink.
SMALL_MIMI: dict[str, Any] = {
    "sample_rate": 24000,
    "channels": 1,
    "frame_rate": 12.5,
    "seanet": {
        "channels": 1, "dimension": 64, "causal": True, "n_filters": 8,
        "n_residual_layers": 1, "activation": "ELU", "compress": 2, "dilation_base": 2,
        "disable_norm_outer_blocks": 0, "kernel_size": 7, "residual_kernel_size": 3,
        "last_kernel_size": 3, "norm": "none", "pad_mode": "constant",
        "ratios": [8, 6, 5, 4], "true_skip": True,
    },
    "quantizer": {
        "dimension": 32, "n_q": 32, "bins": 2048, "input_dimension": 64, "output_dimension": 64,
    },
    "transformer": {
        "d_model": 64, "num_heads": 4, "num_layers": 1, "causal": True, "layer_scale": 0.01,
        "context": 250, "conv_layout": True, "max_period": 10000, "gating": "none",
        "norm": "layer_norm", "positional_embedding": "rope", "dim_feedforward": 128,
        "input_dimension": 64, "output_dimensions": [64],
    },
}

# Moshi's LM layout (text + 8 generated + 8 input codebooks, acoustic delay 1), tiny widths.
SMALL_LM: dict[str, Any] = {
    "dim": 128, "text_card": 64, "existing_text_padding_id": 3, "n_q": 16, "dep_q": 8,
    "card": 2048, "num_heads": 4, "num_layers": 2, "hidden_scale": 4.125, "causal": True,
    "layer_scale": None, "context": 3000, "max_period": 10000, "gating": "silu",
    "norm": "rms_norm_f32", "positional_embedding": "rope", "depformer_dim": 64,
    "depformer_dim_feedforward": 256, "depformer_num_heads": 4, "depformer_num_layers": 1,
    "depformer_layer_scale": None, "depformer_multi_linear": True, "depformer_context": 8,
    "depformer_max_period": 10000, "depformer_gating": "silu", "depformer_pos_emb": "none",
    "depformer_weights_per_step": True,
    "delays": [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1],
}


def _calibration_audio(seconds: float, gen: torch.Generator) -> torch.Tensor:
    """Deterministic speech-like test signal: gliding harmonics with noise bursts."""
    n = int(seconds * 24000)
    t = torch.arange(n) / 24000.0
    f0 = 120 + 60 * torch.sin(2 * torch.pi * 0.7 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / 24000.0
    voiced = sum(torch.sin(h * phase) / h for h in range(1, 8))
    envelope = (torch.sin(2 * torch.pi * 2.3 * t) > 0).float()
    noise = torch.randn(n, generator=gen) * (1 - envelope) * 0.3
    return (0.3 * voiced * envelope + noise).view(1, 1, n)


@torch.no_grad()
def _init_codebooks(mimi: Any, seed: int) -> None:
    """Fill the (all-zero, uninitialised) codebooks from calibration residuals.

    A fresh quantiser maps every frame to token 0 (training fills codebooks by
    k-means). Drawing each level's entries from the residuals left by the levels
    before it, as k-means initialisation does, gives varied, reproducible tokens.
    """
    gen = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the convolutions' float sums depend on the thread count: same weights everywhere
    try:
        emb = mimi._encode_to_unquantized_latent(_calibration_audio(10.0, gen))
    finally:
        torch.set_num_threads(threads)
    for rvq in (mimi.quantizer.rvq_first, mimi.quantizer.rvq_rest):
        residual = rvq.input_proj(emb)[0].T  # (T, dim)
        for layer in rvq.vq.layers:
            book = layer._codebook
            size = book.embedding_sum.shape[0]
            picks = residual[torch.randint(len(residual), (size,), generator=gen)]
            spread = residual.std(0, keepdim=True) * 0.5
            entries = picks + torch.randn(picks.shape, generator=gen) * spread
            book.embedding_sum.copy_(entries * book.cluster_usage[:, None])
            book._initialized.fill_(1)
            book._embedding = None
            book._cached_initialized = False
            dist = torch.cdist(residual, entries)
            residual = residual - entries[dist.argmin(1)]


# moshi 0.1, which wrote the released checkpoints, held one ``in_proj_weight`` and one
# ``out_proj`` Linear per attention, the depformer's per-step weights stacked along dim 0.
# moshi >= 0.2 holds one Linear per step and splits on load (StreamingMultiheadAttention._load_hook).
_PER_STEP = re.compile(r"^(?P<attn>(?:.*\.)?)(?P<proj>in|out)_projs\.(?P<step>\d+)\.weight$")
_RELEASED_NAME = {"in": "in_proj_weight", "out": "out_proj.weight"}


def released_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` under the released names: per-step attention projections stacked, step 0 first.

    The inverse of moshi's load hook: ``...self_attn.in_projs.{i}.weight`` for i in 0..n-1
    become one ``...self_attn.in_proj_weight`` of n times the rows (``out_projs`` likewise
    ``out_proj.weight``). Every other key (``depformer_in.{i}``, ``linears.{i}``,
    ``gating.{i}``, codebooks, convolutions) is stored per module in the release too.
    """
    out: dict[str, torch.Tensor] = {}
    stacks: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    for name, value in state.items():
        m = _PER_STEP.match(name)
        if m is None:
            out[name] = value
        else:
            stacks.setdefault((m["attn"], m["proj"]), {})[int(m["step"])] = value
    for (attn, proj), steps in stacks.items():
        if sorted(steps) != list(range(len(steps))):
            raise ValueError(f"{attn}{proj}_projs has steps {sorted(steps)}, not 0..{len(steps) - 1}")
        out[attn + _RELEASED_NAME[proj]] = torch.cat([steps[i] for i in range(len(steps))])
    return out


MIMI_KINDS = ("small", "full")


def mimi_config(kind: str = "small") -> dict[str, Any]:
    """The Mimi config of ``kind``: ``small`` (``SMALL_MIMI``) or ``full`` (moshi's own, as in the release)."""
    if kind == "small":
        return copy.deepcopy(SMALL_MIMI)
    if kind == "full":
        from moshi.models import loaders

        return copy.deepcopy(loaders._mimi_config)  # what get_mimi() builds without a config
    raise ValueError(f"Mimi kind must be one of {', '.join(MIMI_KINDS)}, got {kind!r}")


def build_test_models(seed: int = 0, mimi: str = "small") -> tuple[Any, Any]:
    """The random (Mimi, LM) pair that ``make_test_weights`` saves, in float32; reproducible.

    ``mimi``: ``small`` or ``full`` (see ``mimi_config``); the LM is the small one either way.
    """
    from moshi.models import loaders

    config = mimi_config(mimi)
    torch.manual_seed(seed)
    mimi_model = loaders.get_mimi(None, config, device="cpu")
    _init_codebooks(mimi_model, seed)
    lm = loaders.get_moshi_lm(None, lm_kwargs=SMALL_LM, device="cpu", dtype=torch.float32)
    return mimi_model, lm


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in released_layout(state).items()}, str(path))


def make_test_weights(out_dir: str | Path, seed: int = 0, mimi: str = "small") -> Path:
    """Write random Mimi (``small`` or ``full``) + small Moshi LM checkpoints and config.json to ``out_dir``."""
    config_mimi = mimi_config(mimi)  # a bad kind fails before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mimi_model, lm = build_test_models(seed, mimi)
    _save(mimi_model.state_dict(), out / MIMI_NAME)  # Mimi is released in float32
    (out / MIMI_CONFIG_NAME).write_text(json.dumps(config_mimi, indent=1))
    # The LM is released in bfloat16 (the repo's "-bf16"); moshi's loader casts it to the dtype asked for.
    lm_state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in lm.state_dict().items()}
    _save(lm_state, out / MOSHI_NAME)
    config = dict(SMALL_LM)
    config.update(
        moshi_name=MOSHI_NAME,
        mimi_name=MIMI_NAME,
        mimi_config_name=MIMI_CONFIG_NAME,
        # model_id is the one free-form key moshi's CheckpointInfo sets aside.
        model_id={
            "largesc_untrained": True,
            "largesc_mimi": mimi,
            "note": "Random weights from `largesc make-test-weights`: audio out is not speech.",
        },
    )
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return out
