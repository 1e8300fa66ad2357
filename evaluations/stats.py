"""Per-version score summaries and the tests that say whether one prompt version beats another.

``GET /v1/evaluations/{id}/compare`` reports, for each prompt version, how many results it has, their
mean score, the spread, and the pass rate; and for each pair of versions the difference, a 95%
confidence interval and a p-value. A bare "mean went from 0.71 to 0.74" invites reading noise as
progress; the interval and the p-value say how much of the change the sample sizes can vouch for.

Which tests, and why
    Means: Welch's unequal-variance t-test. Two prompt versions rarely produce scores with the same
    spread, and Student's pooled test is wrong when they do not (badly so when the sample sizes also
    differ), while Welch's costs almost nothing when the spreads are equal. Its degrees of freedom
    come from the Welch–Satterthwaite equation and are fractional, so the Student t distribution
    below works for any real df > 0.
    Pass rates: the two-proportion z-test. Its p-value uses the pooled rate (under "no difference"
    both versions share one rate, which is what makes the test's size right); its interval uses the
    unpooled (Wald) standard error, since away from the null each version has its own rate.

Where a quantity cannot be computed honestly (too few results, no pass/fail verdicts, no spread at
all) the field is None and ``Difference.note`` says why in plain English, rather than a number that
looks meaningful and is not.

The module is standard library only: the Student t CDF comes from the regularized incomplete beta
function (Lentz's continued fraction), its quantile from a safeguarded Newton iteration on the CDF,
and the normal distribution from ``statistics.NormalDist``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Literal

# Continued fraction: relative change at which to stop, and a floor that keeps Lentz's method away
# from dividing by zero.
_CF_EPS = 2 * sys.float_info.epsilon
_CF_TINY = 1e-300
# Iterations grow like sqrt(df) for the t distribution; 1e5 covers df far beyond any sample size.
_CF_MAX_ITER = 100_000
_QUANTILE_MAX_ITER = 300
# Above this argument ln Γ differences come from Stirling's series (see ``_log_beta``); the series'
# first omitted term is then below 1e-24.
_STIRLING_FROM = 1000.0
# A variance below this fraction of the mean square is below the rounding error of the sums it is
# computed from (see ``summary_from_moments``) and is reported as zero.
_MOMENTS_NOISE = 4 * sys.float_info.epsilon


@dataclass(frozen=True)
class Summary:
    """The scores of one prompt version: enough to report it and to compare it with another.

    ``n`` counts scored results, ``stddev`` is the sample standard deviation (divisor n - 1; None
    below two scores, where there is no spread to estimate), and ``pass_rate`` is ``passed /
    judged`` over the results that have a pass/fail verdict (None when none has).
    """

    n: int
    mean: float | None
    stddev: float | None
    pass_rate: float | None
    passed: int
    judged: int


@dataclass(frozen=True)
class Difference:
    """Candidate minus baseline for one metric, with a confidence interval and a two-sided p-value.

    ``test`` names the method: ``welch_t`` for means, ``two_proportion_z`` for pass rates; ``df``
    is the Welch–Satterthwaite degrees of freedom (always None for the z-test, which has none).
    Whenever another field is None, or the result rests on a degenerate case, ``note`` says why.
    """

    metric: Literal["mean", "pass_rate"]
    baseline: str
    candidate: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: Literal["welch_t", "two_proportion_z"]
    df: float | None
    note: str | None


def summarize(scores: Sequence[float], passed: Sequence[bool | None]) -> Summary:
    """Summarize one version from its individual results.

    ``scores`` are the results' scores and ``passed`` their pass/fail verdicts, None for a result
    that was not judged; the two need not have the same length (a result may have a verdict and no
    score). The mean and standard deviation use exactly rounded sums and two passes over the data,
    so scores with a large common offset (1e6 ± 0.01) keep their precision.
    """
    values = [float(s) for s in scores]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("scores must be finite numbers")
    judged = [p for p in passed if p is not None]
    n = len(values)
    mean = math.fsum(values) / n if n else None
    stddev = None
    if mean is not None and n >= 2:
        deviations = [v - mean for v in values]
        # The second term corrects for the rounding of the mean (the "corrected two-pass" algorithm).
        m2 = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / n
        stddev = math.sqrt(max(m2, 0.0) / (n - 1))
    passed_count = sum(1 for p in judged if p)
    return Summary(
        n=n,
        mean=mean,
        stddev=stddev,
        pass_rate=passed_count / len(judged) if judged else None,
        passed=passed_count,
        judged=len(judged),
    )


def summary_from_moments(n: int, total: float, total_sq: float, passed: int, judged: int) -> Summary:
    """Summarize one version from aggregates: ``COUNT``, ``SUM(score)`` and ``SUM(score * score)``.

    This lets the database reduce millions of rows to three numbers. The textbook shortcut
    ``(total_sq - total**2 / n) / (n - 1)`` subtracts two nearly equal numbers when the spread is
    small next to the mean, so it is evaluated here in exact rational arithmetic: the only error left
    is the rounding already in ``total`` and ``total_sq``. That rounding can leave a slightly
    negative or a meaningless tiny positive sum of squares (a column of identical scores, say), so
    anything below the resolution of ``total_sq`` is reported as no spread: a standard deviation
    under about 3e-8 of the mean cannot be told from rounding. Rounding in the sums themselves is the
    caller's to keep small (PostgreSQL's ``SUM`` over ``numeric`` is exact).
    """
    if n < 0 or not 0 <= passed <= judged:
        raise ValueError("need n >= 0 and 0 <= passed <= judged")
    if not (math.isfinite(total) and math.isfinite(total_sq)):
        raise ValueError("total and total_sq must be finite numbers")
    mean = float(Fraction(total) / n) if n else None
    stddev = None
    if n >= 2:
        m2 = Fraction(total_sq) - Fraction(total) ** 2 / n
        if m2 <= _MOMENTS_NOISE * abs(total_sq):
            m2 = Fraction(0)
        stddev = math.sqrt(float(m2 / (n - 1)))
    return Summary(
        n=n,
        mean=mean,
        stddev=stddev,
        pass_rate=passed / judged if judged else None,
        passed=passed,
        judged=judged,
    )


def _result_builder(metric: str, test: str, baseline: str, candidate: str) -> Callable[..., Difference]:
    """A ``Difference`` of one metric between two versions, from the figures a test could compute."""

    def result(
        difference: float | None,
        ci: tuple[float, float] | None = None,
        p_value: float | None = None,
        df: float | None = None,
        note: str | None = None,
    ) -> Difference:
        return Difference(
            metric=metric,
            baseline=baseline,
            candidate=candidate,
            difference=difference,
            ci_low=ci[0] if ci else None,
            ci_high=ci[1] if ci else None,
            p_value=p_value,
            test=test,
            df=df,
            note=note,
        )

    return result


def welch(
    baseline: Summary,
    candidate: Summary,
    baseline_name: str,
    candidate_name: str,
    confidence: float = 0.95,
) -> Difference:
    """Compare mean scores with Welch's t-test: is ``candidate``'s mean different from ``baseline``'s?

    The interval is ``difference ± t(1 - α/2, df) · SE`` with ``SE² = s₁²/n₁ + s₂²/n₂`` and the
    Welch–Satterthwaite ``df``. With fewer than two results on a side there is no spread to estimate:
    the difference of means is still reported (when both sides have one), the rest is None. When
    neither version shows any spread the data admit no sampling error: equal means give p = 1 and
    the interval [0, 0], different means p = 0 and an interval that is the single observed value.
    """
    _check_confidence(confidence)

    result = _result_builder("mean", "welch_t", baseline_name, candidate_name)

    short = [
        f"{name} has {s.n}"
        for name, s in ((baseline_name, baseline), (candidate_name, candidate))
        if s.n < 2 or s.mean is None or s.stddev is None
    ]
    if short:
        difference = (
            candidate.mean - baseline.mean
            if candidate.mean is not None and baseline.mean is not None
            else None
        )
        return result(difference, note=f"needs at least 2 results per version ({'; '.join(short)})")
    assert baseline.mean is not None and candidate.mean is not None
    assert baseline.stddev is not None and candidate.stddev is not None

    difference = candidate.mean - baseline.mean
    var_b = baseline.stddev**2 / baseline.n
    var_c = candidate.stddev**2 / candidate.n
    se = math.sqrt(var_b + var_c)
    if se == 0:
        if difference == 0:
            return result(
                0.0,
                (0.0, 0.0),
                1.0,
                note="the scores have no spread in either version and the means are equal",
            )
        return result(
            difference,
            (difference, difference),
            0.0,
            note="the scores have no spread in either version, so the difference shows no sampling noise",
        )

    # Welch–Satterthwaite, with both variances scaled by the larger so that tiny ones do not
    # underflow when squared.
    scale = max(var_b, var_c)
    w_b, w_c = var_b / scale, var_c / scale
    df = (w_b + w_c) ** 2 / (w_b**2 / (baseline.n - 1) + w_c**2 / (candidate.n - 1))
    half_width = t_ppf(1 - (1 - confidence) / 2, df) * se
    return result(
        difference,
        (difference - half_width, difference + half_width),
        _t_two_sided_p(difference / se, df),
        df,
    )


def two_proportions(
    baseline: Summary,
    candidate: Summary,
    baseline_name: str,
    candidate_name: str,
    confidence: float = 0.95,
) -> Difference:
    """Compare pass rates: pooled two-proportion z-test for the p-value, Wald interval for the CI.

    The interval is clipped to [-1, 1], outside which a difference of rates cannot lie. It is None
    when both rates are 0% or 100%: the Wald standard error is then zero, and an interval of width
    zero would claim a certainty that a finite sample cannot give.
    """
    _check_confidence(confidence)

    result = _result_builder("pass_rate", "two_proportion_z", baseline_name, candidate_name)

    unjudged = [name for name, s in ((baseline_name, baseline), (candidate_name, candidate)) if not s.judged]
    if unjudged:
        return result(None, note=f"no pass/fail verdicts for {' or '.join(unjudged)}")

    n_b, n_c = baseline.judged, candidate.judged
    rate_b, rate_c = baseline.passed / n_b, candidate.passed / n_c
    difference = rate_c - rate_b
    pooled = (baseline.passed + candidate.passed) / (n_b + n_c)
    if pooled in (0.0, 1.0):
        outcome = "passed" if pooled == 1.0 else "failed"
        return result(
            0.0,
            p_value=1.0,
            note=f"every judged result {outcome} in both versions: the pass rates are equal, "
            "and with no variation there is no interval",
        )

    z = difference / math.sqrt(pooled * (1 - pooled) * (1 / n_b + 1 / n_c))
    # erfc keeps its relative precision far into the tail, where 1 - NormalDist().cdf(z) rounds to 0.
    p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(rate_b * (1 - rate_b) / n_b + rate_c * (1 - rate_c) / n_c)
    if se == 0:
        return result(
            difference,
            p_value=p_value,
            note="both pass rates are 0% or 100%, where the Wald interval has zero width",
        )
    half_width = NormalDist().inv_cdf(1 - (1 - confidence) / 2) * se
    return result(
        difference, (max(-1.0, difference - half_width), min(1.0, difference + half_width)), p_value
    )


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t distribution with ``df`` > 0 (not necessarily whole) degrees of freedom.

    Tail probabilities are accurate to about 1e-14 relative at small df. The error grows with df (the
    continued fraction then needs x = df / (df + t²) to more digits than a float holds): about 1e-12
    at df = 1e4 and 4e-11 at df = 1e6, far below anything a p-value is read for.
    """
    _check_df(df)
    if math.isnan(t):
        raise ValueError("t must be a number")
    tail = _t_upper_tail(abs(t), df)
    return tail if t < 0 else 1.0 - tail


