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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from largesc_codec.train.data import Mask, Tokens, encode_files, loss_mask, split_by_length

__all__ = [
    "DEFAULT_TARGETS", "FinetuneConfig", "add_lora", "check_targets", "concealment_logits",
    "encode_files", "load_adapter", "loss_mask", "lost_frame_accuracy", "masked_loss", "model_device", "train",
]

DEFAULT_TARGETS = r".*transformer\.layers\.\d+\.(self_attn\.(in_projs|out_projs)\.\d+|gating\.linear_(in|out))"

# Module types peft LoRA can wrap (what a --targets regex may select).
_LORA_TYPES = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)

# Redraws of a training batch that happened to hold no lost frame before giving up.
_MAX_REDRAWS = 1000


@dataclass
class FinetuneConfig:
    """LoRA (rank, alpha, dropout, target regex) and training (steps, lr, window, batch) settings.

    ``partial_prob``: share of lost frames that keep their first 1..3 codebooks (rescued by redundancy).
    """

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    targets: str = DEFAULT_TARGETS
    steps: int = 200
    lr: float = 1e-3
    seq_frames: int = 64
    batch_size: int = 4
    partial_prob: float = 0.3
    seed: int = 0


def model_device(lm: Any) -> torch.device:
    """The device of ``lm``'s weights: every batch is built there."""
    return next(iter(lm.parameters())).device  # type: ignore[no-any-return]


def _codes(lm: Any, audio: torch.Tensor) -> torch.Tensor:
    """audio long [B, T, 8] -> LM codes [B, 17, T] with text and user stream erased."""
    B, T, K = audio.shape
    codes = torch.full((B, lm.num_codebooks, T), lm.zero_token_id, dtype=torch.long, device=audio.device)
    codes[:, 1 : 1 + K] = audio.transpose(1, 2)
    return codes


