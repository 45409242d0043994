"""LoRA fine-tuning for concealment on the small LM (CPU), end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from largesc_codec.cli.app import main
from largesc_codec.cli.finetune import _loss_summary
from largesc_codec.neural.framing import write_wav
from largesc_codec.neural.lm_concealer import LMConcealer
from largesc_codec.train import finetune as ft

pytestmark = pytest.mark.model

CLIPS = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN / Infinity (Python's json accepts them, JSON does not)."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in report.json")

    return json.loads(text, parse_constant=refuse)


def test_training_lowers_the_masked_loss_and_adapter_round_trips(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seqs = ft.encode_files(CLIPS[:3], models)
    assert all(s.shape[1] == 8 and s.dtype == np.int64 for s in seqs)
    masks = [ft.loss_mask(len(s), "uniform:0.25", seed=i) for i, s in enumerate(seqs)]
    assert 0.1 < np.mean(np.concatenate(masks)) < 0.4
    cfg = ft.FinetuneConfig(steps=40, lr=3e-3, seq_frames=32, batch_size=4, rank=8)
    base = models.load_lm()
    before = ft.lost_frame_accuracy(base, seqs, masks)
    lm = ft.add_lora(base, cfg)
    trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # base weights frozen
    losses = ft.train(lm, seqs, masks, cfg)
    assert len(losses) == 40 and all(isinstance(v, float) for v in losses)
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.3
    acc = ft.lost_frame_accuracy(lm, seqs, masks)
    lm.save_pretrained(str(tmp_path / "adapter"))
    # One LM copy serves every regime: removing the adapters gives the untouched base back.
    unloaded = lm.unload()
    assert unloaded is base and type(unloaded).__name__ == "LMModel"
    assert ft.lost_frame_accuracy(unloaded, seqs, masks) == before

    merged = ft.load_adapter(models.load_lm(), tmp_path / "adapter")
    assert type(merged).__name__ == "LMModel"  # merged: plain moshi LM, streamable by LMGen
    assert ft.lost_frame_accuracy(merged, seqs, masks)["all"] == pytest.approx(acc["all"], abs=1e-6)
    c = LMConcealer(merged)
    c.observe(0, tuple(int(t) for t in seqs[0][0]))
    c.prepare()
    assert len(c.conceal(1, (), 8).tokens) == 8


def test_training_windows_come_from_long_enough_sequences_only(models) -> None:  # type: ignore[no-untyped-def]
    lm = models.load_lm()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 2048, (1, 8)), rng.integers(0, 2048, (40, 8))]  # a 50 ms file and a 3.2 s one
    masks = [np.ones(1, bool), rng.random(40) < 0.3]
    cfg = ft.FinetuneConfig(seq_frames=16, batch_size=3)
    usable, short = ft.split_by_length(seqs, cfg.seq_frames)
    assert (usable, short) == ([1], [0])
    erased, true, hidden = ft._make_batch(lm, seqs, masks, usable, cfg, rng)
    assert erased.shape == true.shape == (3, lm.num_codebooks, 16) and hidden.shape == (3, 8, 16)
    assert erased.device == true.device == hidden.device == ft.model_device(lm)
    with pytest.raises(ValueError, match="no training sequence is 64 frames long"):
        ft.train(lm, seqs, masks, ft.FinetuneConfig(seq_frames=64, steps=1))


def test_erased_context_matches_what_the_concealer_feeds(models) -> None:  # type: ignore[no-untyped-def]
    lm = models.load_lm()
    audio = torch.randint(0, 2048, (1, 6, 8))
    lost = torch.tensor([[False, False, True, True, False, False]])
    keep = torch.tensor([[0, 0, 2, 0, 0, 0]])
    erased, true, hidden = ft._erase(lm, audio, lost, keep)
    assert hidden[0, :, 2].tolist() == [False, False] + [True] * 6  # first 2 codebooks rescued
    assert hidden[0, :, 3].all() and not hidden[0, :, [0, 1, 4, 5]].any()
    assert (erased[0, 1:9][hidden[0]] == lm.zero_token_id).all()
    assert (erased[0, 0] == lm.zero_token_id).all() and (erased[0, 9:] == lm.zero_token_id).all()


def test_bad_adapter_directories_get_one_line_errors(models, test_weights: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "out" / "uniform_0_2"
    ft.add_lora(models.load_lm(), ft.FinetuneConfig(rank=2)).save_pretrained(str(good))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(good, corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"cannot load the LoRA adapter in .*corrupt \(SafetensorError"):
        ft.load_adapter(models.load_lm(), corrupt)
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    shutil.copy(good / "adapter_config.json", config_only)
    with pytest.raises(ValueError, match="no adapter_model.safetensors"):  # local check: never the hub
        ft.load_adapter(models.load_lm(), config_only)
    with pytest.raises(ValueError, match=r"one LoRA adapter per training regime.*: use .*out/uniform_0_2$"):
        ft.load_adapter(models.load_lm(), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no LoRA adapter"):
        ft.load_adapter(models.load_lm(), tmp_path / "empty")
    with pytest.raises(ValueError, match="no such directory"):
        ft.load_adapter(models.load_lm(), tmp_path / "missing")

    capsys.readouterr()
    rc = main(["transmit", str(CLIPS[1]), str(tmp_path / "t.wav"), "--weights", str(test_weights),
               "--plc", "lm", "--adapter", str(corrupt)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "cannot load the LoRA adapter" in err


def test_loss_summary_windows_do_not_overlap() -> None:
    assert _loss_summary([5.0, 4.0, 3.0]) == (5.0, 3.0, 1)
    assert _loss_summary([float(v) for v in range(10)]) == (2.0, 7.0, 5)
    first, last, w = _loss_summary([float(v) for v in range(300)])
    assert (first, last, w) == (4.5, 294.5, 10)


def test_finetune_command_compares_regimes(test_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.wav"
    write_wav(tiny, np.zeros(1200, np.float32))  # 50 ms: shorter than any training window
    out = tmp_path / "ft"
    rc = main(["finetune", str(tiny), *map(str, CLIPS[:3]), "--weights", str(test_weights), "--out", str(out),
               "--steps", "6", "--seq-frames", "24", "--batch-size", "2",
               "--channel", "uniform:0.2", "--channel", "ge:0.1,0.3"])
    assert rc == 0
    report = _strict_json((out / "report.json").read_text())
    assert report["skipped_short_files"] == [str(tiny)] and str(tiny) not in report["train_files"]
    assert set(report["regimes"]) == {"uniform:0.2", "ge:0.1,0.3"}
    for regime in report["regimes"].values():
        assert Path(regime["adapter"], "adapter_config.json").is_file()
        assert set(regime["heldout_accuracy"]) == {"uniform:0.2", "ge:0.1,0.3"}
        assert len(regime["losses"]) == 6 and regime["loss_window_steps"] == 3
    printed = capsys.readouterr().out
    assert "held-out token accuracy" in printed and "skipping 1 training file(s) shorter than" in printed
    assert main(["finetune", str(CLIPS[0]), "--weights", str(test_weights), "--out", str(out)]) == 2


@pytest.mark.parametrize("bad, names", [
    (["--heldout", "1"], "--heldout"),
    (["--heldout", "0.9"], "--heldout"),  # rounds to both files held out
    (["--steps", "0"], "--steps"),
    (["--channel", "none"], "--channel none drops no frames"),
    (["--rank", "0"], "--rank"),
    (["--targets", "nothing_matches"], "matches no module"),
    (["--targets", r"transformer\.layers\.0\.norm1"], "LoRA cannot adapt"),
    (["--out-is-a-file"], "is a file"),
])
def test_finetune_rejects_bad_arguments_before_encoding(  # type: ignore[no-untyped-def]
        bad: list[str], names: str, test_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ft"
    if bad == ["--out-is-a-file"]:
        out.write_text("")
        bad = []
    rc = main(["finetune", *map(str, CLIPS[:2]), "--weights", str(test_weights), "--out", str(out), *bad])
    captured = capsys.readouterr()
    assert rc == 2 and len(captured.err.strip().splitlines()) == 1 and names in captured.err
    assert "encoding" not in captured.out and not (out / "report.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where no GPU is usable")
def test_finetune_on_cuda_without_a_gpu_says_so(test_weights: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["finetune", *map(str, CLIPS[:2]), "--weights", str(test_weights), "--out", str(tmp_path),
               "--device", "cuda"])
    assert rc == 2 and "no CUDA GPU is usable here" in capsys.readouterr().err
