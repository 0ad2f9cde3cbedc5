"""Small statistics with numpy only: Student-t quantiles, t and bootstrap confidence intervals.

Intervals of bounded metrics stay on the metric's scale: a t interval is clipped to the bounds
(and says so), a percentile bootstrap lies within the observed values, hence within the scale.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

CIMethod = Literal["t", "bootstrap"]
BOOTSTRAP_RESAMPLES = 4000
Bounds = tuple[float | None, float | None]
"""A metric's (lowest, highest) possible value; None where a side is open."""
UNBOUNDED: Bounds = (None, None)


@functools.cache
def _t_log_norm(df: float) -> float:
    return math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)


def t_cdf(x: float, df: float) -> float:
    """Return P(T <= x) for Student's t with `df` degrees of freedom (Simpson's rule)."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if x == 0:
        return 0.5
    # Integrate the density over [0, |x|] after the substitution t = tan(u), which keeps the
    # integrand smooth and bounded even for heavy tails (df = 1).
    upper = math.atan(abs(x))
    n = 2000
    u = np.linspace(0.0, upper, n + 1)
    t = np.tan(u)
    dens = np.exp(_t_log_norm(df) - (df + 1) / 2 * np.log1p(t * t / df)) / np.cos(u) ** 2
    weights = np.ones(n + 1)
    weights[1:-1:2] = 4
    weights[2:-1:2] = 2
    area = float(upper / n / 3 * np.dot(weights, dens))
    return 0.5 + math.copysign(area, x)


@functools.cache
def t_quantile(p: float, df: float) -> float:
    """Return the `p` quantile of Student's t with `df` degrees of freedom (bisection)."""
    if not 0 < p < 1:
        raise ValueError("p must lie strictly between 0 and 1")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval (bounds None when n < 2)."""

    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None
    method: CIMethod
    clipped: bool = False
    """Whether a bound was cut back to the metric's scale."""

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (None when undefined)."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


def mean_ci(
    values: Sequence[float],
    *,
    method: CIMethod = "t",
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    bounds: Bounds = UNBOUNDED,
) -> Interval:
    """Return the mean of `values` and its confidence interval.

    `t`: mean ± t(1 - α/2, n - 1) · s / √n (s: sample standard deviation, n - 1 divisor),
    clipped to `bounds`. `bootstrap`: percentile interval of the means of `resamples`
    resamples drawn with a fixed seed, so the result is reproducible; it never leaves the
    range of the values, so it is clipped only if the values themselves leave `bounds`.
    """
    data = np.asarray([float(v) for v in values], dtype=float)
    n = int(data.size)
    if n == 0:
        return Interval(0, None, None, None, None, method)
    mean = float(data.mean())
    if n == 1:
        return Interval(1, mean, None, None, None, method)
    sd = float(data.std(ddof=1))
    alpha = 1 - confidence
    if method == "t":
        half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
        return clip(Interval(n, mean, sd, mean - half, mean + half, method), bounds)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return clip(Interval(n, mean, sd, float(low), float(high), method), bounds)


def clip(interval: Interval, bounds: Bounds) -> Interval:
    """Return `interval` with its bounds cut back to the scale `bounds` (marked when cut)."""
    lo, hi = bounds
    low, high = interval.low, interval.high
    if low is None or high is None:
        return interval
    new_low = max(low, lo) if lo is not None else low
    new_high = min(high, hi) if hi is not None else high
    if (new_low, new_high) == (low, high):
        return interval
    return replace(interval, low=new_low, high=new_high, clipped=True)


def difference_bounds(bounds: Bounds) -> Bounds:
    """Return the range of a difference of two values on the scale `bounds`."""
    lo, hi = bounds
    if lo is None or hi is None:
        return UNBOUNDED
    return (lo - hi, hi - lo)


def sample_sd(values: Sequence[float]) -> float | None:
    """Return the sample standard deviation (None for fewer than two values)."""
    if len(values) < 2:
        return None
    return float(np.std(np.asarray(values, dtype=float), ddof=1))
