"""Known answers for the pure statistics behind verdicts: Student's t quantiles at any degrees of freedom, the
incomplete beta function, Clopper-Pearson intervals and the zero-event bound (published tables, closed forms)."""

from __future__ import annotations

import math

import pytest

from harness.stats import (
    beta_ppf,
    betainc,
    binomial_quantile,
    binomial_sf,
    binomial_upper,
    clopper_pearson,
    mean_ci,
    t_ppf,
    upper_bound_zero,
)


@pytest.mark.parametrize(
    ("df", "t"),
    [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (11, 2.201), (12, 2.179), (15, 2.131), (20, 2.086), (30, 2.042), (100, 1.984)],
)
def test_t_quantile_matches_the_table(df: int, t: float) -> None:
    assert t_ppf(0.975, df) == pytest.approx(t, abs=5e-4)
    assert t_ppf(0.025, df) == pytest.approx(-t, abs=5e-4)


@pytest.mark.parametrize(
    ("q", "df", "t"),
    [(0.9, 30, 1.310), (0.95, 5, 2.015), (0.95, 60, 1.671), (0.99, 10, 2.764), (0.995, 1, 63.657), (0.995, 20, 2.845), (0.9995, 3, 12.924)],
)
def test_t_quantile_matches_the_table_at_other_levels(q: float, df: int, t: float) -> None:
    """Computed, not looked up: any level and any df (the same published table, other columns)."""
    assert t_ppf(q, df) == pytest.approx(t, abs=5e-4)


def test_t_quantile_closed_forms_and_the_normal_limit() -> None:
    assert t_ppf(0.9, 1) == pytest.approx(math.tan(math.pi * 0.4), rel=1e-9)  # Cauchy
    assert t_ppf(0.95, 2) == pytest.approx(0.9 / math.sqrt(2 * 0.05 * 0.95), rel=1e-9)  # (2p-1)/sqrt(2p(1-p))
    assert t_ppf(0.975, 100_000) == pytest.approx(1.95996, abs=1e-4) and t_ppf(0.5, 7) == 0.0


def test_incomplete_beta_known_values() -> None:
    assert betainc(1, 1, 0.3) == pytest.approx(0.3)
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248)  # 1 - P(Bin(4, 0.4) <= 1)
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5)
    assert betainc(3, 4, 0.0) == 0.0 and betainc(3, 4, 1.0) == 1.0
    assert beta_ppf(betainc(5, 7, 0.31), 5, 7) == pytest.approx(0.31, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [(0, 10, 0.0, 0.30850), (1, 10, 0.00253, 0.44502), (3, 10, 0.06674, 0.65245), (10, 10, 0.69150, 1.0), (1, 30, 0.00084, 0.17217)],
)
def test_clopper_pearson_known_intervals(k: int, n: int, lo: float, hi: float) -> None:
    assert clopper_pearson(k, n) == pytest.approx((lo, hi), abs=1e-5)


def test_zero_bound_is_the_exact_one_sided_binomial_bound() -> None:
    assert upper_bound_zero(3) == pytest.approx(0.632, abs=1e-3)
    assert upper_bound_zero(29) == pytest.approx(0.098, abs=1e-3) and upper_bound_zero(59) == pytest.approx(0.0495, abs=1e-4)
    assert (1 - upper_bound_zero(10)) ** 10 == pytest.approx(0.05)  # 0 of 10 has probability 5 % at the bound


def test_binomial_tail_quantile_and_one_sided_bound_match_direct_sums() -> None:
    def pmf(x: int, n: int, p: float) -> float:
        return math.comb(n, x) * p**x * (1 - p) ** (n - x)

    for n, p in ((10, 0.3), (3000, 0.0005), (3000, 0.00087), (200, 0.5)):
        for m in (0, 1, 2, 5, 9):
            assert binomial_sf(m, n, p) == pytest.approx(1 - sum(pmf(x, n, p) for x in range(m)), abs=1e-10)
        for q in (0.5, 0.95, 0.999):
            x = binomial_quantile(n, p, q)
            below = sum(pmf(i, n, p) for i in range(x))
            assert below < q <= below + pmf(x, n, p)  # P(X <= x - 1) < q <= P(X <= x)
    assert binomial_quantile(3000, 0.0005, 0.999) == 6 and binomial_sf(7, 3000, 0.0005) < 0.001 < binomial_sf(6, 3000, 0.0005)
    assert binomial_sf(11, 10, 0.5) == 0.0
    assert binomial_upper(0, 29) == pytest.approx(upper_bound_zero(29)) and binomial_upper(5, 5) == 1.0
    assert binomial_upper(3, 10) == pytest.approx(clopper_pearson(3, 10, alpha=0.1)[1])  # one side of the 90 % interval
    hi = binomial_upper(9, 18_000)
    assert 1 - binomial_sf(10, 18_000, hi) == pytest.approx(0.05)  # P(X <= 9) is 5 % at the bound


def test_mean_interval_is_student_t_for_any_n() -> None:
    assert mean_ci([1.0, 2.0, 3.0], floor=-math.inf) == pytest.approx((2 - 4.303 / 3**0.5, 2 + 4.303 / 3**0.5), abs=1e-3)
    thirty = [float(i % 2) for i in range(30)]  # 29 df: 2.045, not 1.96
    half = 2.0452 * 0.50855 / 30**0.5
    assert mean_ci(thirty) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-3)
    assert mean_ci([0.0, 0.0, 3.0]) == pytest.approx((0.0, 1 + 4.303), abs=1e-3)  # floored at 0
    assert mean_ci([5.0]) is None and mean_ci([4.0, 4.0]) == (4.0, 4.0)