def t_ppf(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p (the quantile function), as accurate as ``t_cdf`` allows (~1e-12)."""
    _check_df(df)
    if not 0 < p < 1:
        raise ValueError("p must be strictly between 0 and 1")
    # Work in the upper tail, by symmetry, so that p close to 0 keeps its precision.
    if p < 0.5:
        return -_t_upper_quantile(p, df)
    return _t_upper_quantile(1.0 - p, df)


def _t_upper_quantile(q: float, df: float) -> float:
    """The t ≥ 0 with P(T > t) = q, for 0 < q ≤ 1/2: Newton's method, kept inside a bisection bracket."""
    if q == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while _t_upper_tail(hi, df) > q:
        lo, hi = hi, 2 * hi
        if math.isinf(hi):
            return math.inf
    t = 0.5 * (lo + hi)
    for _ in range(_QUANTILE_MAX_ITER):
        excess = _t_upper_tail(t, df) - q
        if excess == 0:
            return t
        if excess > 0:
            lo = t
        else:
            hi = t
        density = _t_pdf(t, df)
        # The tail falls as t grows (its derivative is -density), hence the plus sign.
        step = excess / density if density > 0 else math.inf
        candidate = t + step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - t) <= 1e-14 * candidate or candidate in (lo, hi):
            return candidate
        t = candidate
    return t


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t ≥ 0: ½ I_x(df/2, ½) with x = df / (df + t²)."""
    if t == 0:
        return 0.5
    z2 = (t / math.sqrt(df)) ** 2
    if math.isinf(z2):
        return 0.0
    # x and 1 - x computed separately, so that neither loses precision when the other is tiny.
    return 0.5 * _regularized_beta(df / 2, 0.5, 1 / (1 + z2), z2 / (1 + z2))


def _t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|), from the tail directly rather than as 1 - CDF, which would round small p to 0."""
    return min(1.0, 2 * _t_upper_tail(abs(t), df))


