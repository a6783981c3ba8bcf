"""Timing helpers shared by the benchmarks: interleaved medians, compile time, XLA scratch."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def compile_seconds(fn: Callable, args: tuple) -> tuple[Any, float]:
    """Lower and compile a ``jax.jit``-ed function; returns ``(compiled, seconds)``."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def scratch_mb(compiled: Any) -> float:
    """XLA's temporary buffer size of a compiled program, in MiB."""
    mem = compiled.memory_analysis()
    return mem.temp_size_in_bytes / 2**20 if mem is not None else float("nan")


def interleaved(fns: dict[str, tuple[Callable, tuple]], repeats: int) -> dict[str, float]:
    """Median wall time (ms) of each ``fn(*args)``, timed round-robin so that every library sees
    the same machine load (one warm-up call each first)."""
    for fn, args in fns.values():
        jax.block_until_ready(fn(*args))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, (fn, args) in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}
