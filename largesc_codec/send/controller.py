"""AdaptiveController: frame content + loss feedback -> Decision (codebooks, redundancy).

Theory of operation
-------------------
Every 80 ms the sender asks ``decide(features, loss)``. Three small steps, each a
pure function of its inputs and a little explicit state:

1. Voice activity (``vad_step``). A frame is speech when its energy is at least
   ``SPEECH_MARGIN_DB`` above an adaptive noise floor (or ``VOICED_MARGIN_DB`` if
   the voicing cue fires) and above ``ABS_MIN_SPEECH_DB``. The floor drops at
   once to any quieter frame (noise is the minimum) and creeps up slowly
   otherwise, faster on noise-like frames, so a louder room is learnt within a
   few seconds while a long vowel barely moves it. After the last speech frame,
   ``HANGOVER_FRAMES`` more frames are still coded as speech so word ends and
   short pauses are not clipped. Silence costs 1 codebook and no redundancy.
2. Loss smoothing (``smooth_loss``). Reports are noisy and arrive at their own
   pace; the sender passes the latest one every frame. The controller keeps an
   exponential average per frame: fast attack when loss rises (protect soon),
   slow release when it falls (do not drop protection on one good report).
3. Bit allocation (``plan_speech``), memoised on the smoothed loss rounded to
   0.5 % and the burst to 0.25 packets. Codebook k has importance ``WEIGHTS[k]``
   (the semantic codebook 0 = 1, acoustic ones decaying geometrically). The
   loss process is read as a two-state Markov chain with the reported loss rate
   L and mean burst b (P(bad -> good) = 1/b), which gives the probability that
   a frame's primary and its copies at distances d1, d2, ... are all lost.
   Starting from ``min_speech_codebooks`` primary codebooks, the planner
   greedily buys whatever adds the most expected delivered importance per bit:
   one more primary codebook, a new redundant block (the first j codebooks of
   the frame d back), or one more codebook in an existing block, as long as the
   whole payload (``bits_per_second``: ToC bytes, 11-bit tokens, padding, at
   12.5 packets/s) stays within ``max_bps``. The research counts only token
   bits (``token_bits_per_second``: 4 tokens = 550 bit/s); a budget here caps
   every byte, so a speech frame's 4 codebooks need 700 bit/s (1 ToC byte + 6
   bytes of tokens) and a budget below that codes speech with what fits: 2
   codebooks at 550 bit/s (4 bytes = 400 bit/s; 3 codebooks would be 600). The
   floor is one codebook a frame, 300 bit/s.

What it does in practice: at zero or negligible (< 0.5 %) loss no redundancy.
A primary codebook is worth about 1 - L, a copy's about L, so the primary is
filled first, up to ``max_codebooks``, and copies get what is left:
* Budget above the capped primary (default 8 codebooks, 2062.5 bit/s = 20
  bytes a packet): the spare bytes go to copies once any loss is reported
  (8 + 5 copy tokens: 2 ToC bytes and 18 bytes of 13 tokens); primary
  codebooks give way only at heavy loss. A 5-codebook copy rescues 5 of 8
  codebooks: a PARTIAL frame.
* Budget at or below the primary's wish (1100 bit/s = 11 bytes: 1 ToC byte
  and 7 tokens, or ``max_codebooks`` 32): protection grows with L, each copy
  paying its own ToC byte.
* Bursty loss: a copy at distance d < b is usually lost with its primary, so
  far distances (up to ``max_redundancy_distance``) win (burst 2: the 7 copy
  tokens are of the frame 3 back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import Callable

from largesc_codec.send.features import FrameFeatures
from largesc_codec.types import FRAME_RATE_HZ, MAX_CODEBOOKS, TOKEN_BITS, Decision, LossReport, RedundancySpec
from largesc_codec.wire.payload import payload_size

SPEECH_MARGIN_DB = 9.0
VOICED_MARGIN_DB = 4.0
ABS_MIN_SPEECH_DB = -60.0
INITIAL_FLOOR_DB = -60.0
FLOOR_RISE_NOISE_DB = 1.0  # per frame, frames that look like noise
FLOOR_RISE_SPEECH_DB = 0.05  # per frame, voiced speech frames
HANGOVER_FRAMES = 4
LOSS_ATTACK = 0.3  # EWMA weight per frame when loss rises
LOSS_RELEASE = 0.03  # ... when it falls (~2.7 s time constant)
BURST_ALPHA = 0.1
NEGLIGIBLE_LOSS = 0.005
MAX_MODEL_LOSS = 0.95  # beyond this every plan is equally hopeless
MAX_REDUNDANCY_DISTANCE = 8  # 8 x 80 ms = 640 ms of extra receiver delay
MAX_COPIES = 3  # redundant blocks per packet
WEIGHTS = (1.0,) + tuple(0.4 * 0.75 ** (k - 1) for k in range(1, MAX_CODEBOOKS))


@dataclass(frozen=True)
class VadState:
    """Voice-activity state: noise floor (dBFS) and hangover frames left."""

    floor_db: float = INITIAL_FLOOR_DB
    hangover: int = 0


def vad_step(state: VadState, f: FrameFeatures) -> tuple[VadState, bool, str]:
    """One frame of voice activity -> (new state, speech?, short reason)."""
    margin = VOICED_MARGIN_DB if f.voiced else SPEECH_MARGIN_DB
    raw = f.energy_db >= ABS_MIN_SPEECH_DB and f.energy_db >= state.floor_db + margin
    if f.energy_db < state.floor_db:
        floor = f.energy_db
    else:
        rise = FLOOR_RISE_SPEECH_DB if (raw and f.voiced) else FLOOR_RISE_NOISE_DB
        floor = state.floor_db + min(rise, f.energy_db - state.floor_db)
    where = f"energy {f.energy_db:.0f} dB, floor {state.floor_db:.0f} dB"
    if raw:
        return VadState(floor, HANGOVER_FRAMES), True, f"speech ({where})"
    if state.hangover > 0:
        return VadState(floor, state.hangover - 1), True, f"hangover ({where})"
    return VadState(floor, 0), False, f"silence ({where})"


def _check_report(loss: LossReport) -> tuple[float, float]:
    if not isinstance(loss, LossReport):
        raise ValueError(f"loss must be a LossReport or None, got {type(loss).__name__}")
    p, b = loss.fraction_lost, loss.mean_burst
    if not (isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"LossReport.fraction_lost must be within 0..1, got {p!r}")
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b >= 0.0):
        raise ValueError(f"LossReport.mean_burst must be a finite number >= 0 (packets), got {b!r}")
    return float(p), max(1.0, float(b))  # a burst is at least one packet; 0 = "none seen"


def smooth_loss(state: LossReport, loss: LossReport | None) -> LossReport:
    """Exponential average of reports, one step per frame (None = no feedback yet = no loss)."""
    p, b = (0.0, 1.0) if loss is None else _check_report(loss)
    alpha = LOSS_ATTACK if p > state.fraction_lost else LOSS_RELEASE
    return LossReport(
        state.fraction_lost + alpha * (p - state.fraction_lost),
        state.mean_burst + BURST_ALPHA * (b - state.mean_burst),
    )


def _model(loss: float, burst: float) -> tuple[float, float]:
    """Clamp a loss estimate to the Markov model's range.

    A burst shorter than independent loss gives (1 / (1 - L)) is read as independent
    loss: reports say 1.0 for "no burst information", and anti-correlated loss (a
    loss making the next packet safer) is not something to bet redundancy on.
    """
    loss = min(max(loss, 0.0), MAX_MODEL_LOSS)
    return loss, max(burst, 1.0 / (1.0 - loss))


@lru_cache(maxsize=65536)
def _all_lost(offsets: tuple[int, ...], loss: float, burst: float) -> float:
    """P(every packet at these sorted offsets is lost), two-state Markov chain (Gilbert)."""
    if not offsets:
        return 1.0
    r = 1.0 / burst
    to_bad = min(1.0, r * loss / (1.0 - loss))
    lam = 1.0 - to_bad - r  # decay of the state correlation per packet
    prob = loss
    for gap in (b - a for a, b in zip(offsets, offsets[1:])):
        prob *= loss + (1.0 - loss) * lam**gap
    return prob


def _lost_set(j: int, c: int, blocks: dict[int, int]) -> tuple[int, ...]:
    """Sorted packet offsets carrying codebook j: the primary (0) if j < c, and every copy holding j."""
    return ((0,) if j < c else ()) + tuple(sorted(d for d, k in blocks.items() if k > j))


def _utility(c: int, blocks: dict[int, int], loss: float, burst: float) -> float:
    """Expected delivered importance of one frame: sum_j WEIGHTS[j] * P(codebook j arrives somewhere)."""
    top = max([c, *blocks.values()])
    return sum(WEIGHTS[j] * (1.0 - _all_lost(_lost_set(j, c, blocks), loss, burst)) for j in range(top))


def _fill(c: int, blocks: dict[int, int], fits: Callable[[int, dict[int, int]], bool], max_codebooks: int,
          loss: float, burst: float) -> tuple[int, dict[int, int]]:
    """Greedy fill with 11-bit steps: each step adds the codebook (primary or copy) that gains most."""
    while True:
        best: tuple[float, int, dict[int, int]] | None = None
        moves = [(c, c + 1, blocks, 0)] if c < max_codebooks else []
        moves += [(k, c, {**blocks, d: k + 1}, d) for d, k in blocks.items() if k < c]
        for j, cc, bl, offset in moves:
            held = _lost_set(j, c, blocks)
            gain = WEIGHTS[j] * (_all_lost(held, loss, burst) - _all_lost(tuple(sorted(held + (offset,))), loss, burst))
            if gain > 1e-12 and (best is None or gain > best[0]) and fits(cc, bl):
                best = (gain, cc, bl)
        if best is None:
            return c, blocks
        _, c, blocks = best


@lru_cache(maxsize=4096)
def plan_speech(
    max_bps: float, max_codebooks: int, min_codebooks: int, max_distance: int, loss: float, burst: float
) -> tuple[int, tuple[RedundancySpec, ...]]:
    """Best (primary codebooks, redundancy specs by distance) for one speech packet.

    ``loss`` in 0..1 and ``burst`` >= 1 (packets) are the smoothed channel estimate.
    Tries no redundancy and every set of up to ``MAX_COPIES`` copy distances in
    1..max_distance; each set is filled greedily (``_fill``) and the highest expected
    delivered importance wins (ties: the earlier, i.e. fewer and nearer copies).
    The result's whole payload (ToC, tokens, padding) always fits ``max_bps``.
    """
    loss, burst = _model(loss, burst)
    budget = int(max_bps / (8 * FRAME_RATE_HZ) + 1e-9)  # payload bytes per packet

    def fits(c: int, blocks: dict[int, int]) -> bool:
        return payload_size([(0, c), *blocks.items()]) <= budget

    while min_codebooks > 1 and not fits(min_codebooks, {}):
        min_codebooks -= 1  # below the speech floor: speech gets what the budget carries

    c, blocks = _fill(min_codebooks, {}, fits, max_codebooks, loss, burst)
    best = (_utility(c, blocks, loss, burst), c, blocks)
    if loss >= NEGLIGIBLE_LOSS:
        for n in range(1, MAX_COPIES + 1):
            for dists in combinations(range(1, max_distance + 1), n):
                start = {d: 1 for d in dists}  # every chosen distance carries at least codebook 0
                if not fits(min_codebooks, start):
                    continue
                c, blocks = _fill(min_codebooks, start, fits, max_codebooks, loss, burst)
                u = _utility(c, blocks, loss, burst)
                if u > best[0] + 1e-9:
                    best = (u, c, blocks)
    _, c, blocks = best
    return c, tuple(RedundancySpec(d, k) for d, k in sorted(blocks.items()))


def token_bits_per_second(decision: Decision) -> float:
    """Token bit rate of the packet ``decision`` implies: what ``max_bps`` budgets."""
    if not isinstance(decision, Decision):
        raise ValueError(f"token_bits_per_second() takes a Decision, got {type(decision).__name__}")
    tokens = decision.codebooks + sum(s.codebooks for s in decision.redundancy)
    return tokens * TOKEN_BITS * FRAME_RATE_HZ


def speech_floor_bps(codebooks: int) -> float:
    """Payload bit/s a speech frame of ``codebooks`` codebooks needs (4: 700, what 550 bit/s of tokens costs)."""
    return bits_per_second(Decision(codebooks))


def bits_per_second(decision: Decision) -> float:
    """Payload bit rate of the packet ``decision`` implies (primary + its redundant blocks)."""
    if not isinstance(decision, Decision):
        raise ValueError(f"bits_per_second() takes a Decision, got {type(decision).__name__}")
    blocks = [(0, decision.codebooks)] + [(s.distance, s.codebooks) for s in decision.redundancy]
    return payload_size(blocks) * 8 * FRAME_RATE_HZ


class AdaptiveController:
    """Per-frame codebook and in-band redundancy choice (see the module header).

    Args:
        max_bps: payload budget in bit/s: every payload byte (ToC, tokens, padding) of
            every packet stays within it. At least 300 (one codebook a frame).
        max_codebooks: most primary codebooks per frame, 1..32.
        min_speech_codebooks: fewest codebooks of a speech frame (4 = the research's
            floor), 1..max_codebooks; lowered to what ``max_bps`` carries when it is
            below that (``speech_floor_bps``: 700 bit/s for 4).
        max_redundancy_distance: farthest frame a copy may come from, 0..8 (0 = never).
    """

    def __init__(
        self,
        max_bps: float = 2062.5,
        max_codebooks: int = 8,
        min_speech_codebooks: int = 4,
        max_redundancy_distance: int = 3,
    ) -> None:
        for name, value in (("max_codebooks", max_codebooks), ("min_speech_codebooks", min_speech_codebooks),
                            ("max_redundancy_distance", max_redundancy_distance)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not 1 <= max_codebooks <= MAX_CODEBOOKS:
            raise ValueError(f"max_codebooks must be 1..{MAX_CODEBOOKS}, got {max_codebooks}")
        if not 1 <= min_speech_codebooks <= max_codebooks:
            raise ValueError(
                f"min_speech_codebooks must be 1..max_codebooks ({max_codebooks}), got {min_speech_codebooks}"
            )
        if not 0 <= max_redundancy_distance <= MAX_REDUNDANCY_DISTANCE:
            raise ValueError(
                f"max_redundancy_distance must be 0..{MAX_REDUNDANCY_DISTANCE} frames "
                f"(each frame of distance costs the receiver 80 ms of delay), got {max_redundancy_distance}"
            )
        if not (isinstance(max_bps, (int, float)) and math.isfinite(max_bps)):
            raise ValueError(f"max_bps must be a finite number of bit/s, got {max_bps!r}")
        one = bits_per_second(Decision(1))
        if max_bps < one:
            raise ValueError(f"max_bps={max_bps:g} is below {one:g} bit/s, the payload of one codebook a frame "
                             f"(1 ToC byte + 2 bytes of token); raise max_bps to >= {one:g}")
        self.max_bps = float(max_bps)
        self.max_codebooks = max_codebooks
        self.min_speech_codebooks = max(c for c in range(1, min_speech_codebooks + 1)
                                        if bits_per_second(Decision(c)) <= max_bps)
        self.max_redundancy_distance = max_redundancy_distance
        self.reset()

    def reset(self) -> None:
        """Forget the noise floor, hangover and loss history (a new call)."""
        self.vad = VadState()
        self.loss = LossReport(0.0, 1.0)

    def decide(self, features: FrameFeatures, loss: LossReport | None) -> Decision:
        """Decision for the next frame, given its features and the latest loss report (None = none yet)."""
        if not isinstance(features, FrameFeatures):
            raise ValueError(f"features must be FrameFeatures (features.frame_features), got {type(features).__name__}")
        self.loss = smooth_loss(self.loss, loss)
        self.vad, speech, why = vad_step(self.vad, features)
        if not speech:
            return Decision(1, (), False, f"{why}: 1 codebook, no redundancy")
        # Quantise so the memoised plan is reused and tiny report noise changes nothing.
        p = self.loss.fraction_lost
        p = 0.0 if p < NEGLIGIBLE_LOSS else round(p / NEGLIGIBLE_LOSS) * NEGLIGIBLE_LOSS
        b = round(self.loss.mean_burst * 4) / 4
        c, red = plan_speech(self.max_bps, self.max_codebooks, self.min_speech_codebooks,
                             self.max_redundancy_distance, p, b)
        if not red:
            how = "loss < 0.5%" if p < NEGLIGIBLE_LOSS else f"loss {p:.1%} burst {b:g}"
            return Decision(c, (), True, f"{why}; {how}: {c} codebooks, no redundancy")
        copies = ",".join(f"d{s.distance}x{s.codebooks}" for s in red)
        pm, bm = _model(p, b)
        miss = _all_lost((0,) + tuple(s.distance for s in red), pm, bm)
        reason = f"{why}; loss {p:.1%} burst {b:g}: {c} codebooks + copies {copies} (cb0 miss {pm:.1%}->{miss:.1%})"
        return Decision(c, red, True, reason)
