"""Speech quality and intelligibility metrics: PLCMOS v2, ViSQOL (speech), WER.

All three models work on 16 kHz mono audio. Every function here takes float32
(or any float) mono PCM of shape (samples,) at any sample rate, resamples it
to 16 kHz with soxr (``data.resample``, delay-compensated) and clips it to
[-1, 1]. The packages are imported lazily; a missing one raises ImportError
naming the package and the install command.

  * ``plcmos``: PLCMOS v2 (speechmos ONNX model, non-intrusive, 1..5). The
    model averages 15 random "rater embeddings"; we draw them from a seeded
    generator so a score is repeatable, without touching numpy's global state
    as seen by the caller.
  * ``visqol``: ViSQOL v3 speech mode (visqol-python, intrusive, MOS-LQO
    1..~4.55). Uses the deep-lattice mapper when ``ai-edge-litert`` is
    installed (same as C++ ViSQOL's default), else the polynomial mapper,
    which over-predicts on degraded speech; ``visqol_mapper()`` says which.
    ViSQOL aligns the degraded signal to the reference itself, so codec delay
    does not need compensating; very short clips (< ~1.5 s) score low even
    against themselves.
  * ``wer``: word error rate of pocketsphinx 5.1.1 (its bundled en-us model)
    against the reference transcript, both sides through ``normalize_text``.
    The decoder's feature state is reset before every clip, so a transcript
    does not depend on which clips came before. Part of the WER is the
    recogniser's own: compare with the reference row.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation.data import resample

METRIC_RATE = 16_000
PLCMOS_SEED = 0
_INSTALL = "pip install -r requirements/runtime.txt"


def _to_16k(pcm: npt.NDArray[Any], sample_rate: int) -> npt.NDArray[np.float32]:
    """Any-rate float mono (n,) -> float32 (m,) at 16 kHz, clipped to [-1, 1]."""
    x = np.asarray(pcm, dtype=np.float32)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"metrics expect non-empty mono PCM of shape (samples,), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("PCM contains NaN or infinite samples")
    return np.clip(resample(x, sample_rate, METRIC_RATE), -1.0, 1.0)


def _require(module: str, package: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise ImportError(f"this metric needs the PyPI package {package!r}: {_INSTALL}") from exc


# ---------------------------------------------------------------- PLCMOS v2
@lru_cache(maxsize=1)
def _plcmos_model() -> Any:
    _require("onnxruntime", "onnxruntime")
    return _require("speechmos.plcmos", "speechmos").PLCMOS()


def plcmos(pcm: npt.NDArray[Any], sample_rate: int, seed: int = PLCMOS_SEED) -> float:
    """PLCMOS v2 (1..5, higher is better) of float mono PCM (samples,) at any rate."""
    x = _to_16k(pcm, sample_rate)
    model = _plcmos_model()
    # speechmos draws its rater embeddings from np.random; seed it for this call only.
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        return float(model.get_mos(x))
    finally:
        np.random.set_state(saved)


# ---------------------------------------------------------------- ViSQOL
def _lattice_available() -> bool:
    try:
        __import__("ai_edge_litert")
        return True
    except ImportError:
        return False


@lru_cache(maxsize=1)
def _visqol_api() -> Any:
    api = _require("visqol", "visqol-python").VisqolApi()
    api.create(mode="speech", use_lattice_model=_lattice_available())
    return api


def visqol_mapper() -> str:
    """``"lattice"`` (C++ default mapping) or ``"polynomial"`` (fallback)."""
    return "lattice" if _lattice_available() else "polynomial"


def visqol(reference: npt.NDArray[Any], degraded: npt.NDArray[Any], sample_rate: int,
           degraded_rate: int | None = None) -> float:
    """ViSQOL speech-mode MOS-LQO of ``degraded`` against ``reference``.

    Both float mono (samples,); ``degraded_rate`` defaults to ``sample_rate``.
    Both are resampled to 16 kHz; lengths may differ (ViSQOL aligns them).
    """
    ref = _to_16k(reference, sample_rate).astype(np.float64)
    deg = _to_16k(degraded, degraded_rate or sample_rate).astype(np.float64)
    return float(_visqol_api().measure_from_arrays(ref, deg, sample_rate=METRIC_RATE).moslqo)


# ---------------------------------------------------------------- WER
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "ok": "okay"}


def number_words(n: int) -> str:
    """0 <= n < 10**9 -> English words, e.g. 342 -> 'three hundred forty two'."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for unit, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= unit:
            head, rest = divmod(n, unit)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


def normalize_text(text: str) -> str:
    """Lowercase, digits -> words, '&' -> 'and', punctuation and hyphens -> spaces,
    'mr' -> 'mister' (and a few other abbreviations); inner apostrophes are kept."""
    t = text.lower().replace("&", " and ").replace("%", " percent ")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)  # 1,000 -> 1000
    t = re.sub(r"\d{1,9}", lambda m: f" {number_words(int(m.group()))} ", t)
    t = re.sub(r"[^a-z']+", " ", t)
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)  # quotes, not apostrophes inside words
    return " ".join(_ABBREVIATIONS.get(w, w) for w in t.split())


@lru_cache(maxsize=1)
def _recognizer() -> Any:
    ps = _require("pocketsphinx", "pocketsphinx==5.1.1")
    return ps.Decoder(samprate=METRIC_RATE, loglevel="FATAL")


def transcribe(pcm: npt.NDArray[Any], sample_rate: int) -> str:
    """pocketsphinx en-us transcript (normalised) of float mono PCM at any rate."""
    x = _to_16k(pcm, sample_rate)
    decoder = _recognizer()
    # Feature extraction keeps state across utterances (live CMN and more: set_cmn alone
    # is not enough after a noisy clip); reset it so a transcript never depends on history.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw((x * 32767.0).astype("<i2").tobytes(), no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return normalize_text(hyp.hypstr if hyp is not None else "")


def word_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """WER (0 = perfect, can exceed 1) of two texts after ``normalize_text``."""
    jiwer = _require("jiwer", "jiwer")
    ref, hyp = normalize_text(reference_text), normalize_text(hypothesis_text)
    if not ref:
        raise ValueError(f"reference transcript {reference_text!r} has no words")
    if not hyp:
        return 1.0  # every reference word deleted
    return float(jiwer.wer(ref, hyp))


def wer(reference_text: str, pcm: npt.NDArray[Any], sample_rate: int) -> tuple[float, str]:
    """(WER, hypothesis) of pocketsphinx on ``pcm`` (float mono, any rate) vs the transcript."""
    hyp = transcribe(pcm, sample_rate)
    return word_error_rate(reference_text, hyp), hyp


def metric_versions() -> dict[str, str]:
    """Package versions and settings behind the numbers, for reports."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"visqol_mapper": visqol_mapper(), "plcmos_seed": str(PLCMOS_SEED)}
    for pkg in ("speechmos", "visqol-python", "pocketsphinx", "jiwer", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out
