"""``evaluations.stats``: the Student t distribution, per-version summaries and the version comparisons.

Reference values are literals with their source; the rest is checked against independent
computations written here from the textbook formulas, with ``statistics`` doing the arithmetic.
"""

from __future__ import annotations

import math
import random
import statistics
from fractions import Fraction
from statistics import NormalDist

import pytest

from evaluations.stats import (
    Summary,
    summarize,
    summary_from_moments,
    t_cdf,
    t_ppf,
    two_proportions,
    welch,
)

# --- Student t distribution -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        # R's qt(p, df) to 9 decimals; the NIST/SEMATECH e-Handbook of Statistical Methods, table
        # 1.3.6.7.2 (critical values of Student's t), gives the same values to 3 decimals.
        (0.975, 1, 12.706204736),
        (0.975, 10, 2.228138852),
        (0.975, 30, 2.042272456),
        (0.995, 5, 4.032142984),
        (0.95, 2, 2.919985580),
        (0.99, 20, 2.527977003),
    ],
)
def test_t_quantile_matches_published_values(p: float, df: float, expected: float) -> None:
    assert t_ppf(p, df) == pytest.approx(expected, abs=1e-9)
    assert t_ppf(1 - p, df) == pytest.approx(-expected, abs=1e-9)


def test_t_cdf_matches_published_value() -> None:
    # R: pt(2, 3) = 0.930337 (printed to 6 decimals).
    assert t_cdf(2.0, 3) == pytest.approx(0.930337, abs=5e-7)
    assert t_cdf(-2.0, 3) == pytest.approx(1 - 0.930337, abs=5e-7)
    assert t_cdf(0.0, 4.5) == 0.5


@pytest.mark.parametrize("t", [-50.0, -3.0, -1.0, -0.2, 0.0, 0.7, 1.0, 2.5, 10.0, 1e4])
def test_t_cdf_matches_closed_forms_for_one_and_two_df(t: float) -> None:
    # df = 1 is the Cauchy distribution; df = 2 has CDF 1/2 + t / (2 sqrt(2 + t²)).
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-14)
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-14)


@pytest.mark.parametrize("p", [1e-9, 0.001, 0.2, 0.5, 0.9, 0.999])
def test_t_quantile_matches_closed_forms_for_one_and_two_df(p: float) -> None:
    # tan(π(p - 1/2)), written as -cot(πp) so that p - 1/2 does not round away the digits of p.
    assert t_ppf(p, 1) == pytest.approx(-1 / math.tan(math.pi * p), rel=1e-10, abs=1e-12)
    assert t_ppf(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10, abs=1e-12)


def _t_density(t: float, df: float) -> float:
    log_density = (
        math.lgamma((df + 1) / 2)
        - math.lgamma(df / 2)
        - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log(1 + t * t / df)
    )
    return math.exp(log_density)


def _integrated_cdf(t: float, df: float, intervals: int = 2000) -> float:
    """1/2 + the integral of the density from 0 to t, by Simpson's rule (independent of the beta function)."""
    h = t / intervals
    weights = [1 if i in (0, intervals) else 4 if i % 2 else 2 for i in range(intervals + 1)]
    return 0.5 + h / 3 * math.fsum(w * _t_density(i * h, df) for i, w in enumerate(weights))


@pytest.mark.parametrize("df", [1.5, 7.3, 250.5])
@pytest.mark.parametrize("t", [-2.0, 0.3, 1.0, 2.5, 4.0])
def test_t_cdf_for_fractional_df_matches_integrated_density(t: float, df: float) -> None:
    assert t_cdf(t, df) == pytest.approx(_integrated_cdf(t, df), abs=1e-10)


@pytest.mark.parametrize("df", [1.5, 7.3, 250.5])
@pytest.mark.parametrize("p", [1e-6, 0.01, 0.3, 0.5, 0.8, 0.975, 0.999999])
def test_t_quantile_inverts_cdf_for_fractional_df(p: float, df: float) -> None:
    quantile = t_ppf(p, df)
    assert t_cdf(quantile, df) == pytest.approx(p, rel=1e-10, abs=1e-15)
    assert t_ppf(1 - p, df) == pytest.approx(-quantile, rel=1e-9)


