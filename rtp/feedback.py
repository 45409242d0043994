"""What a receiver tells a sender about the path: the loss report an adaptive sender steers by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossReport:
    """Receiver feedback: fraction of packets lost (0..1) and mean loss-burst length (packets, >= 1)."""

    fraction_lost: float = 0.0
    mean_burst: float = 1.0
