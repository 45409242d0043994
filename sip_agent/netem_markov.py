"""What netem's Markov loss models should produce: stationary loss rate, mean burst length.

Theory of operation
-------------------
Both models are finite Markov chains stepped once per packet, exactly as in the
kernel's ``sch_netem.c``:

* Gilbert-Elliott (``loss gemodel p r 1-h 1-k``): in state s the packet is lost
  with probability ``loss[s]`` (1-k in Good, 1-h in Bad); independently the
  chain moves Good->Bad with p, Bad->Good with r.
* 4-state (``loss state p13 p31 p32 p23 p14``): the chain moves first; the packet
  is lost when the new state is 3 (loss inside a burst) or 4 (isolated loss).

For a stationary chain, the loss rate is ``sum_s pi_s * P(lost | s)`` and the mean
length of a run of consecutive losses is ``loss rate / P(a run starts at a
packet)``, where a run starts when packet n-1 arrived and packet n was lost.
Pure arithmetic, no dependencies (the 4x4 stationary solve is done by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LossExpectation", "ge_expectation", "four_state_expectation", "stationary"]


@dataclass(frozen=True)
class LossExpectation:
    """Long-run loss fraction (0..1) and mean number of packets per loss burst."""

    loss_rate: float
    mean_burst: float


def stationary(matrix: list[list[float]]) -> list[float]:
    """Stationary distribution pi of a row-stochastic matrix (pi P = pi, sum pi = 1)."""
    n = len(matrix)
    # Solve (P^T - I) pi = 0 with the last equation replaced by sum(pi) = 1.
    a = [[matrix[j][i] - (1.0 if i == j else 0.0) for j in range(n)] + [0.0] for i in range(n)]
    a[-1] = [1.0] * n + [1.0]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-15:
            raise ValueError("loss model chain has no unique stationary state "
                             "(some state can never be left or never be reached)")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
    return [a[i][n] / a[i][i] for i in range(n)]


def ge_expectation(p: float, r: float, one_minus_h: float, one_minus_k: float) -> LossExpectation:
    """Gilbert-Elliott chain (probabilities 0..1). Loss depends on the state before moving."""
    if p == 0.0:
        pi = [1.0, 0.0]
    elif r == 0.0:
        pi = [0.0, 1.0]
    else:
        pi = [r / (p + r), p / (p + r)]
    lose = [one_minus_k, one_minus_h]
    move = [[1.0 - p, p], [r, 1.0 - r]]
    rate = sum(pi[s] * lose[s] for s in range(2))
    starts = sum(pi[s] * (1.0 - lose[s]) * move[s][t] * lose[t] for s in range(2) for t in range(2))
    return LossExpectation(rate, rate / starts if starts > 0 else (float("inf") if rate else 0.0))


def four_state_expectation(p13: float, p31: float, p32: float, p23: float,
                           p14: float) -> LossExpectation:
    """netem 4-state chain (probabilities 0..1); states 3 and 4 lose the packet."""
    matrix = [
        [1.0 - p13 - p14, 0.0, p13, p14],  # 1: receiving, gap period
        [0.0, 1.0 - p23, p23, 0.0],         # 2: receiving, burst period
        [p31, p32, 1.0 - p31 - p32, 0.0],   # 3: lost, burst period
        [1.0, 0.0, 0.0, 0.0],               # 4: isolated loss, gap period
    ]
    pi = stationary(matrix)
    lost = (False, False, True, True)
    rate = sum(pi[s] for s in range(4) if lost[s])
    starts = sum(pi[s] * matrix[s][t] for s in range(4) for t in range(4)
                 if not lost[s] and lost[t])
    return LossExpectation(rate, rate / starts if starts > 0 else (float("inf") if rate else 0.0))
