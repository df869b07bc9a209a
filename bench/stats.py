"""The statistics the benchmark reports: percentiles, summaries of repeated runs, ratios to a floor.

Pure functions, unit-tested (tests/unit/test_bench_stats.py)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks (numpy's default,
    Hyndman & Fan type 7). Raises ValueError on an empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50 / p90 / p99 / max / mean of latencies given in seconds, reported in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing was timed."""
    return count / seconds if seconds > 0 else 0.0


def ratio(value: float, floor: float) -> float | None:
    """value ÷ floor, or None when there is no floor to compare with."""
    if not floor:
        return None
    return value / floor


def repeated(values: Sequence[float]) -> dict[str, float | int | list[float]]:
    """A figure measured in several runs: the median is the headline, min and max show the noise."""
    if not values:
        return {"runs": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
        "values": [round(v, 3) for v in values],
    }


def spread(values: Sequence[float]) -> float:
    """(max - min) ÷ median of repeated runs: how noisy a figure was (0 for one run)."""
    if len(values) < 2:
        return 0.0
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def cost_above(rate_with: float, rate_floor: float) -> float | None:
    """Milliseconds per message that `rate_with` spends beyond `rate_floor` (1/a - 1/b), or None."""
    if rate_with <= 0 or rate_floor <= 0:
        return None
    return (1 / rate_with - 1 / rate_floor) * 1000
