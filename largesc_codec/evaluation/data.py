"""Real speech with transcripts for evaluation (all offline).

Sources:
  * ``librivox``: the 5 LibriVox clips of Debian's ``pocketsphinx-testdata``
    (public domain, 16 kHz wav, Jane Austen read aloud). The TIDIGITS file of
    the same package is licensed and never read.
  * ``asterisk``: the English Asterisk prompts (``asterisk-core-sounds-en-g722``,
    CC-BY-SA-3.0, G.722 at 16 kHz) with the transcripts of
    ``asterisk-core-sounds-en`` (core-sounds-en.txt.gz). Non-speech prompts
    (transcript in brackets, e.g. "[beep]") are skipped.
  * any directory in LibriSpeech layout: ``*.trans.txt`` files of
    ``<utterance-id> <TEXT>`` lines next to ``<utterance-id>.flac`` (or .wav).

Every clip is float32 mono PCM of shape (samples,) in [-1, 1] at the file's own
sample rate (16 kHz for all three sources above).
"""

from __future__ import annotations

import gzip
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
import numpy.typing as npt

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3", ".opus")


@dataclass(frozen=True, eq=False)
class Clip:
    """One utterance: ``pcm`` float32 mono (samples,), ``sample_rate`` Hz, ``transcript``."""

    name: str
    pcm: npt.NDArray[np.float32]
    sample_rate: int
    transcript: str
    source: str = ""

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.sample_rate


def resample(pcm: npt.NDArray[Any], rate_in: int, rate_out: int) -> npt.NDArray[np.float32]:
    """float32 mono (n,) at ``rate_in`` -> float32 (round(n * rate_out / rate_in),) at ``rate_out``.

    Uses soxr (VHQ, linear phase, delay compensated) so the output stays
    time-aligned with the input, which reference/degraded metrics need.
    """
    x = np.asarray(pcm, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono PCM of shape (samples,), got {x.shape}")
    if rate_in == rate_out:
        return x
    try:
        import soxr
    except ImportError as exc:
        raise ImportError("resampling needs soxr: pip install -r requirements/runtime.txt") from exc
    out: npt.NDArray[np.float32] = soxr.resample(x, rate_in, rate_out, quality="VHQ").astype(np.float32)
    return out


def read_audio(path: str | Path, fmt: str | None = None) -> tuple[npt.NDArray[np.float32], int]:
    """Decode any audio file PyAV reads -> (float32 mono (samples,), sample rate in Hz).

    ``fmt`` forces a container/codec for headerless files (e.g. ``"g722"``).
    Multichannel audio is averaged to mono.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if path.suffix == ".wav" and fmt is None:
        plain = _read_wav(path)
        if plain is not None:
            return plain
    try:
        with av.open(str(path), format=fmt) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = []
            for frame in container.decode(stream):
                frame.pts = None  # headerless streams (g722) carry no usable timestamps
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode {path}: {exc} (unsupported audio format?)") from exc
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return pcm.astype(np.float32), rate


def _read_wav(path: Path) -> tuple[npt.NDArray[np.float32], int] | None:
    """Plain 16-bit PCM wav through the stdlib (exact); None for other encodings."""
    try:
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2:
                return None
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            pcm = raw.reshape(-1, w.getnchannels()).mean(axis=1) / 32768.0
            return pcm.astype(np.float32), w.getframerate()
    except wave.Error:
        return None


_T = TypeVar("_T")


def _limit(items: list[_T], max_clips: int | None) -> list[_T]:
    return items if max_clips is None else items[:max_clips]


def load_librivox(directory: str | Path = LIBRIVOX_DIR, max_clips: int | None = None) -> list[Clip]:
    """The LibriVox clips of pocketsphinx-testdata with their reference transcripts."""
    directory = Path(directory)
    listing = directory / "transcription"
    if not listing.is_file():
        raise FileNotFoundError(
            f"{listing} not found: install Debian's pocketsphinx-testdata "
            "(apt-get install pocketsphinx-testdata)")
    clips = []
    for line in listing.read_text().splitlines():
        m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if not m:
            continue
        text, utt = m.group(1).strip(), m.group(2).strip()
        pcm, rate = read_audio(directory / f"{utt}.wav")
        clips.append(Clip(utt, pcm, rate, text, "librivox"))
    return _limit(clips, max_clips)


def asterisk_transcripts(path: str | Path = ASTERISK_TRANSCRIPTS) -> dict[str, str]:
    """Prompt name (e.g. ``digits/5``) -> transcript; bracketed non-speech entries dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: install Debian's asterisk-core-sounds-en "
            "(apt-get install asterisk-core-sounds-en)")
    out: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            text = text.strip()
            if not sep or line.startswith(";") or not text or text.startswith("["):
                continue
            out[name.strip()] = text
    return out


