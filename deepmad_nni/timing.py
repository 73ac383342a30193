"""One way to time a call, for latency tables, their calibration and every end-to-end check.

``median_ms(fn, device=..., clock=...)``: ``warmup`` untimed calls, then the median of ``repeats`` timings, each
the mean of enough back-to-back calls to last ``MIN_TIMING_MS`` (a 10-microsecond unit is below the clock's noise
otherwise); on CUDA each timing is bracketed by ``torch.cuda.synchronize()``.

The clock (``clock_for``): on a CPU with one torch thread, the **thread's CPU time** (``time.thread_time``): the
whole forward runs on the calling thread, so its CPU time is its latency on an idle machine, and time the thread
spends descheduled by other processes is not counted.  On this package's shared 2-core VM the same networks timed
by the wall clock two minutes apart differed by a median 21 % (up to 2x) while the op time NNI's trace showed
stayed put.  With more threads (their work is on other threads) and on CUDA, the wall clock
(``time.perf_counter``).  A table records its clock; one measured under another is another table.
"""
from __future__ import annotations

import statistics
import time

MIN_TIMING_MS = 1.0
CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}


def clock_for(device: str, threads: int) -> str:
    """``"thread"`` on a CPU with one torch thread, else ``"wall"`` (module docstring)."""
    return "thread" if device == "cpu" and threads == 1 else "wall"


def median_ms(fn, *, device: str, clock: str, warmup: int = 3, repeats: int = 10) -> float:
    """Milliseconds of one call of ``fn`` (no arguments), by ``clock`` (module docstring)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, but got {clock!r}.")
    now = CLOCKS[clock]
    if device == "cuda":
        import torch
        sync = torch.cuda.synchronize
    else:
        def sync():
            return None
    for _ in range(max(warmup, 1)):
        fn()
    sync()
    t0 = now()
    fn()
    sync()
    inner = max(1, int(MIN_TIMING_MS / max((now() - t0) * 1e3, 1e-6)))
    timings = []
    for _ in range(repeats):
        t0 = now()
        for _ in range(inner):
            fn()
        sync()
        timings.append((now() - t0) * 1e3 / inner)
    return statistics.median(timings)
