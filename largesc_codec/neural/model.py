"""Loading Mimi and the Moshi LM through moshi's own loaders.

Weights come from the hub repo ``kyutai/moshiko-pytorch-bf16`` (``--weights
hub``, the default), another hub repo (``--weights hf://owner/name``), or a
local directory laid out like that repo (``--weights DIR``): the Moshi
``model.safetensors``, the Mimi checkpoint and optionally a ``config.json`` naming
the files and sizes (the released repo has none: moshi then assumes the 7B).
``largesc make-test-weights DIR`` writes such a directory with small random
models (see testweights.py); they go through exactly the same code here.

A hub repo is read from the local hub cache first, with no network at all;
only when files are missing there is the hub probed once (no retries, a short
timeout) before moshi's loader downloads, so an unreachable hub fails in
seconds with one clear message. ``check_weights`` makes the same checks without
importing torch or moshi and without loading anything, for a command to refuse
unusable weights before any expensive work.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEFAULT_HF_REPO = "kyutai/moshiko-pytorch-bf16"
MOSHI_NAME = "model.safetensors"
MIMI_NAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
TOKENIZER_NAME = "tokenizer_spm_32k_3.model"


class WeightsError(RuntimeError):
    """Weights could not be found or loaded; the message says how to fix it."""


_HOW_TO_FIX = (
    "Pass local weights with --weights DIR or LARGESC_WEIGHTS=DIR (a directory holding "
    f"{MOSHI_NAME} and the Mimi checkpoint, e.g. a copy of the hub repo {DEFAULT_HF_REPO}, "
    "with a config.json for other models than the 7B), or write small untrained test weights with "
    "`largesc make-test-weights DIR` (audio out is then not speech)."
)


@dataclass
class Models:
    """A loaded checkpoint: Mimi template plus the LM factory inputs.

    ``new_mimi()`` hands out independent copies so every streaming user owns its
    state (an encoder and a decoder in one process must not share it).
    """

    checkpoint: Any  # moshi.models.loaders.CheckpointInfo
    mimi: Any  # moshi.models.compression.MimiModel, eval mode, on ``device``
    source: str
    device: str
    untrained: bool

    def new_mimi(self) -> Any:
        """A Mimi for one more stream: its own streaming state over the same weights (no copy of them)."""
        return shared_weights_copy(self.mimi)

    def load_lm(self, dtype: torch.dtype | None = None) -> Any:
        """Build the Moshi LMModel from the checkpoint (float32 on CPU, bf16 on GPU)."""
        import torch

        if dtype is None:
            dtype = torch.float32 if self.device == "cpu" else torch.bfloat16
        try:
            return self.checkpoint.get_moshi(device=self.device, dtype=dtype)
        except Exception as exc:  # safetensors, torch and moshi raise many types for bad files
            raise WeightsError(
                f"could not load the Moshi LM from {self.checkpoint.moshi_weights}: {exc}. "
                + _HOW_TO_FIX
            ) from exc


def shared_weights_copy(module: Any) -> Any:
    """A deep copy of ``module`` whose parameters are the original's tensors (inference only).

    Buffers and streaming state are copied, so each copy streams on its own; the
    weights, most of the memory, exist once however many calls run.
    """
    memo = {id(p): p for p in module.parameters()}
    return copy.deepcopy(module, memo)


def _no_config_checkpoint(moshi: Path, mimi: Path, tokenizer: Path) -> Any:
    """A repo without config.json, as the released ``kyutai/moshiko-pytorch-bf16`` is.

    moshi's loader then assumes the Moshi 7B and its Mimi (its built-in configs); built
    here directly, because ``from_hf_repo`` would ask the hub for the missing config.json.
    """
    from moshi.models import loaders

    return loaders.CheckpointInfo(moshi_weights=moshi, mimi_weights=mimi, tokenizer=tokenizer)


def _dir_files(path: Path) -> tuple[Path | None, dict[str, Any], dict[str, Path]]:
    """(config.json or None, its content, the weight files it names) of a weights directory, or WeightsError."""
    if not path.exists():
        raise WeightsError(f"weights directory {path} does not exist. " + _HOW_TO_FIX)
    if not path.is_dir():
        raise WeightsError(f"--weights {path} is not a directory (give the directory holding its files). "
                           + _HOW_TO_FIX)
    config_path = path / "config.json"
    config: dict[str, Any] = {}
    if config_path.exists():
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{config_path} is not valid JSON ({exc}). " + _HOW_TO_FIX) from exc
    files = {
        "moshi": path / config.get("moshi_name", MOSHI_NAME),
        "mimi": path / config.get("mimi_name", MIMI_NAME),
    }
    if config.get("mimi_config_name"):
        files["mimi_config"] = path / config["mimi_config_name"]
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise WeightsError(f"missing weight files: {', '.join(missing)}. " + _HOW_TO_FIX)
    return (config_path if config_path.exists() else None), config, files


def _checkpoint_from_dir(path: Path) -> Any:
    from moshi.models import loaders

    config_path, config, files = _dir_files(path)
    if config_path is None:
        return _no_config_checkpoint(files["moshi"], files["mimi"], path / TOKENIZER_NAME)
    lora = path / config["lora_name"] if config.get("lora_name") else None
    return loaders.CheckpointInfo.from_hf_repo(
        str(path),
        moshi_weights=files["moshi"],
        mimi_weights=files["mimi"],
        tokenizer=path / config.get("tokenizer_name", TOKENIZER_NAME),
        config_path=config_path,
        mimi_config_path=files.get("mimi_config"),
        lora_weights=lora,
    )


HUB_PROBE_TIMEOUT_S = (3.0, 10.0)  # connect, read: one quick reachability check


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Silence huggingface_hub/urllib3 retry chatter: a failure ends in one clear WeightsError."""
    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "urllib3")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _cached_files(repo: str) -> dict[str, Path | None] | None:
    """The repo's files from the local hub cache alone (no network), or None if not all are cached."""
    from huggingface_hub import hf_hub_download

    def cached(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo, name, local_files_only=True))
        except Exception:  # LocalEntryNotFoundError, or a bad repo id: not usable from the cache
            return None

    config_path = cached("config.json")
    if config_path is None:
        # No config.json, as the released repo: read as moshi does offline (the 7B config).
        moshi, mimi = cached(MOSHI_NAME), cached(MIMI_NAME)
        if moshi is None or mimi is None:
            return None
        return {"config": None, "moshi": moshi, "mimi": mimi, "mimi_config": None, "lora": None,
                "tokenizer": cached(TOKENIZER_NAME) or moshi.parent / TOKENIZER_NAME}
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    name = config.get
    files = {"config": config_path, "moshi": cached(name("moshi_name", MOSHI_NAME)),
             "mimi": cached(name("mimi_name", MIMI_NAME)),
             "mimi_config": cached(name("mimi_config_name")) if name("mimi_config_name") else None,
             "lora": cached(name("lora_name")) if name("lora_name") else None}
    if files["moshi"] is None or files["mimi"] is None or (name("mimi_config_name") and files["mimi_config"] is None) \
            or (name("lora_name") and files["lora"] is None):
        return None
    # LargeSC does not use the text tokenizer: from the cache if there, else where it would be.
    files["tokenizer"] = cached(name("tokenizer_name", TOKENIZER_NAME)) or config_path.parent / name(
        "tokenizer_name", TOKENIZER_NAME)
    return files


