"""Minimal ctypes binding of libopus (Debian ``libopus0``, or any build) for loss experiments.

PyAV decodes Opus but cannot tell the decoder that a packet was lost, so Opus's
own packet loss concealment (``opus_decode`` with no data) and in-band FEC
recovery (``decode_fec=1`` on the packet after a loss) need libopus directly.
Only what the baseline needs is bound: mono encoder / decoder, the CTLs for
bitrate, VBR, complexity, signal type, in-band FEC and expected loss.

Audio is int16 PCM, mono, at 8, 12, 16, 24 or 48 kHz; one frame is 20 ms.
The classes take ``lib=`` another libopus loaded with :func:`bind` (e.g. the
1.5.2 build of ``libopus15``); the default is the system's (1.3.1 on bookworm).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
APPLICATION_VOIP = 2048
SIGNAL_VOICE = 3001
# opus_defines.h request numbers
SET_BITRATE, SET_VBR, SET_COMPLEXITY = 4002, 4006, 4010
SET_INBAND_FEC, SET_PACKET_LOSS_PERC, SET_SIGNAL = 4012, 4014, 4024
GET_LOOKAHEAD = 4027
SET_DRED_DURATION = 4050  # libopus >= 1.5 built with --enable-dred only
MAX_PACKET_BYTES = 1500


class OpusError(RuntimeError):
    """libopus returned an error code."""


def bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the argument and result types of the functions used here on ``lib``."""
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [
        ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int,
        ctypes.c_char_p, ctypes.c_int32]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
        ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib


@lru_cache(maxsize=1)
def libopus() -> ctypes.CDLL:
    """Load the system's libopus once; a clear error names the Debian package if it is missing."""
    names = [ctypes.util.find_library("opus"), "libopus.so.0"]
    for name in names:
        if not name:
            continue
        try:
            return bind(ctypes.CDLL(name))
        except OSError:
            continue
    raise OSError(
        "libopus not found: install Debian's libopus0 (apt-get install libopus0; "
        "it is listed in requirements/apt-runtime.txt)")


def version(lib: ctypes.CDLL | None = None) -> str:
    """The libopus version string, e.g. 'libopus 1.3.1'."""
    return str((lib or libopus()).opus_get_version_string().decode())


def _check(code: int, what: str, lib: ctypes.CDLL | None = None) -> int:
    if code < 0:
        raise OpusError(f"{what} failed: {(lib or libopus()).opus_strerror(code).decode()}")
    return code


def _ctl(lib: ctypes.CDLL, fn: Any, handle: int, request: int, *args: object) -> None:
    """``fn`` is lib.opus_encoder_ctl or lib.opus_decoder_ctl (variadic: no argtypes)."""
    code = fn(ctypes.c_void_p(handle), ctypes.c_int(request), *args)
    _check(code, f"{fn.__name__}({request})", lib)


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in OPUS_RATES:
        raise ValueError(f"Opus runs at {OPUS_RATES} Hz, not {sample_rate}: resample first")