def _large_df_quantile(p: float, df: float) -> float:
    """Abramowitz & Stegun 26.7.5: t_p = x + g1/df + g2/df² + g3/df³ + g4/df⁴ + O(df⁻⁵), x = Φ⁻¹(p)."""
    x = NormalDist().inv_cdf(p)
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@pytest.mark.parametrize("df", [1e3, 1e4, 1e5])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_for_large_df_matches_the_normal_expansion(p: float, df: float) -> None:
    # The correction terms are what distinguish t from the normal here (2e-4 at df = 1e4).
    assert t_ppf(p, df) == pytest.approx(_large_df_quantile(p, df), abs=1e-11)


@pytest.mark.parametrize("df", [1e5, 1e6])
@pytest.mark.parametrize("p", [1e-6, 1e-3, 0.025, 0.2])
def test_t_tail_for_large_df_keeps_its_relative_precision(p: float, df: float) -> None:
    # Welch's df reaches millions on large evaluations; small p-values must stay accurate there too.
    assert t_cdf(_large_df_quantile(p, df), df) == pytest.approx(p, rel=1e-10)


def test_t_converges_to_the_normal_distribution() -> None:
    normal = NormalDist()
    for x in (-3.0, -1.0, 0.5, 1.96, 3.0):
        assert t_cdf(x, 1e6) == pytest.approx(normal.cdf(x), abs=1e-6)
    assert t_ppf(0.975, 1e7) == pytest.approx(normal.inv_cdf(0.975), abs=1e-6)
    # ...from the heavy-tailed side.
    assert t_ppf(0.975, 1e7) > normal.inv_cdf(0.975)


def test_t_rejects_invalid_arguments() -> None:
    for p in (0.0, 1.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError):
            t_ppf(p, 5)
    for df in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            t_cdf(1.0, df)
    with pytest.raises(ValueError):
        t_cdf(math.nan, 5)


# --- Summaries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10, 500])
@pytest.mark.parametrize(("offset", "spread"), [(0.0, 1.0), (0.5, 0.2), (1e6, 0.01)])
def test_summarize_matches_statistics(n: int, offset: float, spread: float) -> None:
    rng = random.Random(f"{n}-{offset}")
    scores = [offset + rng.gauss(0, spread) for _ in range(n)]
    summary = summarize(scores, [])
    assert summary.n == n
    assert summary.mean == pytest.approx(statistics.mean(scores), rel=1e-15)
    # statistics.stdev is exact, then rounded; a naive one-pass formula is off by 1e-4 or worse at
    # 1e6 ± 0.01.
    assert summary.stddev == pytest.approx(statistics.stdev(scores), rel=1e-12)


def test_summarize_counts_only_judged_results() -> None:
    summary = summarize([0.5, 1.0, 0.0, 0.75], [True, False, None, True, None])
    assert (summary.passed, summary.judged) == (2, 3)
    assert summary.pass_rate == pytest.approx(2 / 3)
    assert summarize([0.5], [None, None]).pass_rate is None
    assert summarize([], [False, False]).pass_rate == 0.0


def test_summarize_with_too_few_scores() -> None:
    assert summarize([], []) == Summary(n=0, mean=None, stddev=None, pass_rate=None, passed=0, judged=0)
    one = summarize([0.8], [True])
    assert (one.n, one.mean, one.stddev, one.pass_rate) == (1, 0.8, None, 1.0)
    assert summarize([0.3, 0.3, 0.3], []).stddev == 0.0


def test_summarize_rejects_non_finite_scores() -> None:
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            summarize([0.5, bad], [])


def _moments(scores: list[float]) -> tuple[float, float]:
    """SUM(score) and SUM(score²) as an exact SQL numeric sum would give them: correctly rounded."""
    return math.fsum(scores), float(sum(Fraction(s) ** 2 for s in scores))


@pytest.mark.parametrize(("offset", "spread"), [(0.0, 1.0), (0.7, 0.1), (1e6, 1.0)])
def test_summary_from_moments_loses_only_the_rounding_of_the_sums(offset: float, spread: float) -> None:
    rng = random.Random(f"moments-{offset}")
    scores = [offset + rng.gauss(0, spread) for _ in range(1000)]
    n = len(scores)
    total, total_sq = _moments(scores)
    summary = summary_from_moments(n, total, total_sq, passed=0, judged=0)

    assert summary.mean == pytest.approx(statistics.mean(scores), rel=1e-15)
    # Rounding total and total_sq to floats moves the sum of squared deviations, total_sq -
    # total²/n, by at most half an ulp of total_sq plus (2 |total| / n) times half an ulp of total:
    # around 1e6 that is ~1e-4 of the result, and the summary may lose no more than that.
    m2 = (n - 1) * statistics.variance(scores)
    m2_error = math.ulp(total_sq) / 2 + 2 * abs(total) / n * math.ulp(total) / 2
    assert summary.stddev is not None
    assert summary.stddev == pytest.approx(statistics.stdev(scores), rel=m2_error / m2 + 1e-14)