def _cached_checkpoint(repo: str) -> Any | None:
    """The checkpoint from the local hub cache alone (no network), or None if not all cached."""
    from moshi.models import loaders

    files = _cached_files(repo)
    if files is None:
        return None
    if files["config"] is None:
        assert files["moshi"] is not None and files["mimi"] is not None and files["tokenizer"] is not None
        return _no_config_checkpoint(files["moshi"], files["mimi"], files["tokenizer"])
    return loaders.CheckpointInfo.from_hf_repo(repo, moshi_weights=files["moshi"], mimi_weights=files["mimi"],
                                               tokenizer=files["tokenizer"], config_path=files["config"],
                                               mimi_config_path=files["mimi_config"], lora_weights=files["lora"])


def _probe_hub(repo: str) -> None:
    """One HEAD request for the repo's config.json, no retries; raises WeightsError if unreachable."""
    from huggingface_hub import constants, get_session, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        raise WeightsError(
            f"HF_HUB_OFFLINE is set and the weights of {repo} are not in the local model hub cache. " + _HOW_TO_FIX)
    url = hf_hub_url(repo, "config.json")
    try:
        # Not hf_hub_download: its back-off retries an unreachable hub for ~30 s, and moshi then
        # reads the missing config.json as a legacy repo and retries every weight file.
        # Reachability only: any HTTP answer below 500 (even 401 for a gated repo) will do.
        status = get_session().head(url, allow_redirects=False, timeout=HUB_PROBE_TIMEOUT_S).status_code
    except Exception as exc:  # requests raises ConnectionError, Timeout, SSLError, ...
        raise WeightsError(
            f"could not reach the model hub ({constants.ENDPOINT}) for {repo} "
            f"({type(exc).__name__}), and its files are not in the local hub cache. " + _HOW_TO_FIX
        ) from exc
    if status >= 500:  # hf_hub_download would retry a failing server for ~30 s
        raise WeightsError(
            f"the model hub ({constants.ENDPOINT}) answered HTTP {status} for {repo}, and its files are not "
            "in the local hub cache. " + _HOW_TO_FIX)


