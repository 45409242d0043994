"""Opus 1.5's lossgen: a learned packet-loss generator, as a seeded loss model.

lossgen (libopus ``dnn/lossgen.c``, Amazon 2023) is a small GRU network trained
on the packet-loss traces of the Interspeech 2022 PLC Challenge (real Teams
calls): given a target loss rate and the last packet's fate it gives the
probability that the next packet is lost, so losses come in the clustered,
rate-dependent patterns of real networks that neither uniform nor
Gilbert-Elliott loss reproduces. The build (``.ci/build-opus15``) compiles it
from Debian trixie's opus 1.5.2 source into ``liblossgen.so`` beside the 1.5.2
libopus; ``.ci/lossgen_shim.c`` takes the uniform draw as an argument, so the
draws come from this model's own ``random.Random(seed)`` (libopus would use
the process-wide ``rand()``) and a (spec, seed) pair repeats exactly.

What is modelled: one lossgen step per packet, whatever the packet's duration.
lossgen was trained on 20 ms packets; LargeSC sends 80 ms packets, so the loss
RATE per packet is the target's, and a burst of k packets is k * 80 ms of
audio for LargeSC (k * 20 ms for Opus), as with the other per-packet channels.
(Aggregating 4 draws per 80 ms packet, "lost if any of the 4 is lost", would
keep the time pattern but turn a 10 % target into ~26 % packet loss.)

Measured (``tests/largesc_codec/sim/test_lossgen.py``, 20 000 packets, seeds
0-2): targets 5 / 10 / 20 % give 5.7-6.0 / 10.4-10.7 / 20.3-20.8 % loss, mean
bursts of 1.6-2.0 packets (uniform loss at those rates: 1.05-1.25), 95th
percentile burst 3-6 packets, and a heavy tail: the longest burst of each run
is 29-85 packets. ``expected_mean_burst`` is that measured mean (about 1.9).
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
from functools import lru_cache
from pathlib import Path

from largesc_codec.sim.channel import _Model

OPUS15_VERSION = "1.5.2"
OPUS15_ENV = "LARGESC_OPUS15"  # overrides where the 1.5.2 build lives
WARMUP_STEPS = 100  # libopus's sample_loss skips these: the GRU starts from zeros
MEASURED_MEAN_BURST = 1.9  # packets, over 5-20 % targets (module docstring)


def opus15_prefix() -> Path:
    """Install prefix of the libopus 1.5.2 build: ``$LARGESC_OPUS15`` or ``<venv>/opus-1.5.2``."""
    env = os.environ.get(OPUS15_ENV)
    return Path(env) if env else Path(sys.prefix) / f"opus-{OPUS15_VERSION}"


def missing_build_message(what: str) -> str:
    return (f"{what} not found under {opus15_prefix()}: run `make setup` (or `bash .ci/build-opus15 "
            f"{opus15_prefix()}`), or point {OPUS15_ENV} at an install prefix")


@lru_cache(maxsize=1)
def liblossgen() -> ctypes.CDLL:
    """Load ``liblossgen.so`` of the 1.5.2 build once (OSError naming the build step if absent)."""
    path = opus15_prefix() / "lib" / "liblossgen.so"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        raise OSError(missing_build_message("lossgen (liblossgen.so)")) from None
    lib.largesc_lossgen_state_size.restype = ctypes.c_int
    lib.largesc_lossgen_init.argtypes = [ctypes.c_void_p]
    lib.largesc_lossgen_step.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
    lib.largesc_lossgen_step.restype = ctypes.c_int
    return lib


class LossGen(_Model):
    """lossgen at a target loss rate ``p`` (fraction 0..1) per packet, seeded.

    Same interface as the models of ``largesc_codec.sim.channel``: ``lost()``,
    ``losses(n)``, ``expected_loss_rate`` (the
    target; the network lands within about +-1 point of it at 5-20 %) and
    ``expected_mean_burst`` (measured, see the module docstring).
    """

    def __init__(self, p: float, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"lossgen target loss must be in 0..1, got {p!r}")
        self.p = float(p)
        self.seed = int(seed)
        self._rng = random.Random(self.seed)
        self._lib = liblossgen()
        self._state = ctypes.create_string_buffer(self._lib.largesc_lossgen_state_size())
        self._lib.largesc_lossgen_init(self._state)
        for _ in range(WARMUP_STEPS):
            self._step()

    def _step(self) -> bool:
        return bool(self._lib.largesc_lossgen_step(self._state, self.p, self._rng.random()))

    @property
    def spec(self) -> str:
        return f"lossgen:{self.p:g}"

    @property
    def expected_loss_rate(self) -> float:
        return self.p

    @property
    def expected_mean_burst(self) -> float:
        return 1.0 if self.p == 0.0 else MEASURED_MEAN_BURST

    def lost(self) -> bool:
        """Next packet's fate (True = lost); p == 0 never loses (the network alone may)."""
        return self._step() if self.p > 0.0 else False

    def __repr__(self) -> str:
        return f"LossGen(p={self.p:g}, seed={self.seed})"
