"""LoRA fine-tuning for concealment on the small LM (CPU), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from largesc_codec import finetune as ft
from largesc_codec.cli import main
from largesc_codec.lm_concealer import LMConcealer

pytestmark = pytest.mark.model

CLIPS = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))


def test_training_lowers_the_masked_loss_and_adapter_round_trips(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seqs = ft.encode_files(CLIPS[:3], models)
    assert all(s.shape[1] == 8 and s.dtype == np.int64 for s in seqs)
    masks = [ft.loss_mask(len(s), "uniform:0.25", seed=i) for i, s in enumerate(seqs)]
    assert 0.1 < np.mean(np.concatenate(masks)) < 0.4
    cfg = ft.FinetuneConfig(steps=40, lr=3e-3, seq_frames=32, batch_size=4, rank=8)
    lm = ft.add_lora(models.load_lm(), cfg)
    trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # base weights frozen
    losses = ft.train(lm, seqs, masks, cfg)
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.3
    acc = ft.lost_frame_accuracy(lm, seqs, masks)
    lm.save_pretrained(str(tmp_path / "adapter"))

    merged = ft.load_adapter(models.load_lm(), tmp_path / "adapter")
    assert type(merged).__name__ == "LMModel"  # merged: plain moshi LM, streamable by LMGen
    assert ft.lost_frame_accuracy(merged, seqs, masks)["all"] == pytest.approx(acc["all"], abs=1e-6)
    c = LMConcealer(merged)
    c.observe(0, tuple(int(t) for t in seqs[0][0]))
    c.prepare()
    assert len(c.conceal(1, (), 8).tokens) == 8

    with pytest.raises(ValueError, match="adapter_config.json"):
        ft.load_adapter(models.load_lm(), tmp_path)


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


def test_finetune_command_compares_regimes(test_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ft"
    rc = main(["finetune", *map(str, CLIPS[:3]), "--weights", str(test_weights), "--out", str(out),
               "--steps", "6", "--seq-frames", "24", "--batch-size", "2",
               "--channel", "uniform:0.2", "--channel", "ge:0.1,0.3"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["regimes"]) == {"uniform:0.2", "ge:0.1,0.3"}
    for regime in report["regimes"].values():
        assert Path(regime["adapter"], "adapter_config.json").is_file()
        assert set(regime["heldout_accuracy"]) == {"uniform:0.2", "ge:0.1,0.3"}
    assert "held-out token accuracy" in capsys.readouterr().out
    assert main(["finetune", str(CLIPS[0]), "--weights", str(test_weights), "--out", str(out)]) == 2
