"""Timing of one contender: the first call apart, then warm-up and repetitions (median, min, max).

A repetition times `number` calls in a row and divides by `number`; calls
shorter than `Budget.repetition` are batched that way so that the clock's
own cost and resolution do not count (as `timeit` does). The garbage
collector is off while timing, for every contender alike.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long to time one contender.

    Attributes:
      warmup: seconds of warm-up calls after the first call (at least two calls).
      seconds: the target time of all repetitions together.
      min_repetitions, max_repetitions: bounds on the number of repetitions.
      repetition: the shortest repetition, in seconds; faster calls are batched.
    """

    warmup: float
    seconds: float
    min_repetitions: int
    max_repetitions: int
    repetition: float


FULL = Budget(warmup=0.3, seconds=2.0, min_repetitions=10, max_repetitions=500, repetition=0.002)
QUICK = Budget(warmup=0.03, seconds=0.2, min_repetitions=3, max_repetitions=100, repetition=5e-4)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call over the repetitions."""

    median: float
    min: float
    max: float
    repetitions: int
    number: int  # calls per repetition


@contextmanager
def _gc_disabled() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def first_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, value) of one call of `fn`: the first call, compilation included."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(fn: Callable[[], Any], budget: Budget) -> Timing:
    """Warms `fn` up, then times repetitions of it within `budget`.

    Returns:
      The median, min and max seconds per call over the repetitions.
    """
    clock = time.perf_counter
    with _gc_disabled():
        warm: list[float] = []
        deadline = clock() + budget.warmup
        while len(warm) < 2 or clock() < deadline:
            start = clock()
            fn()
            warm.append(clock() - start)
        per_call = max(statistics.median(warm), 1e-9)
        number = max(1, math.ceil(budget.repetition / per_call))
        repetitions = math.ceil(budget.seconds / (number * per_call))
        repetitions = min(max(repetitions, budget.min_repetitions), budget.max_repetitions)
        calls = range(number)
        times = []
        give_up = clock() + 3 * budget.seconds  # the calls got much slower than in warm-up
        for _ in range(repetitions):
            start = clock()
            for _ in calls:
                fn()
            times.append((clock() - start) / number)
            if len(times) >= budget.min_repetitions and clock() > give_up:
                break
    return Timing(statistics.median(times), min(times), max(times), len(times), number)