def test_summary_from_moments_is_exact_when_the_sums_are() -> None:
    # Integer scores around 1e6: COUNT, SUM and SUM of squares (~1e15) are exact floats, but total² is
    # not, so the float formula total_sq - total**2 / n is off by ~1e-5 of the result here.
    rng = random.Random("exact-sums")
    scores = [float(1_000_000 + rng.randint(0, 3)) for _ in range(1000)]
    total, total_sq = _moments(scores)
    assert total_sq == sum(int(s) ** 2 for s in scores)
    summary = summary_from_moments(len(scores), total, total_sq, passed=0, judged=0)
    assert summary.stddev == pytest.approx(statistics.stdev(scores), rel=1e-15)


@pytest.mark.parametrize("value", [0.1, 1e6 + 0.1, -3.7])
def test_summary_from_moments_of_identical_scores_has_no_spread(value: float) -> None:
    # The sums' rounding leaves total_sq - total²/n a little above or below zero (a negative value
    # would make the square root fail); a spread that small is reported as none.
    scores = [value] * 999
    total, total_sq = math.fsum(scores), math.fsum(s * s for s in scores)
    summary = summary_from_moments(len(scores), total, total_sq, passed=0, judged=0)
    assert summary.stddev == 0.0
    assert summary.mean == pytest.approx(value, rel=1e-15)


def test_summary_from_moments_small_counts_and_pass_rate() -> None:
    assert summary_from_moments(0, 0.0, 0.0, 0, 0) == Summary(0, None, None, None, 0, 0)
    assert summary_from_moments(1, 0.4, 0.16, 1, 1) == Summary(1, 0.4, None, 1.0, 1, 1)
    assert summary_from_moments(2, 1.0, 0.5, 3, 4) == Summary(2, 0.5, 0.0, 0.75, 3, 4)
    assert summary_from_moments(2, 1.0, 0.82, 0, 0).stddev == pytest.approx(statistics.stdev([0.1, 0.9]))


def test_summary_from_moments_rejects_inconsistent_counts() -> None:
    with pytest.raises(ValueError):
        summary_from_moments(-1, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError):
        summary_from_moments(3, 1.0, 1.0, 4, 3)
    with pytest.raises(ValueError):
        summary_from_moments(3, math.nan, 1.0, 0, 0)


# --- Welch's t-test -----------------------------------------------------------------------------------