def concealment_logits(lm: Any, erased: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Logits float [B, 8, T, card] for ``true`` given the ``erased`` context (both [B, 17, T])."""
    from moshi.models.lm import _delay_sequence, _undelay_sequence  # type: ignore[attr-defined]

    B = erased.shape[0]
    initial = lm._get_initial_token().expand(B, -1, -1)
    ctx = torch.cat([initial, _delay_sequence(lm.delays, erased, initial)], dim=2)
    tgt = torch.cat([initial, _delay_sequence(lm.delays, true, initial)], dim=2)
    transformer_out, _ = lm.forward_text(ctx[:, :, :-1])
    logits = lm.forward_depformer_training(tgt[:, :, 1:], transformer_out)
    logits, _ = _undelay_sequence(lm.delays[1 : 1 + lm.dep_q], logits, fill_value=float("nan"))
    return logits


def _make_batch(
    lm: Any, seqs: list[Tokens], masks: list[Mask], usable: list[int], cfg: FinetuneConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``cfg.seq_frames`` windows of the sequences in ``usable`` (all that long), on the LM's device."""
    audio, lost, keep = [], [], []
    T = cfg.seq_frames
    for _ in range(cfg.batch_size):
        i = usable[int(rng.integers(len(usable)))]
        start = int(rng.integers(0, len(seqs[i]) - T + 1))
        audio.append(torch.from_numpy(seqs[i][start : start + T, :8]))
        m = torch.from_numpy(masks[i][start : start + T])
        lost.append(m)
        kept = torch.where(torch.from_numpy(rng.random(T) < cfg.partial_prob), torch.from_numpy(rng.integers(1, 4, T)), 0)
        keep.append(kept * m)
    device = model_device(lm)
    return _erase(lm, torch.stack(audio).to(device), torch.stack(lost).to(device), torch.stack(keep).to(device))


def _erase(lm: Any, audio: torch.Tensor, lost: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (erased codes, true codes, loss weight mask [B, 8, T]), on ``audio``'s device."""
    true = _codes(lm, audio)
    K = audio.shape[2]
    cb = torch.arange(K, device=audio.device).view(1, K, 1)
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
        return zero, torch.zeros(0, dtype=torch.bool, device=logits.device)
    sel = logits[valid].float()
    loss = F.cross_entropy(sel, target[valid])
    return loss, sel.argmax(-1) == target[valid]


@torch.no_grad()
def lost_frame_accuracy(lm: Any, seqs: Iterable[Tokens], masks: Iterable[Mask]) -> dict[str, float]:
    """Argmax token accuracy on lost frames (whole frames hidden): cb0 and all 8.

    ``seqs`` may be a tqdm bar over the sequences (progress); any length works.
    """
    lm.eval()
    device = model_device(lm)
    hits0, n0, hits, n = 0, 0, 0, 0
    for s, m in zip(seqs, masks):
        audio = torch.from_numpy(s[:, :8])[None].to(device)
        lost = torch.from_numpy(m)[None].to(device)
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


def check_targets(lm: Any, targets: str) -> list[str]:
    """Names of the modules of ``lm`` the ``targets`` regex selects (as peft does: full match).

    Raises ValueError, before any training, for a bad regex, one matching
    nothing, or one matching modules LoRA cannot wrap.
    """
    try:
        pattern = re.compile(targets)
    except re.error as exc:
        raise ValueError(f"--targets {targets!r} is not a valid regular expression ({exc})") from None
    named = [(n, m) for n, m in lm.named_modules() if n and pattern.fullmatch(n)]
    if not named:
        examples = [n for n, m in lm.named_modules() if isinstance(m, torch.nn.Linear)][:3]
        raise ValueError(f"--targets {targets!r} matches no module of the LM (the whole name must match, e.g. "
                         f"{', '.join(examples)}); leave --targets out for the main transformer's projections")
    bad = [f"{n} ({type(m).__name__})" for n, m in named if not isinstance(m, _LORA_TYPES)]
    if bad:
        raise ValueError(f"--targets {targets!r} selects modules LoRA cannot adapt: {', '.join(bad[:3])}; "
                         "select linear or embedding layers only")
    return [n for n, _ in named]


def add_lora(lm: Any, cfg: FinetuneConfig) -> Any:
    """Wrap ``lm`` with trainable LoRA adapters (base weights frozen; ``.unload()`` gives ``lm`` back)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.targets)
    return get_peft_model(lm, config)


def train(
    lm: Any,
    seqs: list[Tokens],
    masks: list[Mask],
    cfg: FinetuneConfig,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Fine-tune a peft-wrapped LM in place; returns the per-step losses.

    Windows are ``cfg.seq_frames`` long and drawn only from sequences at least
    that long (ValueError if none is); a batch that holds no lost frame is
    drawn again, so every step learns. ValueError if the loss diverges.
    """
    usable, _ = split_by_length(seqs, cfg.seq_frames)
    if not usable:
        raise ValueError(f"no training sequence is {cfg.seq_frames} frames long: give longer speech or "
                         "a smaller --seq-frames")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    losses = []
    lm.train()
    for step in range(cfg.steps):
        for _ in range(_MAX_REDRAWS):
            erased, true, hidden = _make_batch(lm, seqs, masks, usable, cfg, rng)
            if bool(hidden.any()):
                break
        else:
            raise ValueError(f"{_MAX_REDRAWS} training batches in a row held no lost frame: the loss regime "
                             "drops too little of this speech; give a higher loss rate or more speech")
        loss, _ = masked_loss(lm, erased, true, hidden)
        if loss.requires_grad:
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        value = loss.item()
        if not np.isfinite(value):
            raise ValueError(f"training diverged at step {step + 1} (loss {value}): give a smaller --lr")
        losses.append(value)
        if progress:
            progress(step, value)
    lm.eval()
    return losses


def _adapter_dirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if (d / "adapter_config.json").is_file()) if path.is_dir() else []


def load_adapter(lm: Any, adapter_dir: str | Path) -> Any:
    """Load saved LoRA adapters onto ``lm`` and merge them (plain LMModel out, streamable).

    Local files only (never the hub). Raises ValueError naming the directory
    and the fix for anything but an intact adapter written by ``largesc
    finetune`` for these weights: ``largesc finetune --out OUT`` writes one
    adapter per regime in OUT/<regime>; given OUT, the error lists them.
    """
    from peft import PeftModel

    path = Path(adapter_dir)
    if not path.is_dir():
        raise ValueError(f"adapter {path}: no such directory; give OUT/<regime> (e.g. OUT/uniform_0_2) "
                         "from `largesc finetune --out OUT`")
    if not (path / "adapter_config.json").is_file():
        subs = _adapter_dirs(path)
        if subs:
            raise ValueError(f"{path} holds one LoRA adapter per training regime, not one adapter: use "
                             + " or ".join(str(s) for s in subs))
        raise ValueError(f"{path} holds no LoRA adapter (adapter_config.json missing): give OUT/<regime> "
                         "(e.g. OUT/uniform_0_2) from `largesc finetune --out OUT`")
    if not any((path / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ValueError(f"{path} has adapter_config.json but no adapter_model.safetensors (incomplete copy?): "
                         "copy the whole directory written by `largesc finetune`, or run it again")
    try:
        merged = PeftModel.from_pretrained(lm, str(path), local_files_only=True).merge_and_unload()
    except Exception as exc:  # safetensors, json, shape mismatches, peft's own checks: all mean a bad adapter
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"cannot load the LoRA adapter in {path} ({type(exc).__name__}: {detail}): give an "
                         "intact directory written by `largesc finetune` with the same --weights") from exc
    merged.eval()
    return merged
