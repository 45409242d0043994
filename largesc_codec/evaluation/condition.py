"""A condition of an evaluation: a named codec callable and what it returns (see ``runner``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["CodecFn", "CodecOutput", "Condition", "reference_condition"]


class CodecOutput(NamedTuple):
    """What a codec callable returns; see the module docstring."""

    pcm: npt.NDArray[Any]
    sample_rate: int
    payload_bps: float
    wire_bps: float
    concealed_fraction: float
    extra: Mapping[str, float] | None = None


CodecFn = Callable[[npt.NDArray[np.float32], int, Any], Any]


@dataclass(frozen=True)
class Condition:
    """One system under test. ``codec=None`` means the clean reference (original audio)."""

    name: str
    codec: CodecFn | None
    family: str = ""  # "reference", "opus", "largesc", ...
    requested_bps: float = math.nan


def reference_condition() -> Condition:
    return Condition("reference", None, "reference")