def _textbook_welch(a: list[float], b: list[float], confidence: float = 0.95) -> dict[str, float]:
    """Welch's test of mean(b) - mean(a) from the textbook formulas."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    difference = statistics.mean(b) - statistics.mean(a)
    t = difference / se
    half_width = t_ppf(1 - (1 - confidence) / 2, df) * se
    return {
        "difference": difference,
        "t": t,
        "df": df,
        "p_value": 2 * (1 - t_cdf(abs(t), df)),
        "ci_low": difference - half_width,
        "ci_high": difference + half_width,
    }


@pytest.mark.parametrize(
    ("n_a", "sd_a", "n_b", "sd_b", "shift"),
    [(5, 1.0, 5, 1.0, 0.3), (8, 0.1, 40, 0.3, 0.05), (30, 2.0, 7, 0.5, -1.0), (200, 0.2, 150, 0.25, 0.01)],
)
def test_welch_matches_the_textbook_formulas(
    n_a: int, sd_a: float, n_b: int, sd_b: float, shift: float
) -> None:
    rng = random.Random(f"welch-{n_a}-{n_b}")
    a = [0.6 + rng.gauss(0, sd_a) for _ in range(n_a)]
    b = [0.6 + shift + rng.gauss(0, sd_b) for _ in range(n_b)]
    expected = _textbook_welch(a, b)
    result = welch(summarize(a, []), summarize(b, []), "1.4.2", "1.5.0")

    assert (result.metric, result.test, result.baseline, result.candidate) == (
        "mean",
        "welch_t",
        "1.4.2",
        "1.5.0",
    )
    assert result.note is None
    assert result.difference == pytest.approx(expected["difference"], rel=1e-12)
    assert result.df == pytest.approx(expected["df"], rel=1e-12)
    assert result.p_value == pytest.approx(expected["p_value"], rel=1e-8, abs=1e-14)
    assert result.ci_low == pytest.approx(expected["ci_low"], rel=1e-10)
    assert result.ci_high == pytest.approx(expected["ci_high"], rel=1e-10)


def test_welch_matches_the_published_example() -> None:
    # Wikipedia, "Welch's t-test", example 1: t = -2.46, df ≈ 24.99, p = 0.021 for A1 - A2 (so the
    # candidate A2 is the higher one here: t = +2.46).
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = welch(summarize(a, []), summarize(b, []), "A1", "A2")
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    assert result.difference is not None and result.difference > 0
    assert result.difference / se == pytest.approx(2.46, abs=0.005)
    assert result.df == pytest.approx(24.99, abs=0.005)
    assert result.p_value == pytest.approx(0.021, abs=0.0005)
    assert result.ci_low is not None and result.ci_high is not None
    assert 0 < result.ci_low < result.difference < result.ci_high


def test_welch_sign_convention_is_candidate_minus_baseline() -> None:
    low = summarize([0.50, 0.55, 0.52, 0.48, 0.51], [])
    high = summarize([0.70, 0.62, 0.66, 0.71, 0.68, 0.64], [])
    forward = welch(low, high, "old", "new")
    backward = welch(high, low, "new", "old")
    assert forward.difference == pytest.approx(0.668333333 - 0.512, abs=1e-9)
    assert backward.difference == pytest.approx(-forward.difference)
    assert (backward.ci_low, backward.ci_high) == pytest.approx((-forward.ci_high, -forward.ci_low))
    assert backward.p_value == pytest.approx(forward.p_value)
    assert forward.ci_low > 0


def test_welch_df_in_the_two_limiting_cases() -> None:
    # Equal sizes and equal variances: Welch's df is Student's, 2n - 2.
    equal = welch(Summary(12, 0.5, 0.2, None, 0, 0), Summary(12, 0.6, 0.2, None, 0, 0), "a", "b")
    assert equal.df == pytest.approx(22)
    # One side without spread: all the uncertainty, and the df, are the other side's.
    one_sided = welch(Summary(9, 0.5, 0.0, None, 0, 0), Summary(4, 0.7, 0.3, None, 0, 0), "a", "b")
    assert one_sided.df == pytest.approx(3)
    assert one_sided.p_value == pytest.approx(2 * (1 - t_cdf(0.2 / (0.3 / 2), 3)))


def test_welch_confidence_level_widens_the_interval() -> None:
    a, b = Summary(20, 0.5, 0.1, None, 0, 0), Summary(25, 0.55, 0.12, None, 0, 0)
    ci95, ci99 = welch(a, b, "a", "b"), welch(a, b, "a", "b", confidence=0.99)
    assert ci99.ci_low < ci95.ci_low < ci95.ci_high < ci99.ci_high
    assert ci99.p_value == ci95.p_value
    with pytest.raises(ValueError):
        welch(a, b, "a", "b", confidence=95)


def test_welch_needs_two_results_per_version() -> None:
    one = welch(summarize([0.9], []), summarize([0.1, 0.3, 0.2], []), "1.4.2", "1.5.0")
    assert one.difference == pytest.approx(-0.7)
    assert (one.ci_low, one.ci_high, one.p_value, one.df) == (None, None, None, None)
    assert one.note is not None and "at least 2 results per version" in one.note and "1.4.2 has 1" in one.note
    empty = welch(summarize([0.2, 0.4], []), summarize([], []), "1.4.2", "1.5.0")
    assert (empty.difference, empty.p_value) == (None, None)
    assert empty.note is not None and "1.5.0 has 0" in empty.note


def test_welch_without_any_spread() -> None:
    same = welch(summarize([1.0, 1.0, 1.0], []), summarize([1.0] * 5, []), "a", "b")
    assert (same.difference, same.ci_low, same.ci_high, same.p_value, same.df) == (0.0, 0.0, 0.0, 1.0, None)
    assert same.note is not None and "no spread" in same.note

    apart = welch(summarize([0.0, 0.0], []), summarize([1.0, 1.0, 1.0], []), "a", "b")
    assert (apart.difference, apart.ci_low, apart.ci_high, apart.p_value, apart.df) == (
        1.0,
        1.0,
        1.0,
        0.0,
        None,
    )
    assert apart.note is not None and "no spread" in apart.note


def test_welch_interval_and_p_value_are_calibrated() -> None:
    # Small, unequal samples with unequal spreads, where a normal (z) interval would cover ~89% of
    # the time and Student's pooled test would reject far too often: Welch's keeps close to 95%.
    rng = random.Random(20240611)
    runs, covered, rejected = 4000, 0, 0
    for _ in range(runs):
        a = summarize([rng.gauss(0.5, 0.3) for _ in range(5)], [])
        b = summarize([rng.gauss(0.5, 0.1) for _ in range(12)], [])
        result = welch(a, b, "a", "b")
        covered += result.ci_low <= 0 <= result.ci_high
        rejected += result.p_value < 0.05
    # Binomial standard error at 4000 runs: 0.0034.
    assert covered / runs == pytest.approx(0.95, abs=0.012)
    assert rejected / runs == pytest.approx(0.05, abs=0.012)
    # The interval excludes 0 exactly when p < 0.05: quantile and CDF agree.
    assert covered + rejected == runs


# --- Two proportions -----------------------------------------------------------------------------------


def _rates(passed: int, judged: int) -> Summary:
    return Summary(n=judged, mean=None, stddev=None, pass_rate=passed / judged, passed=passed, judged=judged)


def test_two_proportions_matches_a_hand_computation() -> None:
    result = two_proportions(_rates(45, 100), _rates(60, 100), "1.4.2", "1.5.0")
    pooled = (45 + 60) / 200
    z = (0.60 - 0.45) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    wald_se = math.sqrt(0.45 * 0.55 / 100 + 0.60 * 0.40 / 100)
    z_crit = NormalDist().inv_cdf(0.975)

    assert (result.metric, result.test, result.df, result.note) == (
        "pass_rate",
        "two_proportion_z",
        None,
        None,
    )
    assert result.difference == pytest.approx(0.15)
    assert result.p_value == pytest.approx(2 * NormalDist().cdf(-z), rel=1e-12)
    # R: prop.test(c(60, 45), c(100, 100), correct = FALSE) gives X-squared = 4.5113, p = 0.03367.
    assert z**2 == pytest.approx(4.5113, abs=5e-5)
    assert result.p_value == pytest.approx(0.03367, abs=5e-6)
    assert result.ci_low == pytest.approx(0.15 - z_crit * wald_se, rel=1e-12)
    assert result.ci_high == pytest.approx(0.15 + z_crit * wald_se, rel=1e-12)

    swapped = two_proportions(_rates(60, 100), _rates(45, 100), "1.5.0", "1.4.2")
    assert swapped.difference == pytest.approx(-0.15)
    assert (swapped.ci_low, swapped.ci_high) == pytest.approx((-result.ci_high, -result.ci_low))
    assert swapped.p_value == pytest.approx(result.p_value)


def test_two_proportions_keeps_precision_far_in_the_tail() -> None:
    result = two_proportions(_rates(100, 1000), _rates(900, 1000), "a", "b")
    # z ≈ 35.8: 1 - NormalDist().cdf(z) is 0.0 in floating point, the true p-value about 1e-280.
    assert result.p_value is not None and 0 < result.p_value < 1e-250


def test_two_proportions_without_verdicts() -> None:
    result = two_proportions(_rates(3, 10), Summary(10, 0.5, 0.1, None, 0, 0), "1.4.2", "1.5.0")
    assert (result.difference, result.ci_low, result.ci_high, result.p_value) == (None, None, None, None)
    assert result.note == "no pass/fail verdicts for 1.5.0"


@pytest.mark.parametrize(("passed_a", "passed_b", "word"), [(0, 0, "failed"), (10, 5, "passed")])
def test_two_proportions_when_all_pass_or_all_fail(passed_a: int, passed_b: int, word: str) -> None:
    result = two_proportions(_rates(passed_a, 10), _rates(passed_b, 5), "a", "b")
    assert (result.difference, result.p_value, result.ci_low, result.ci_high) == (0.0, 1.0, None, None)
    assert result.note is not None and f"every judged result {word}" in result.note


def test_two_proportions_from_0_to_100_percent() -> None:
    result = two_proportions(_rates(0, 10), _rates(10, 10), "a", "b")
    # Pooled rate 1/2: z = 1 / sqrt(1/4 · 2/10).
    assert result.difference == 1.0
    assert result.p_value == pytest.approx(2 * NormalDist().cdf(-1 / math.sqrt(0.05)), rel=1e-9)
    assert (result.ci_low, result.ci_high) == (None, None)
    assert result.note is not None and "Wald interval" in result.note


def test_two_proportions_interval_stays_within_possible_differences() -> None:
    result = two_proportions(_rates(1, 2), _rates(2, 2), "a", "b")
    assert result.ci_high == 1.0
    assert result.ci_low == pytest.approx(0.5 - NormalDist().inv_cdf(0.975) * math.sqrt(0.25 / 2))