class OpusEncoder:
    """Mono VoIP encoder; ``encode`` takes one 20 ms int16 frame, returns the packet."""

    def __init__(self, sample_rate: int, bitrate: int, loss_percent: int = 0,
                 inband_fec: bool = True, complexity: int = 10, vbr: bool = True,
                 lib: ctypes.CDLL | None = None) -> None:
        _check_rate(sample_rate)
        self.lib = lib or libopus()
        err = ctypes.c_int(0)
        handle = self.lib.opus_encoder_create(sample_rate, 1, APPLICATION_VOIP, ctypes.byref(err))
        _check(err.value, "opus_encoder_create", self.lib)
        self._handle: int = handle
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 50
        self.ctl(SET_BITRATE, ctypes.c_int32(bitrate))
        self.ctl(SET_VBR, ctypes.c_int32(int(vbr)))
        self.ctl(SET_COMPLEXITY, ctypes.c_int32(complexity))
        self.ctl(SET_SIGNAL, ctypes.c_int32(SIGNAL_VOICE))
        self.ctl(SET_INBAND_FEC, ctypes.c_int32(int(inband_fec)))
        # The expected loss lets libopus decide whether (and how much) LBRR/FEC to add.
        self.ctl(SET_PACKET_LOSS_PERC, ctypes.c_int32(int(min(max(loss_percent, 0), 100))))
        look = ctypes.c_int32(0)
        self.ctl(GET_LOOKAHEAD, ctypes.byref(look))
        self.lookahead = int(look.value)
        self._buf = ctypes.create_string_buffer(MAX_PACKET_BYTES)

    def ctl(self, request: int, *args: object) -> None:
        """``opus_encoder_ctl`` (raises OpusError on an error code)."""
        _ctl(self.lib, self.lib.opus_encoder_ctl, self._handle, request, *args)

    def encode(self, frame: npt.NDArray[Any]) -> bytes:
        """One frame of int16 PCM, shape (sample_rate // 50,) -> Opus packet bytes."""
        pcm = np.ascontiguousarray(frame, dtype=np.int16)
        if pcm.shape != (self.frame_samples,):
            raise ValueError(f"frame must have shape ({self.frame_samples},), got {pcm.shape}")
        n = self.lib.opus_encode(
            self._handle, pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            self.frame_samples, self._buf, MAX_PACKET_BYTES)
        return self._buf.raw[: _check(n, "opus_encode", self.lib)]

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self.lib.opus_encoder_destroy(self._handle)
            self._handle = 0


class OpusDecoder:
    """Mono decoder; ``decode(None)`` runs Opus's packet loss concealment.

    ``complexity`` (libopus >= 1.5 only; None leaves the default 0) switches on
    the decoder's neural parts: >= 5 deep PLC, 6 LACE, >= 7 NoLACE.
    """

    def __init__(self, sample_rate: int, lib: ctypes.CDLL | None = None,
                 complexity: int | None = None) -> None:
        _check_rate(sample_rate)
        self.lib = lib or libopus()
        err = ctypes.c_int(0)
        handle = self.lib.opus_decoder_create(sample_rate, 1, ctypes.byref(err))
        _check(err.value, "opus_decoder_create", self.lib)
        self._handle: int = handle
        self.frame_samples = sample_rate // 50
        self._out = np.zeros(self.frame_samples * 6, dtype=np.int16)  # up to 120 ms
        if complexity is not None:
            _ctl(self.lib, self.lib.opus_decoder_ctl, handle, SET_COMPLEXITY, ctypes.c_int32(complexity))

    @property
    def handle(self) -> int:
        """The ``OpusDecoder *`` (for calls this class does not wrap, e.g. DRED decoding)."""
        return self._handle

    def decode(self, packet: bytes | None, fec: bool = False) -> npt.NDArray[np.int16]:
        """Decode one 20 ms frame -> int16 array of shape (sample_rate // 50,).

        ``packet=None`` conceals a lost frame. ``fec=True`` with the packet that
        FOLLOWS a lost one rebuilds the lost frame from that packet's in-band FEC
        (libopus falls back to concealment if the packet carries none).
        """
        data, size = (None, 0) if packet is None else (packet, len(packet))
        n = self.lib.opus_decode(
            self._handle, data, size, self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            self.frame_samples, int(fec))
        return self._out[: _check(n, "opus_decode", self.lib)].copy()

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self.lib.opus_decoder_destroy(self._handle)
            self._handle = 0


def packet_has_fec(packet: bytes) -> bool:
    """True if a single-frame (TOC code 0) SILK or hybrid packet carries LBRR (FEC) data.

    Same test as libopus 1.5's ``opus_packet_has_lbrr``: for one 10/20 ms SILK
    frame the LBRR flag is bit 6 of the first byte after the TOC (bit 7 is VAD).
    CELT-only packets (config >= 16) never carry FEC; multi-frame packets are
    not produced by this baseline (one 20 ms frame per packet) and report False.
    """
    if len(packet) < 2:
        return False
    toc = packet[0]
    if toc >> 3 >= 16 or toc & 0x3 != 0:
        return False
    return bool((packet[1] >> 6) & 1)