def _checkpoint_from_hub(repo: str) -> Any:
    from moshi.models import loaders

    with _quiet_hub_logs():
        ckpt = _cached_checkpoint(repo)
        if ckpt is not None:
            return ckpt
        _probe_hub(repo)
        try:
            return loaders.CheckpointInfo.from_hf_repo(repo)
        except Exception as exc:  # huggingface_hub raises many types for "unreachable" or "no such repo"
            raise WeightsError(
                f"could not download weights from the model hub repo {repo} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}). "
                "The hub is unreachable or the repo is wrong. " + _HOW_TO_FIX
            ) from exc


def _hub_repo(weights: str) -> str | None:
    """The hub repo ``weights`` names (``hub`` or ``hf://owner/repo``), or None for a local directory."""
    if weights == "hub":
        return DEFAULT_HF_REPO
    if weights.startswith("hf://"):
        return weights.removeprefix("hf://")
    return None


def resolve_checkpoint(weights: str = "hub") -> Any:
    """Find a checkpoint: ``"hub"``, ``"hf://owner/repo"`` or a local directory."""
    repo = _hub_repo(weights)
    if repo is not None:
        return _checkpoint_from_hub(repo)
    return _checkpoint_from_dir(Path(weights))


def check_weights(weights: str = "hub", network: bool = True) -> None:
    """Cheap check that ``weights`` can be loaded (no torch, no moshi, nothing loaded); WeightsError with the fix.

    A directory must hold the files its config.json names (or the default
    names). A hub repo must be in the local hub cache or, with ``network``,
    answer one quick probe (``network=False``: the cache alone, for processes
    that cannot reach the hub).
    """
    repo = _hub_repo(weights)
    if repo is None:
        _dir_files(Path(weights))
        return
    with _quiet_hub_logs():
        if _cached_files(repo) is not None:
            return
        if not network:
            raise WeightsError(f"the weights of {repo} are not in the local model hub cache. " + _HOW_TO_FIX)
        _probe_hub(repo)


def load_models(weights: str = "hub", device: str = "cpu", num_codebooks: int = 8) -> Models:
    """Load Mimi (with ``num_codebooks`` active) and keep the LM ready to build."""
    ckpt = resolve_checkpoint(weights)
    try:
        mimi = ckpt.get_mimi(device=device)
    except Exception as exc:  # safetensors, torch and moshi raise many types for bad files
        raise WeightsError(f"could not load Mimi from {ckpt.mimi_weights}: {exc}. " + _HOW_TO_FIX) from exc
    total = int(mimi.total_codebooks)
    if not 1 <= num_codebooks <= total:
        raise ValueError(f"num_codebooks must be in 1..{total}, got {num_codebooks}")
    mimi.set_num_codebooks(num_codebooks)
    return Models(
        checkpoint=ckpt,
        mimi=mimi,
        source=weights,
        device=device,
        untrained=bool(ckpt.model_id.get("largesc_untrained", False)),
    )
