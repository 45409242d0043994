"""What netem's Markov loss models should produce: loss rate, mean burst length, spread.

Theory of operation
-------------------
Both models are finite Markov chains stepped once per packet, exactly as in the
kernel's ``sch_netem.c``:

* Gilbert-Elliott (``loss gemodel p r 1-h 1-k``): in state s the packet is lost
  with probability ``lose[s]`` (1-k in Good, 1-h in Bad); independently the
  chain moves Good->Bad with p, Bad->Good with r.
* 4-state (``loss state p13 p31 p32 p23 p14``): the chain moves first; the packet
  is lost when the new state is 3 (loss inside a burst) or 4 (isolated loss).

Either way packet n is lost with probability ``lose[X_n]`` for a stationary
chain X, independently given the state. The loss rate is ``sum_s pi_s lose_s``;
the mean length of a run of consecutive losses is ``loss rate / P(a run starts
at a packet)`` (packet n-1 arrived, packet n lost). The spread of a loss
fraction measured over n packets (:func:`loss_fraction_sd`) is
``n Var -> c0 + 2 sum_k ck`` with ck the lag-k autocovariances of the loss
indicator on the chain of (state, lost) pairs; the mean burst's spread
(:func:`mean_burst_sd`) follows by the delta method on the chain of consecutive
pairs. Pure arithmetic, no dependencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LossExpectation", "Chain", "ge_chain", "four_state_chain", "ge_expectation",
           "four_state_expectation", "stationary", "expectation", "loss_fraction_sd",
           "mean_burst_sd"]

Chain = tuple[list[list[float]], list[float]]  # (row-stochastic matrix, P(lost | state))


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


def ge_chain(p: float, r: float, one_minus_h: float, one_minus_k: float) -> Chain:
    """Gilbert-Elliott (probabilities 0..1); a chain stuck in one state collapses to it."""
    if p == 0.0:
        return [[1.0]], [one_minus_k]
    if r == 0.0:
        return [[1.0]], [one_minus_h]
    return [[1.0 - p, p], [r, 1.0 - r]], [one_minus_k, one_minus_h]


def four_state_chain(p13: float, p31: float, p32: float, p23: float, p14: float) -> Chain:
    """netem 4-state chain (probabilities 0..1), indexed by the state a packet moves *to*."""
    matrix = [
        [1.0 - p13 - p14, 0.0, p13, p14],  # 1: receiving, gap period
        [0.0, 1.0 - p23, p23, 0.0],         # 2: receiving, burst period
        [p31, p32, 1.0 - p31 - p32, 0.0],   # 3: lost, burst period
        [1.0, 0.0, 0.0, 0.0],               # 4: isolated loss, gap period
    ]
    return matrix, [0.0, 0.0, 1.0, 1.0]


def expectation(chain: Chain) -> LossExpectation:
    """Loss rate and mean burst length of a stationary loss chain."""
    matrix, lose = chain
    pi = stationary(matrix)
    states = range(len(pi))
    rate = sum(pi[s] * lose[s] for s in states)
    starts = sum(pi[s] * (1.0 - lose[s]) * matrix[s][t] * lose[t] for s in states for t in states)
    return LossExpectation(rate, rate / starts if starts > 0 else (float("inf") if rate else 0.0))


def ge_expectation(p: float, r: float, one_minus_h: float, one_minus_k: float) -> LossExpectation:
    return expectation(ge_chain(p, r, one_minus_h, one_minus_k))


def four_state_expectation(p13: float, p31: float, p32: float, p23: float,
                           p14: float) -> LossExpectation:
    return expectation(four_state_chain(p13, p31, p32, p23, p14))


def _with_outcomes(chain: Chain) -> tuple[list[list[float]], list[float]]:
    """Chain on (state, lost) pairs, so a packet's fate is a function of the state alone."""
    matrix, lose = chain
    nodes = [(s, m) for s in range(len(lose)) for m in (0, 1) if (lose[s] if m else 1 - lose[s])]
    prob = [[matrix[s][t] * (lose[t] if m else 1.0 - lose[t]) for (t, m) in nodes]
            for (s, _) in nodes]
    return prob, [float(m) for (_, m) in nodes]


def _mean_sd(matrix: list[list[float]], values: list[float], n: int) -> float:
    """Standard deviation of the mean of values[X_k] over n steps of the stationary chain X.

    n Var -> c0 + 2 sum_k ck, with ck = sum_s pi_s f_s (P^k f)_s for the centred f.
    """
    pi = stationary(matrix)
    states = range(len(pi))
    mean = sum(pi[s] * values[s] for s in states)
    centred = [values[s] - mean for s in states]
    total = sum(pi[s] * centred[s] ** 2 for s in states)
    vec = centred
    for _ in range(1_000_000):
        vec = [sum(matrix[s][t] * vec[t] for t in states if matrix[s][t]) for s in states]
        total += 2.0 * sum(pi[s] * centred[s] * vec[s] for s in states)
        if max(abs(v) for v in vec) < 1e-13:  # P^k f -> 0: the chain has forgotten
            break
    return math.sqrt(max(total, 0.0) / n)


def loss_fraction_sd(chain: Chain, n: int) -> float:
    """Standard deviation of the loss fraction measured over n packets (large-n normal limit)."""
    return _mean_sd(*_with_outcomes(chain), n)


def mean_burst_sd(chain: Chain, n: int) -> float:
    """Standard deviation of the mean burst length measured over n packets (delta method).

    The estimate is L/S (lost packets / burst starts); to first order its error is
    that of the mean of g = lost - b * start, divided by the start rate, where b is
    the expected mean burst. ``start`` needs the previous packet too, so g lives on
    the chain of consecutive (state, lost) pairs.
    """
    b = expectation(chain).mean_burst
    prob, lost = _with_outcomes(chain)
    k = range(len(lost))
    pairs = [(a, c) for a in k for c in k if prob[a][c]]
    pair_prob = [[prob[c][e] if c == c2 else 0.0 for (c2, e) in pairs] for (_, c) in pairs]
    starts = [1.0 if lost[c] and not lost[a] else 0.0 for (a, c) in pairs]
    g = [lost[c] - b * st for (a, c), st in zip(pairs, starts)]
    pi = stationary(pair_prob)
    start_rate = sum(p * st for p, st in zip(pi, starts))
    if not start_rate:  # no bursts ever start: lossless (exact 0) or never recovers
        return 0.0 if not any(lost) else float("inf")
    return _mean_sd(pair_prob, g, n) / start_rate
