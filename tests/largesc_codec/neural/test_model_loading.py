"""Model loading through moshi's real loaders, on checkpoints the tests write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from largesc_codec.neural.decoder import MimiDecoder
from largesc_codec.neural.encoder import MimiEncoder
from largesc_codec.neural.model import WeightsError, load_models, resolve_checkpoint
from largesc_codec.types import FRAME_SAMPLES

pytestmark = pytest.mark.model


def test_test_weights_load_through_checkpointinfo(test_weights: Path) -> None:
    ckpt = resolve_checkpoint(str(test_weights))
    assert ckpt.moshi_weights == test_weights / "model.safetensors"
    assert ckpt.lm_config["dim"] == 128 and ckpt.mimi_config["seanet"]["dimension"] == 64
    models = load_models(str(test_weights))
    assert models.untrained
    assert models.mimi.total_codebooks == 32 and models.mimi.frame_rate == 12.5
    lm = models.load_lm()
    assert lm.dep_q == 8 and lm.num_codebooks == 17 and lm.card == 2048
    # The weights on disk are the ones loaded (not a fresh random init).
    from safetensors.torch import load_file

    saved = load_file(str(test_weights / "model.safetensors"))
    name = "emb.0.weight"
    assert torch.equal(lm.state_dict()[name].float(), saved[name].float())


def test_missing_files_name_the_fix(tmp_path: Path, test_weights: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist.*make-test-weights"):
        load_models(str(tmp_path / "nope"))
    a_file = tmp_path / "weights.safetensors"
    a_file.write_bytes(b"x")
    with pytest.raises(WeightsError, match="is not a directory.*--weights DIR"):
        load_models(str(a_file))
    partial = tmp_path / "partial"
    shutil.copytree(test_weights, partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing weight files.*model.safetensors"):
        load_models(str(partial))
    (partial / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_models(str(partial))


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path, test_weights: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(test_weights, broken)
    mimi_file = broken / json.loads((broken / "config.json").read_text())["mimi_name"]
    mimi_file.write_bytes(mimi_file.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="could not load Mimi"):
        load_models(str(broken))


def test_unreachable_hub_says_how_to_pass_local_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # same failure as no network, without retries
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError, match="model hub.*--weights DIR"):
        load_models("hf://kyutai/no-such-repo-for-tests")


def test_unreachable_hub_fails_fast_with_one_line(tmp_path: Path) -> None:
    """`--weights hub` with an empty cache and a hub nobody answers: one clear line, no retries."""
    import os
    import subprocess
    import sys

    from largesc_codec.neural.framing import write_wav

    clip = tmp_path / "tone.wav"
    write_wav(clip, np.zeros(8000, np.float32), 16000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")  # port 9: connection refused
    run = subprocess.run([sys.executable, "-m", "largesc_codec.cli", "transmit", str(clip), str(tmp_path / "o.wav"),
                          "--weights", "hub"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr  # no retry chatter, no urllib3 warnings
    assert "could not reach the model hub (http://127.0.0.1:9)" in lines[0] and "--weights DIR" in lines[0]


def test_hub_repo_loads_from_the_local_cache_without_network(tmp_path: Path, test_weights: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    # A hub cache laid out as huggingface_hub writes it, holding the test checkpoint.
    repo_dir = tmp_path / "hub" / "models--largesc--cached-test"
    snapshot = repo_dir / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("0" * 40)
    for f in test_weights.iterdir():
        (snapshot / f.name).symlink_to(f)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "ENDPOINT", "http://127.0.0.1:9")  # any network use would fail
    models = load_models("hf://largesc/cached-test")
    assert models.untrained and Path(models.checkpoint.moshi_weights).parent == snapshot
    assert models.mimi.total_codebooks == 32
    (snapshot / "model.safetensors").unlink()  # incomplete cache: the hub is asked, and is unreachable
    with pytest.raises(WeightsError, match="could not reach the model hub"):
        load_models("hf://largesc/cached-test")


def test_streaming_encode_decode_one_frame_at_a_time(models, speech_file) -> None:  # type: ignore[no-untyped-def]
    from largesc_codec.neural.framing import frames_from_file

    frames = frames_from_file(speech_file)[:25]
    enc8 = MimiEncoder(models.new_mimi(), 8)
    tokens = np.stack([enc8.encode(f) for f in frames])
    assert tokens.shape == (25, 8) and tokens.min() >= 0 and tokens.max() < 2048
    assert len(np.unique(tokens[:, 0])) > 3  # varied tokens on real speech

    # Fewer codebooks = the same leading codebooks (residual quantisation).
    enc3 = MimiEncoder(models.new_mimi(), 3)
    np.testing.assert_array_equal(np.stack([enc3.encode(f) for f in frames]), tokens[:, :3])

    # Streaming equals batch on whole frames.
    mimi = models.new_mimi()
    mimi.set_num_codebooks(8)
    with torch.inference_mode():
        batch = mimi.encode(torch.from_numpy(np.concatenate(frames)).view(1, 1, -1))
    agree = (batch[0].T.numpy() == tokens).mean()
    assert agree > 0.95, agree

    dec = MimiDecoder(models.new_mimi())
    outs = [dec.decode(t[: 1 + i % 8]) for i, t in enumerate(tokens)]
    assert all(o.shape == (FRAME_SAMPLES,) and np.all(np.isfinite(o)) for o in outs)


def test_encoder_and_decoder_reject_bad_input(models) -> None:  # type: ignore[no-untyped-def]
    enc = MimiEncoder(models.new_mimi(), 8)
    with pytest.raises(ValueError, match="exactly one frame"):
        enc.encode(np.zeros(1919, np.float32))
    with pytest.raises(ValueError, match="num_codebooks"):
        MimiEncoder(models.new_mimi(), 33)
    dec = MimiDecoder(models.new_mimi())
    with pytest.raises(ValueError, match="0..2047"):
        dec.decode([2048])
    with pytest.raises(ValueError, match="1..32"):
        dec.decode([])


def test_release_without_config_json_resolves_offline_to_the_7b(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The released repo has no config.json (only the weights and tokenizers): moshi then assumes the 7B.

    Cached, it must be read with no network (as moshi itself does offline); copied to a directory,
    ``--weights DIR`` must read it too. The files are stand-ins: only the resolution is checked.
    """
    import huggingface_hub.constants as c

    names = ("model.safetensors", "tokenizer-e351c8d8-checkpoint125.safetensors", "tokenizer_spm_32k_3.model")
    repo_dir = tmp_path / "hub" / "models--kyutai--moshiko-pytorch-bf16"
    snapshot = repo_dir / "snapshots" / ("2" * 40)
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("2" * 40)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in names:
        (snapshot / name).write_bytes(b"x")
        (copy / name).write_bytes(b"x")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)  # any hub use fails
    for weights, where in (("hub", snapshot), (str(copy), copy)):
        ckpt = resolve_checkpoint(weights)
        assert ckpt.lm_config is None and ckpt.mimi_config is None and ckpt.model_type == "moshi"
        assert (ckpt.moshi_weights, ckpt.mimi_weights, ckpt.tokenizer) == tuple(where / n for n in names)
