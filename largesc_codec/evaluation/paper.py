"""The paper-style table in one command: ``largesc eval --paper --weights W [--jobs N]``.

What it runs (``paper_plan``): LargeSC at 550 / 1100 / 2062.5 bit/s of payload
with lm, repeat and no concealment; every baseline the evaluation knows
(``baselines()``: Opus 1.3.1 and, where built, Opus 1.5.2 with deep PLC /
NoLACE and DRED, and Codec 2 where pycodec2 is installed); uniform loss 0-40 %,
Gilbert-Elliott 10 % with mean bursts of 2, 4 and 8 packets, and the learned
real-trace loss (``lossgen:P``, 5/10/20 %) where the built libopus has it.
PLCMOS, ViSQOL and WER; tables and plots through ``report.write_report``.

``run_parallel`` spreads the runs over ``jobs`` processes. Workers are forked
after the conditions (and the models they hold) are built, so each inherits
them copy-on-write and receives only job indices; rows come back in job
order, so the report does not depend on ``jobs``. A caller whose codecs use
torch keeps it on one thread before the fork and in each worker
(``worker_init``): GNU OpenMP hangs in a child forked after its thread pool
started. Progress shows runs done and an estimate of the time left.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from typing import Any, Callable, Sequence

from largesc_codec.evaluation.condition import Condition
from largesc_codec.evaluation.data import Clip
from largesc_codec.evaluation.losses import LossProfile, default_losses, parse_profile
from largesc_codec.evaluation.runner import METRICS, run_condition

PAPER_BPS = (550.0, 1100.0, 2062.5)
LOSSGEN_PERCENT = (5, 10, 20)

Job = tuple[int, int, int | None, int | None]  # clip, condition, loss profile, seed (indices; None: clean)
_CONTEXT: tuple[Sequence[Clip], Sequence[Condition], Sequence[LossProfile], Sequence[str]] | None = None


def baselines() -> list[Condition]:
    """Every baseline condition this installation can run (the 1.3.1 rows always)."""
    from largesc_codec.evaluation import runner

    more: Callable[[], list[Condition]] | None = getattr(runner, "baseline_conditions", None)
    if more is not None:
        return more()
    return runner.opus_conditions()


def paper_losses() -> list[LossProfile]:
    """uniform 0/5/10/20/30/40 %, GE 10 % bursts 2/4/8, and lossgen 5/10/20 % when it is available."""
    out = default_losses()
    for p in LOSSGEN_PERCENT:
        try:
            out.append(parse_profile(f"lossgen:{p / 100:g}"))
        except (ValueError, OSError, ImportError):
            break  # no lossgen in this build (the set-up builds it with libopus 1.5.2)
    return out


def plan_jobs(clips: Sequence[Clip], conditions: Sequence[Condition], losses: Sequence[LossProfile],
              seeds: Sequence[int]) -> list[Job]:
    """Every condition x clip x loss x seed; the clean reference once per clip."""
    jobs: list[Job] = []
    for ci in range(len(clips)):
        for k, cond in enumerate(conditions):
            if cond.codec is None:
                jobs.append((ci, k, None, None))
            else:
                jobs += [(ci, k, li, s) for li in range(len(losses)) for s in seeds]
    return jobs


def _run(job: Job) -> dict[str, Any]:
    assert _CONTEXT is not None, "the worker was not forked from run_parallel"
    clips, conditions, losses, metrics = _CONTEXT
    ci, k, li, seed = job
    return run_condition(clips[ci], conditions[k], None if li is None else losses[li], seed, ci, metrics)


def run_parallel(clips: Sequence[Clip], conditions: Sequence[Condition], losses: Sequence[LossProfile],
                 seeds: Sequence[int], jobs: int = 1, metrics: Sequence[str] = METRICS,
                 progress: bool = True, worker_init: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Run every job (``plan_jobs``) on ``jobs`` processes; rows in job order.

    ``worker_init`` runs first in each worker (the caller's: e.g. one torch thread each).
    """
    global _CONTEXT
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: give 1 or more processes")
    work = plan_jobs(clips, conditions, losses, seeds)
    _CONTEXT = (clips, conditions, losses, metrics)
    show = _Progress(len(work), progress)
    try:
        if jobs == 1:
            rows = []
            for job in work:
                rows.append(_run(job))
                show.step()
            return rows
        with multiprocessing.get_context("fork").Pool(jobs, initializer=worker_init) as pool:
            rows = []
            for row in pool.imap(_run, work, chunksize=1):
                rows.append(row)
                show.step()
            return rows
    finally:
        show.close()
        _CONTEXT = None


class _Progress:
    """``runs done / total, elapsed, about M:SS left`` on one stderr line."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.done, self.start = total, enabled, 0, time.monotonic()

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done)
        sys.stderr.write(f"\r{self.done}/{self.total} runs, {_clock(elapsed)} elapsed, about {_clock(left)} left ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
