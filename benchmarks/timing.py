"""What the benchmarks share: timing repeated calls, summarising the times, reading the
process's memory, and printing one JSON line per measurement.

Every measurement line has ``benchmark`` (``layer``, ``full_model``, ``decoding``),
``case`` (what is compared: the same case names a zoo line and its PyTorch line),
``framework`` (``zoo``, ``keras``, ``torch``) and ``ms_median``, ``ms_min``, ``ms_max``,
``ms_iqr`` (milliseconds per step, per generated token or per sentence), so that
``run_all.py`` can pair the lines and divide their medians.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time


def summarize(milliseconds: list[float]) -> dict:
    """Median, min, max and interquartile range of ``milliseconds``, rounded."""
    quartiles = statistics.quantiles(milliseconds, n=4) if len(milliseconds) > 1 else [0, 0, 0]
    return {
        "ms_median": round(statistics.median(milliseconds), 3),
        "ms_min": round(min(milliseconds), 3),
        "ms_max": round(max(milliseconds), 3),
        "ms_iqr": round(quartiles[2] - quartiles[0], 3),
        "repeats": len(milliseconds),
    }


def time_calls(call, warmup: int, repeats: int) -> dict:
    """``call()`` run ``warmup`` times untimed, then ``repeats`` times: ``summarize`` of
    the milliseconds each took."""
    for _ in range(warmup):
        call()
    milliseconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        milliseconds.append((time.perf_counter() - start) * 1000)
    return summarize(milliseconds)


def peak_rss_mib() -> float:
    """The most resident memory this process has held so far (Linux: ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mib() -> float:
    """The resident memory this process holds now."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def emit(row: dict) -> None:
    """One measurement, one JSON line on stdout."""
    print(json.dumps(row), flush=True)
