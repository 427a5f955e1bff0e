"""Small statistics helpers (no numpy on the measuring side)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100."""
    if not values:
        return math.nan
    data = sorted(values)
    k = (len(data) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return percentile([v for v in values if v == v], 50)


def spread(values: Sequence[float]) -> float:
    """max/min of the repeats (1.0 = identical runs); the run-to-run noise of a figure."""
    vals = [v for v in values if v == v and v > 0]
    return max(vals) / min(vals) if len(vals) > 1 else 1.0


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    if sxx == 0:
        return 0.0
    return 60 * sum((t - mx) * (v - my) for t, v in samples) / sxx


def r(value: float, digits: int = 3) -> float:
    return round(value, digits) if value == value else value
