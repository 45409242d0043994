"""Hold a sound card's pipe at a steady level while the card's clock drifts against the call's.

A sound card counts samples on its own crystal; the engine's 80 ms clock is
the machine's monotonic clock. They differ by tens to hundreds of ppm (100 ppm
is 6 ms a minute, 0.36 s an hour), so a pipe between them fills or drains
steadily: delay grows until the pipe drops audio, or it runs dry and clicks.

``DriftController`` (sans-IO) adds two parts, and the caller scales its
resampling ratio by ``1 - c`` on both sides of the card:

* feed-forward: the card's own rate against the monotonic clock
  (``CardClock``: card frames counted over a growing window), which is the
  drift itself, without waiting for the pipe to move;
* feedback: a PI law on the pipe's level, for what the estimate misses.
  The level is watched once per card block with the engine's 80 ms sawtooth
  taken out (``engine_level``), smoothed over 10 s (the engine's ticks jitter
  by milliseconds), and held at the mean of its first ``settle_s`` seconds.

Signs: microphone -> pipe, a filling pipe (a fast card) wants fewer samples
per card sample (c > 0); pipe -> speaker, a fast card drains the pipe and
wants fewer pipe samples per card sample (c < 0).

With e the level error in seconds and de/dt = drift - c, the feedback alone
is e'' + kp e' + ki e = 0: kp = 0.02 /s and ki = kp**2 / 4 are critically
damped with a 100 s time constant, far slower than the smoothing; the
integral leaves no steady error. libsamplerate changes ratio smoothly, so a
correction is never heard as a pitch step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KP = 0.02  # 1/s: 10 ms of error -> 200 ppm
KI = KP * KP / 4  # critical damping
LIMIT = 0.005  # 5000 ppm: far beyond any crystal; more would be a broken card, not drift


def engine_level(level: int, since_engine_s: float, block: int, rate: int, engine_takes: bool) -> float:
    """The pipe's level as if the engine's 80 ms side worked sample by sample.

    The engine takes (microphone pipe) or gives (speaker pipe) ``block``
    samples at once; sampled on the card's clock, that sawtooth's mean steps
    by a card block whenever the two clocks' phase slides past one another,
    which a PI law takes for a level error (a limit cycle of +-500 ppm at
    1000 ppm drift without this). ``since_engine_s``: time since the
    engine's last take or give.
    """
    done = min(block, rate * max(0.0, since_engine_s))  # what a steady engine would have moved by now
    return level - done if engine_takes else level - block + done


@dataclass
class DriftController:
    """PI control of a pipe level through a resampling ratio (see module docstring)."""

    rate: int  # samples per second in which levels are given
    settle_s: float = 2.0
    smooth_s: float = 10.0
    kp: float = KP
    ki: float = KI
    limit: float = LIMIT
    setpoint_s: float | None = field(default=None, init=False)  # the level it holds, once settled
    correction: float = field(default=0.0, init=False)
    _elapsed: float = field(default=0.0, init=False)
    _sum: float = field(default=0.0, init=False)
    _smoothed: float | None = field(default=None, init=False)
    _integral: float = field(default=0.0, init=False)

    @property
    def level_s(self) -> float:
        """The smoothed level in seconds (0 before the first update)."""
        return self._smoothed or 0.0

    def update(self, level: float, dt: float, feedforward: float = 0.0) -> float:
        """The pipe holds ``level`` samples, ``dt`` s after the last call; returns the correction ``c``.

        ``feedforward``: the drift as far as it is known (``CardClock.drift``, signed for this side).
        """
        if dt <= 0:
            return self.correction
        now = level / self.rate
        alpha = min(1.0, dt / self.smooth_s)
        self._smoothed = now if self._smoothed is None else self._smoothed + alpha * (now - self._smoothed)
        self._elapsed += dt
        if self.setpoint_s is None:
            self._sum += now * dt
            if self._elapsed >= self.settle_s:
                self.setpoint_s = self._sum / self._elapsed
            self.correction = max(-self.limit, min(self.limit, feedforward + self.ki * self._integral))
            return self.correction
        error = self._smoothed - self.setpoint_s
        integral = self._integral + error * dt
        c = feedforward + self.kp * error + self.ki * integral
        if abs(c) < self.limit:  # no wind-up while clamped
            self._integral = integral
        self.correction = max(-self.limit, min(self.limit, c))
        return self.correction

    def restart(self) -> None:
        """The pipe was refilled from scratch (an underrun or a drop): settle again."""
        # The integral stays: after a drop or an underrun the drift is what it was.
        self.setpoint_s, self._elapsed, self._sum, self._smoothed = None, 0.0, 0.0, None


@dataclass
class CardClock:
    """The card's rate against the monotonic clock: frames counted since a start ``warmup_s`` in.

    The error of one reading is the callback's timing jitter over the window
    (2 ms over 100 s: 20 ppm), so it only gets better as the call goes on;
    ``drift`` is 0 until the window reaches ``min_window_s``.
    """

    rate: int
    warmup_s: float = 1.0
    min_window_s: float = 5.0
    drift: float = field(default=0.0, init=False)  # +: the card runs fast
    _first: float | None = field(default=None, init=False)
    _start: tuple[float, int] | None = field(default=None, init=False)
    _frames: int = field(default=0, init=False)

    def observe(self, frames: int, now: float) -> float:
        """``frames`` more card frames as of ``now`` (the callback's monotonic time); returns ``drift``."""
        if self._first is None:
            self._first = now
        if self._start is None:
            if now - self._first >= self.warmup_s:
                self._start = (now, self._frames)
        else:
            window = now - self._start[0]
            if window >= self.min_window_s:
                self.drift = (self._frames - self._start[1]) / self.rate / window - 1.0
        self._frames += frames
        return self.drift


def simulate(ppm: float, seconds: float, control: bool = True, speaker: bool = False,
             jitter_ms: float = 0.0, seed: int = 0) -> tuple[list[float], DriftController]:
    """A card ``ppm`` off the machine's clock against the engine, with this module's control (or none).

    The card's 20 ms blocks (480 samples at 24 kHz) come on its clock; the
    engine's 80 ms ticks (1920 samples) on the machine's, each up to
    ``jitter_ms`` late (a busy thread). Microphone: the card gives
    ``480 * (1 - c)``, the engine takes; speaker: the engine gives, the card
    takes ``480 / (1 - c)`` (media/sound.py scales its resampling ratios so).
    Returns the level the controller saw before each card block (samples)
    and the controller. Times in integer nanoseconds: no rounding drift.
    """
    rate, rng = 24_000, random.Random(seed)
    ctl, clock = DriftController(rate), CardClock(rate)
    level, t_card, tick, t_last = 2880.0, 0, 0, 0
    block_ns = round(20e6 / (1 + ppm * 1e-6))
    late = lambda: int(rng.uniform(0, jitter_ms) * 1e6)  # noqa: E731
    t_next = late()
    levels = []
    while t_card < seconds * 1e9:
        t_card += block_ns
        while t_next <= t_card:  # the engine's ticks that came first
            level += 1920 if speaker else -1920
            t_last, tick = t_next, tick + 1
            t_next = tick * 80_000_000 + late()
        seen = engine_level(int(level), (t_card - t_last) / 1e9, 1920, rate, engine_takes=not speaker)
        levels.append(seen)
        drift = clock.observe(480, t_card / 1e9)
        c = ctl.update(seen, 0.020, -drift if speaker else drift) if control else 0.0
        level += -480 / (1 - c) if speaker else 480 * (1 - c)
    return levels, ctl
