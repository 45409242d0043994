"""libopus 1.5.2 with its neural parts (the project's own build), through ctypes.

``.ci/build-opus15`` (run by ``make setup``) builds Debian trixie's opus 1.5.2
source with ``--enable-dred --enable-deep-plc --enable-osce`` into
``<venv>/opus-1.5.2`` (see ``largesc_codec.sim.lossgen.opus15_prefix``). It is
loaded beside the system's 1.3.1. Both have the soname libopus.so.0, and
glibc answers a later dlopen("libopus.so.0") with whichever is loaded
already, so ``libopus15()`` loads the system's first; the 1.5.2 build then
comes by path, RTLD_LOCAL, and the two never share symbols. The encoder / decoder classes of
``libopus`` work on it with ``lib=libopus15()``; this module adds DRED:

    dred = DredDecoder(lib)                          # opus_dred_decoder_create + opus_dred_alloc
    reach = dred.parse(packet, max_samples, 16000)   # opus_dred_parse: samples of audio it covers
    pcm = dred.decode(decoder, offset, 320)          # opus_decoder_dred_decode
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from largesc_codec.evaluation.libopus import OpusDecoder, OpusError, _check, bind, libopus, version
from largesc_codec.sim.lossgen import OPUS15_VERSION, missing_build_message, opus15_prefix

DECODER_COMPLEXITY = 7  # opus_decoder.c: >= 5 deep PLC, >= 6 LACE, >= 7 NoLACE; nothing changes above 7
MAX_DRED_SAMPLES_48K = 48_000  # opus_demo parses at most 1 s of DRED


@lru_cache(maxsize=1)
def libopus15() -> ctypes.CDLL:
    """Load the 1.5.2 build once; OSError naming the build step if it is missing or not 1.5.2."""
    path = opus15_prefix() / "lib" / "libopus.so.0"
    try:
        libopus()  # first, or the system's "libopus.so.0" would resolve to this build (module docstring)
    except OSError:
        pass  # no 1.3.1 here: the 1.5.2 rows still run
    try:
        lib = bind(ctypes.CDLL(str(path)))
    except OSError:
        raise OSError(missing_build_message("libopus 1.5.2 (libopus.so.0)")) from None
    if version(lib) != f"libopus {OPUS15_VERSION}":
        raise OSError(f"{path} is {version(lib)}, not libopus {OPUS15_VERSION}")
    lib.opus_dred_decoder_create.restype = ctypes.c_void_p
    lib.opus_dred_decoder_create.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib.opus_dred_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_dred_alloc.restype = ctypes.c_void_p
    lib.opus_dred_alloc.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib.opus_dred_free.argtypes = [ctypes.c_void_p]
    lib.opus_dred_parse.restype = ctypes.c_int
    lib.opus_dred_parse.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32,
        ctypes.c_int32, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.opus_decoder_dred_decode.restype = ctypes.c_int
    lib.opus_decoder_dred_decode.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int16), ctypes.c_int32]
    lib.opus_packet_has_lbrr.restype = ctypes.c_int
    lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
    return lib


def available() -> bool:
    """True if the 1.5.2 build loads (tests skip, commands fail with the build hint, otherwise)."""
    try:
        libopus15()
    except OSError:
        return False
    return True


def packet_has_lbrr(packet: bytes) -> bool:
    """libopus 1.5's own test for in-band FEC (LBRR) data in ``packet``."""
    return _check(libopus15().opus_packet_has_lbrr(packet, len(packet)), "opus_packet_has_lbrr") == 1


class DredDecoder:
    """DRED state of one receiver: the decoder of DRED data and the last parsed DRED."""

    def __init__(self) -> None:
        self.lib = libopus15()
        err = ctypes.c_int(0)
        self._dec: int = self.lib.opus_dred_decoder_create(ctypes.byref(err))
        _check(err.value, "opus_dred_decoder_create", self.lib)
        self._dred: int = self.lib.opus_dred_alloc(ctypes.byref(err))
        _check(err.value, "opus_dred_alloc", self.lib)
        self._out = np.zeros(960, dtype=np.int16)

    def parse(self, packet: bytes, max_samples: int, sample_rate: int) -> int:
        """Parse ``packet``'s DRED data -> how many samples (at ``sample_rate``) before it it covers.

        ``max_samples``: decode no more than this (opus_demo: the gap to fill,
        at most 1 s). 0 when the packet carries no DRED.
        """
        end = ctypes.c_int(0)
        n = self.lib.opus_dred_parse(self._dec, self._dred, packet, len(packet),
                                     min(max_samples, MAX_DRED_SAMPLES_48K), sample_rate,
                                     ctypes.byref(end), 0)
        return max(int(n), 0)

    def decode(self, decoder: OpusDecoder, offset: int, frame_samples: int) -> npt.NDArray[np.int16]:
        """One frame of the lost audio ``offset`` samples before the parsed packet -> int16 (frame_samples,)."""
        if frame_samples > len(self._out):
            raise ValueError(f"frame of {frame_samples} samples is longer than 20 ms at 48 kHz")
        n = self.lib.opus_decoder_dred_decode(
            decoder.handle, self._dred, offset, self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            frame_samples)
        return self._out[: _check(n, "opus_decoder_dred_decode", self.lib)].copy()

    def __del__(self) -> None:
        if getattr(self, "_dred", None):
            self.lib.opus_dred_free(self._dred)
            self._dred = 0
        if getattr(self, "_dec", None):
            self.lib.opus_dred_decoder_destroy(self._dec)
            self._dec = 0


__all__ = ["DECODER_COMPLEXITY", "DredDecoder", "OpusError", "available", "libopus15", "packet_has_lbrr"]