def _t_pdf(t: float, df: float) -> float:
    log_density = (
        math.lgamma((df + 1) / 2)
        - math.lgamma(df / 2)
        - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log1p(t * t / df)
    )
    return math.exp(log_density)


def _regularized_beta(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, with ``y`` = 1 - x given by the caller.

    The continued fraction converges quickly only for x < (a + 1) / (a + b + 2); above that it is
    evaluated for the mirror image, through I_x(a, b) = 1 - I_{1-x}(b, a).
    """
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    # Each logarithm from whichever of x and 1 - x is far from 1, where it is known to full precision.
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    front = math.exp(a * log_x + b * log_y - _log_beta(a, b))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, y) / b


def _log_beta(a: float, b: float) -> float:
    """ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b).

    When one argument is large, ln Γ(large) and ln Γ(large + small) are huge and nearly equal, and
    their difference through ``math.lgamma`` keeps only their absolute rounding error (1e-8 at
    df = 1e7). Their difference then comes from Stirling's series instead, where it is a sum of
    small terms.
    """
    small, large = min(a, b), max(a, b)
    if large < _STIRLING_FROM:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    z = large + small
    # ln Γ(z) - ln Γ(large): the (x - ½) ln x - x parts, regrouped, then 1/(12x) - 1/(360x³) + 1/(1260x⁵).
    log_ratio = (large - 0.5) * math.log1p(small / large) - small + small * math.log(z)
    log_ratio += (1 / z - 1 / large) / 12 - (1 / z**3 - 1 / large**3) / 360 + (1 / z**5 - 1 / large**5) / 1260
    return math.lgamma(small) - log_ratio


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method (Numerical Recipes §6.4)."""

    def guard(value: float) -> float:
        return value if abs(value) >= _CF_TINY else _CF_TINY

    c = 1.0
    d = 1.0 / guard(1.0 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, _CF_MAX_ITER + 1):
        # Even step, then odd step, of the fraction's coefficients.
        coefficient = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / guard(1.0 + coefficient * d)
        c = guard(1.0 + coefficient / c)
        h *= d * c
        coefficient = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / guard(1.0 + coefficient * d)
        c = guard(1.0 + coefficient / c)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _check_df(df: float) -> None:
    if not df > 0:
        raise ValueError("degrees of freedom must be positive")


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be strictly between 0 and 1")
