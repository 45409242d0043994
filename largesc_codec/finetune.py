"""LoRA fine-tuning of the Moshi LM for token-domain packet-loss concealment.

Training data: speech files -> Mimi tokens (8 codebooks, 12.5 Hz). Each
sequence gets a loss mask drawn from a seeded loss model (uniform or
Gilbert-Elliott, the same models as the in-process channel). The LM's main
transformer reads the sequence with lost frames ERASED (moshi's zero token:
the receiver marks concealed frames the same way in its LM context, see
lm_concealer.py); the depformer reads the true tokens of the frame it
predicts (teacher forcing within a step, as at inference where it reads its
own samples). The loss is cross-entropy on the lost frames only. Some lost
frames keep their first 1..3 codebooks, as when redundancy rescued them.

The text stream is erased everywhere (we carry no transcript); the second
(user) audio stream is erased too. Adapters are peft LoRA on the main
transformer by default; they are merged before streaming (LMGen cannot
stream through peft-wrapped multi-linears).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_TARGETS = r".*transformer\.layers\.\d+\.(self_attn\.(in_projs|out_projs)\.\d+|gating\.linear_(in|out))"


@dataclass
class FinetuneConfig:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: str = DEFAULT_TARGETS
    steps: int = 200
    lr: float = 1e-3
    seq_frames: int = 64
    batch_size: int = 4
    partial_prob: float = 0.3
    seed: int = 0


@dataclass
class FinetuneResult:
    losses: list[float] = field(default_factory=list)
    acc_before: dict[str, float] = field(default_factory=dict)
    acc_after: dict[str, float] = field(default_factory=dict)


def encode_files(paths: Sequence[str | Path], models: Any, codebooks: int = 8) -> list[np.ndarray]:
    """Speech files -> token arrays int64 (frames, codebooks), batch Mimi encoding."""
    from .framing import frames_from_file

    mimi = models.new_mimi()
    mimi.set_num_codebooks(codebooks)
    out = []
    for p in paths:
        pcm = np.concatenate(frames_from_file(p))
        with torch.inference_mode():
            codes = mimi.encode(torch.from_numpy(pcm).view(1, 1, -1).to(models.device))
        out.append(codes[0].T.cpu().numpy().astype(np.int64))
    return out


def loss_mask(frames: int, channel: str, seed: int) -> np.ndarray:
    """bool (frames,): True where the seeded loss model drops the frame's packet."""
    from .channel import parse_channel

    model = parse_channel(channel, seed=seed)
    return np.array([model.lost() for _ in range(frames)], dtype=bool)


def _codes(lm: Any, audio: torch.Tensor) -> torch.Tensor:
    """audio long [B, T, 8] -> LM codes [B, 17, T] with text and user stream erased."""
    B, T, K = audio.shape
    codes = torch.full((B, lm.num_codebooks, T), lm.zero_token_id, dtype=torch.long)
    codes[:, 1 : 1 + K] = audio.transpose(1, 2)
    return codes


