"""bench/mimi_stream.py's checkpoint writer for the rustymimi anchor: the released key layout, loadable by moshi."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


BENCH = Path(__file__).resolve().parents[1] / "bench" / "mimi_stream.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mimi_stream_bench", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_write_released_mimi_round_trips_through_moshi(tmp_path: Path) -> None:
    import torch
    from moshi.models import loaders
    from safetensors import safe_open

    from largesc_codec.neural.model import MIMI_NAME
    from largesc_codec.train.testweights import mimi_config

    torch.manual_seed(0)
    config = mimi_config("small")
    mimi = loaders.get_mimi(None, config, device="cpu")
    path = _bench().write_released_mimi(mimi, tmp_path)
    assert path == tmp_path / MIMI_NAME
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
    assert not any(".in_projs." in k or ".out_projs." in k for k in keys)  # moshi 0.1 names, as released
    assert any(k.endswith("self_attn.in_proj_weight") for k in keys)
    loaded = loaders.get_mimi(str(path), config, device="cpu")
    for (name, a), (_, b) in zip(mimi.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_rustymimi_variant_is_known_and_install_hint_names_the_pin() -> None:
    bench = _bench()
    assert bench.RUSTY == "rustymimi" and "rustymimi==0.4.1" in bench.RUSTY_INSTALL
    pins = (BENCH.parents[1] / "requirements" / "test.txt").read_text()
    assert "rustymimi==0.4.1" in pins
