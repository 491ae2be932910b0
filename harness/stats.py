"""Exact small-sample statistics for verdicts, pure Python (no scipy): the regularized incomplete beta function,
its quantiles, and from them Student's t quantiles, Clopper-Pearson intervals and the zero-event bound.

- betainc(a, b, x) = I_x(a, b), by its continued fraction (Lentz's method), to about 1e-14.
- beta_ppf(q, a, b): the x with I_x(a, b) = q, by bisection (I_x is increasing in x).
- t_ppf(q, df): Student's t quantile for any df > 0, from P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2).
- clopper_pearson(k, n): the exact two-sided interval for a binomial probability after k events in n trials:
  [beta_ppf(α/2, k, n-k+1), beta_ppf(1-α/2, k+1, n-k)], 0 for k = 0 and 1 for k = n.
- upper_bound_zero(n): the exact one-sided upper bound after 0 events in n trials, 1 - α^(1/n) (≈ 3/n).
- binomial_upper(k, n): the exact one-sided upper bound after k events in n trials, beta_ppf(1-α, k+1, n-k)
  (upper_bound_zero at k = 0).
- binomial_sf(m, n, p): P(X >= m) for X ~ Binomial(n, p), = I_p(m, n-m+1); binomial_quantile(n, p, q): the least x
  with P(X <= x) >= q.
- pct_text(p, up): a probability printed in %, two significant digits, rounded outward.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from functools import lru_cache

_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes, 6.4), converging for x < (a+1)/(a+b+2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q quantile of the Beta(a, b) distribution: the x in [0, 1] with I_x(a, b) = q."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15 * max(hi, 1e-300):
            break
    return (lo + hi) / 2


@lru_cache(maxsize=4096)
def t_ppf(q: float, df: float) -> float:
    """The q quantile of Student's t distribution with df degrees of freedom (t_ppf(0.975, 1) = 12.706)."""
    if not 0.0 < q < 1.0 or df <= 0:
        raise ValueError(f"t quantile: need 0 < q < 1 and df > 0, got q={q}, df={df}")
    if q == 0.5:
        return 0.0
    x = beta_ppf(2 * min(q, 1 - q), df / 2, 0.5)
    t = math.sqrt(df * (1 - x) / x)
    return t if q > 0.5 else -t


@lru_cache(maxsize=4096)
def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided (1 - alpha) interval for a probability after k events in n independent trials."""
    if not 0 <= k <= n or n == 0:
        raise ValueError(f"Clopper-Pearson: need 0 <= k <= n and n > 0, got {k} of {n}")
    lo = 0.0 if k == 0 else beta_ppf(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else beta_ppf(1 - alpha / 2, k + 1, n - k)
    return (lo, hi)


def upper_bound_zero(n: int, alpha: float = 0.05) -> float:
    """One-sided (1 - alpha) upper bound on a probability after 0 events in n independent trials (exact)."""
    return 1.0 - alpha ** (1.0 / n) if n > 0 else 1.0


@lru_cache(maxsize=4096)
def binomial_upper(k: int, n: int, alpha: float = 0.05) -> float:
    """One-sided (1 - alpha) exact (Clopper-Pearson) upper bound on a probability after k events in n independent
    trials: 1 - alpha^(1/n) at k = 0, 1 at k = n."""
    if not 0 <= k <= n or n == 0:
        raise ValueError(f"binomial bound: need 0 <= k <= n and n > 0, got {k} of {n}")
    return 1.0 if k == n else beta_ppf(1 - alpha, k + 1, n - k)


def binomial_sf(m: int, n: int, p: float) -> float:
    """P(X >= m) for X ~ Binomial(n, p): I_p(m, n - m + 1)."""
    if m <= 0:
        return 1.0
    if m > n:
        return 0.0
    return betainc(m, n - m + 1, p)


@lru_cache(maxsize=4096)
def binomial_quantile(n: int, p: float, q: float) -> int:
    """The q quantile of Binomial(n, p): the least x in [0, n] with P(X <= x) >= q, so P(X > x) <= 1 - q."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if 1.0 - binomial_sf(mid + 1, n, p) >= q:
            hi = mid
        else:
            lo = mid + 1
    return lo


def zero_events_needed(p: float, alpha: float = 0.05) -> int:
    """The least n for which 0 events in n trials bound the event probability at p (one-sided, 1 - alpha): the
    inverse of upper_bound_zero, n >= ln(alpha) / ln(1 - p). 29 for 10 %, 59 for 5 %."""
    return math.ceil(math.log(alpha) / math.log1p(-p) - 1e-9)


def pct_text(p: float, up: bool) -> str:
    """A probability in %, two significant digits, rounded away from the inside of its interval (`up`: upwards)."""
    x = 100 * p
    if x <= 0 or x >= 100:
        return f"{min(max(x, 0), 100):.0f}"
    e = math.floor(math.log10(x)) - 1
    v = (math.ceil(x / 10**e - 1e-9) if up else math.floor(x / 10**e + 1e-9)) * 10**e
    return f"{v:.{max(0, -e)}f}"


def mean_ci(values: Sequence[float], floor: float = 0.0) -> tuple[float, float] | None:
    """Two-sided 95 % Student-t interval of the mean (n - 1 degrees of freedom), its low end no less than `floor`;
    None with fewer than 2 values. Zero width when every value is the same."""
    if len(values) < 2:
        return None
    m, sd = statistics.mean(values), statistics.stdev(values)
    half = t_ppf(0.975, len(values) - 1) * sd / len(values) ** 0.5
    return (max(floor, m - half), m + half)