def concealment_logits(lm: Any, erased: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Logits float [B, 8, T, card] for ``true`` given the ``erased`` context (both [B, 17, T])."""
    from moshi.models.lm import _delay_sequence, _undelay_sequence

    B = erased.shape[0]
    initial = lm._get_initial_token().expand(B, -1, -1)
    ctx = torch.cat([initial, _delay_sequence(lm.delays, erased, initial)], dim=2)
    tgt = torch.cat([initial, _delay_sequence(lm.delays, true, initial)], dim=2)
    transformer_out, _ = lm.forward_text(ctx[:, :, :-1])
    logits = lm.forward_depformer_training(tgt[:, :, 1:], transformer_out)
    logits, _ = _undelay_sequence(lm.delays[1 : 1 + lm.dep_q], logits, fill_value=float("nan"))
    return logits


def _make_batch(
    lm: Any, seqs: list[np.ndarray], masks: list[np.ndarray], cfg: FinetuneConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    audio, lost, keep = [], [], []
    T = min(cfg.seq_frames, *(len(s) for s in seqs))
    for _ in range(cfg.batch_size):
        i = int(rng.integers(len(seqs)))
        start = int(rng.integers(0, len(seqs[i]) - T + 1))
        audio.append(torch.from_numpy(seqs[i][start : start + T, :8]))
        m = torch.from_numpy(masks[i][start : start + T])
        lost.append(m)
        kept = torch.where(torch.from_numpy(rng.random(T) < cfg.partial_prob), torch.from_numpy(rng.integers(1, 4, T)), 0)
        keep.append(kept * m)
    return _erase(lm, torch.stack(audio), torch.stack(lost), torch.stack(keep))


def _erase(lm: Any, audio: torch.Tensor, lost: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (erased codes, true codes, loss weight mask [B, 8, T])."""
    true = _codes(lm, audio)
    K = audio.shape[2]
    cb = torch.arange(K).view(1, K, 1)
    hidden = lost[:, None, :] & (cb >= keep[:, None, :])  # [B, K, T] codebooks to predict
    erased = true.clone()
    erased[:, 1 : 1 + K][hidden] = lm.zero_token_id
    return erased, true, hidden


def masked_loss(lm: Any, erased: torch.Tensor, true: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on hidden tokens, and argmax correctness [N] of those tokens."""
    logits = concealment_logits(lm, erased, true)
    target = true[:, 1 : 1 + lm.dep_q]
    valid = hidden & ~torch.isnan(logits[..., 0])
    if not bool(valid.any()):
        zero = logits.new_zeros(())
        return zero, torch.zeros(0, dtype=torch.bool)
    sel = logits[valid].float()
    loss = F.cross_entropy(sel, target[valid])
    return loss, sel.argmax(-1) == target[valid]


@torch.no_grad()
def lost_frame_accuracy(lm: Any, seqs: list[np.ndarray], masks: list[np.ndarray]) -> dict[str, float]:
    """Argmax token accuracy on lost frames (whole frames hidden): cb0 and all 8."""
    lm.eval()
    hits0, n0, hits, n = 0, 0, 0, 0
    for s, m in zip(seqs, masks):
        audio = torch.from_numpy(s[:, :8])[None]
        lost = torch.from_numpy(m)[None]
        erased, true, hidden = _erase(lm, audio, lost, torch.zeros_like(lost, dtype=torch.long))
        logits = concealment_logits(lm, erased, true)
        target = true[:, 1 : 1 + lm.dep_q]
        valid = hidden & ~torch.isnan(logits[..., 0])
        correct = (logits.argmax(-1) == target) & valid
        hits += int(correct.sum())
        n += int(valid.sum())
        hits0 += int(correct[:, 0].sum())
        n0 += int(valid[:, 0].sum())
    return {"cb0": hits0 / max(n0, 1), "all": hits / max(n, 1), "tokens": float(n)}


def add_lora(lm: Any, cfg: FinetuneConfig) -> Any:
    """Wrap ``lm`` with trainable LoRA adapters (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.targets)
    return get_peft_model(lm, config)


def train(
    lm: Any,
    seqs: list[np.ndarray],
    masks: list[np.ndarray],
    cfg: FinetuneConfig,
    progress: Callable[[int, float], None] | None = None,
) -> Any:
    """Fine-tune a peft-wrapped LM in place; returns the per-step losses."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    losses = []
    lm.train()
    for step in range(cfg.steps):
        erased, true, hidden = _make_batch(lm, seqs, masks, cfg, rng)
        loss, _ = masked_loss(lm, erased, true, hidden)
        if loss.requires_grad:
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(float(loss))
        if progress:
            progress(step, float(loss))
    lm.eval()
    return losses


def load_adapter(lm: Any, adapter_dir: str | Path) -> Any:
    """Load saved LoRA adapters onto ``lm`` and merge them (plain LMModel out, streamable)."""
    from peft import PeftModel

    path = Path(adapter_dir)
    if not (path / "adapter_config.json").is_file():
        raise ValueError(
            f"{path} holds no LoRA adapter (adapter_config.json missing): pass the --out "
            "directory of `largesc finetune`"
        )
    merged = PeftModel.from_pretrained(lm, str(path)).merge_and_unload()
    merged.eval()
    return merged