def load_asterisk(directory: str | Path = ASTERISK_DIR, max_clips: int | None = None,
                  min_seconds: float = 0.0) -> list[Clip]:
    """Asterisk G.722 prompts (decoded by PyAV, 16 kHz) with their transcripts, sorted by name."""
    directory = Path(directory)
    if not any(directory.glob("*.g722")):
        raise FileNotFoundError(
            f"no .g722 prompts in {directory}: install Debian's asterisk-core-sounds-en-g722")
    clips = []
    for name, text in sorted(asterisk_transcripts().items()):
        path = directory / f"{name}.g722"
        if not path.is_file():
            continue
        pcm, rate = read_audio(path, fmt="g722")
        if len(pcm) >= min_seconds * rate:
            clips.append(Clip(name, pcm, rate, text, "asterisk"))
        if max_clips is not None and len(clips) >= max_clips:
            break
    return clips


def load_librispeech(root: str | Path, max_clips: int | None = None) -> list[Clip]:
    """Every utterance under ``root`` in LibriSpeech layout (``*.trans.txt`` + audio files).

    An utterance listed without an audio file next to its listing is an error
    (ValueError naming the ids), not a silently shorter evaluation.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"speech directory {root} does not exist")
    listings = sorted(root.rglob("*.trans.txt"))
    if not listings:
        raise FileNotFoundError(
            f"no *.trans.txt under {root}: expected LibriSpeech layout "
            "(lines '<utterance-id> <TEXT>' next to <utterance-id>.flac)")
    found: list[tuple[str, Path, str]] = []
    missing: list[str] = []
    for listing in listings:
        for line in listing.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.strip().partition(" ")
            if not utt:
                continue
            audio = next((listing.parent / f"{utt}{s}" for s in AUDIO_SUFFIXES
                          if (listing.parent / f"{utt}{s}").is_file()), None)
            if audio is None:
                missing.append(f"{listing.parent / utt}")
            else:
                found.append((utt, audio, text.strip()))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} utterance(s) listed in *.trans.txt under {root} have no audio file "
            f"({'/'.join(AUDIO_SUFFIXES)}): {shown}; add the audio or remove those lines")
    if not found:
        raise ValueError(f"the *.trans.txt files under {root} list no utterances "
                         "(expected lines '<utterance-id> <TEXT>')")
    clips = []
    for utt, audio, text in _limit(found, max_clips):
        pcm, rate = read_audio(audio)
        clips.append(Clip(utt, pcm, rate, text, str(root)))
    return clips


def load_clips(source: str, max_clips: int | None = None) -> list[Clip]:
    """``"librivox"``, ``"asterisk"`` or a LibriSpeech-layout directory -> clips (never empty)."""
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"--max-clips must be at least 1, got {max_clips}")
    if source == "librivox":
        clips = load_librivox(max_clips=max_clips)
    elif source == "asterisk":
        clips = load_asterisk(max_clips=max_clips)
    elif Path(source).is_dir():
        clips = load_librispeech(source, max_clips=max_clips)
    else:
        raise ValueError(
            f"unknown speech source {source!r}: use 'librivox', 'asterisk' or a directory "
            "in LibriSpeech layout (*.trans.txt + flac)")
    if not clips:
        raise ValueError(f"speech source {source!r} gave no clips: its listing names no audio "
                         "file that exists (reinstall the Debian package, or check the directory)")
    return clips
