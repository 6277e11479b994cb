"""CLV models against the published CDNOW estimates and against lifetimes 0.11.3; pure numerics, no database.

The summary built from tests/fixtures/CDNOW_sample.txt, as Fader, Hardie & Lee (2005) and Hardie's published
summary file define it (the service's SQL must compute the same):

- A purchase is a customer-day: all transactions of one customer on one calendar day are one purchase, whose
  value is their sum.
- Calibration period 1997-01-01 .. 1997-09-30, both days included; holdout 1997-10-01 .. 1998-06-30, 273 days = 39
  weeks. Times are in weeks (days / 7).
- x (frequency) = calibration purchase days - 1 (repeat purchases).
- t_x (recency) = (last calibration purchase day - first purchase day) / 7; 0 when x = 0.
- T (age) = (1997-09-30 - first purchase day) / 7. The calibration end is the START of 1997-09-30, i.e. a first
  purchase on 1997-01-01 gives T = 272/7 = 38.857 (Hardie's 38.86), not 39: measured to 1997-10-01 the fit moves
  to r = 0.242, alpha = 4.394, a = 0.814, b = 2.477, LL = -9589.9, away from the published figures.
- m (monetary value) = mean value of the repeat purchase days in the calibration period (the first day left out);
  unused when x = 0. Matches Hardie's zbar column up to its rounding to cents.
- holdout purchases x* = distinct purchase days in the holdout period.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from customer_api.analytics.clv import (
    BGNBDParams,
    GammaGammaParams,
    bgnbd_log_likelihood,
    conditional_expected_purchases,
    expected_average_order_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    predicted_value,
)

SAMPLE = Path(__file__).parent / "fixtures" / "CDNOW_sample.txt"
CALIBRATION_END_DAY = 272  # 1997-09-30, counting 1997-01-01 as day 0
HOLDOUT_END_DAY = 545  # 1998-06-30

FloatArray = npt.NDArray[np.float64]

# The published estimates: Fader, Hardie & Lee (2005), section 5 (BG/NBD); Fader & Hardie (2013) (Gamma-Gamma).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}

# lifetimes 0.11.3 (numpy 2.4.6, scipy 1.17.1, pandas 3.1.1, autograd 1.9.1) on the summary cdnow() builds:
# BetaGeoFitter().fit(x, t_x, T).params_ and GammaGammaFitter().fit(x[x > 0], m[x > 0]).params_.
LIFETIMES_BGNBD = {
    "r": 0.24259454342106726,
    "alpha": 4.413602716077381,
    "a": 0.7929218333479484,
    "b": 2.4259057287220465,
}
LIFETIMES_GAMMA_GAMMA = {"p": 6.249572277630894, "q": 3.7442246747591295, "v": 15.443521018379219}

PAPER = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=float("nan"), customers=0, converged=True)
PAPER_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=float("nan"), customers=0, converged=True)


@dataclass(frozen=True)
class Summary:
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray
    holdout: FloatArray


@cache
def cdnow() -> Summary:
    """The per-customer summary of the module docstring, customers in sample-id order."""
    table = np.loadtxt(SAMPLE, dtype=np.int64, usecols=(1, 2))
    value = np.loadtxt(SAMPLE, dtype=np.float64, usecols=(4,))
    customer, date = table[:, 0], table[:, 1]
    months = ((date // 10_000 - 1970) * 12 + date // 100 % 100 - 1).astype("datetime64[M]")
    calendar = months.astype("datetime64[D]") + (date % 100 - 1).astype("timedelta64[D]")
    day = (calendar - np.datetime64("1997-01-01")).astype(np.int64)

    # Customer-days, sorted by customer then day, with the day's total spend.
    keys, inverse = np.unique(np.stack([customer, day], axis=1), axis=0, return_inverse=True)
    spend = np.bincount(inverse.ravel(), weights=value)
    ids = np.unique(customer)
    position = np.searchsorted(ids, keys[:, 0])
    calibration = keys[:, 1] <= CALIBRATION_END_DAY

    days_in_calibration = np.bincount(position[calibration], minlength=ids.size)
    first = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first, position, keys[:, 1])
    last = np.full(ids.size, -1)
    np.maximum.at(last, position[calibration], keys[calibration, 1])
    repeat = calibration & (keys[:, 1] > first[position])
    repeat_spend = np.bincount(position[repeat], weights=spend[repeat], minlength=ids.size)

    x = (days_in_calibration - 1).astype(np.float64)
    m = np.divide(repeat_spend, x, out=np.zeros(ids.size), where=x > 0)
    in_holdout = ~calibration & (keys[:, 1] <= HOLDOUT_END_DAY)
    holdout = np.bincount(position[in_holdout], minlength=ids.size).astype(np.float64)
    return Summary(x=x, t_x=(last - first) / 7.0, T=(CALIBRATION_END_DAY - first) / 7.0, m=m, holdout=holdout)


@cache
def fitted() -> BGNBDParams:
    data = cdnow()
    return fit_bgnbd(data.x, data.t_x, data.T)


@cache
def fitted_gg() -> GammaGammaParams:
    data = cdnow()
    return fit_gamma_gamma(data.x, data.m)


def test_summary_matches_the_published_one() -> None:
    data = cdnow()
    assert data.x.size == 2357
    assert int(data.x.sum()) == 2457
    assert int((data.x > 0).sum()) == 946
    assert data.T.max() == pytest.approx(272 / 7)
    # Customer 1 (sample id 0001) of Hardie's summary: x = 2, t_x = 30.43, T = 38.86, zbar = 22.35.
    assert (data.x[0], round(data.t_x[0], 2), round(data.T[0], 2), round(data.m[0], 3)) == (2, 30.43, 38.86, 22.345)
    assert int(data.holdout.sum()) == 1882


def test_bgnbd_reproduces_fader_hardie_lee_2005() -> None:
    params = fitted()
    assert params.converged
    assert params.customers == 2357
    for name, published in PUBLISHED_BGNBD.items():
        assert round(getattr(params, name), 3) == published, name
        assert getattr(params, name) == pytest.approx(LIFETIMES_BGNBD[name], abs=1e-5), name
    assert params.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.05)
    # The fit aggregates identical customers; the per-customer likelihood must add up to the same total.
    data = cdnow()
    assert bgnbd_log_likelihood(params, data.x, data.t_x, data.T).sum() == pytest.approx(params.log_likelihood)


def test_bgnbd_fit_is_independent_of_the_time_unit_and_the_start() -> None:
    data = cdnow()
    in_days = fit_bgnbd(data.x, data.t_x * 7, data.T * 7)
    weeks = fitted()
    assert (in_days.r, in_days.a, in_days.b) == pytest.approx((weeks.r, weeks.a, weeks.b), rel=1e-6)
    assert in_days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-6)
    restarted = fit_bgnbd(data.x, data.t_x, data.T, initial=PAPER)
    assert restarted.alpha == pytest.approx(weeks.alpha, rel=1e-6)


def test_worked_example_of_the_paper() -> None:
    # FHL (2005): a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226 purchases in 39 weeks.
    assert round(float(conditional_expected_purchases(fitted(), 39, 2, 30.43, 38.86)), 3) == 1.226


@pytest.mark.parametrize(
    ("x", "t_x", "T", "expected_39", "alive"),
    [
        # lifetimes 0.11.3 BetaGeoFitter with params_ set to the published (0.243, 4.414, 0.793, 2.426):
        # conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T), conditional_probability_alive(x, t_x, T).
        (2, 30.43, 38.86, 1.226028174767135, 0.726578570080673),  # sample customer 1
        (1, 1.71, 38.86, 0.20318698707975183, 0.2121009853773791),  # sample customer 2
        (0, 0.0, 38.86, 0.19509805201125396, 1.0),  # sample customer 3
        (29, 37.71, 38.0, 20.052948986498027, 0.9691295181593396),  # sample customer 157, the most repeat purchases
    ],
)
def test_conditional_expectation_and_p_alive_match_lifetimes(
    x: float, t_x: float, T: float, expected_39: float, alive: float
) -> None:
    assert float(conditional_expected_purchases(PAPER, 39, x, t_x, T)) == pytest.approx(expected_39, rel=1e-9)
    assert float(p_alive(PAPER, x, t_x, T)) == pytest.approx(alive, rel=1e-9)


def test_unconditional_expectation_matches_lifetimes() -> None:
    # lifetimes 0.11.3, published params: expected_number_of_purchases_up_to_time(39).
    assert expected_purchases(PAPER, 39.0) == pytest.approx(1.1967231933207985, rel=1e-9)
    assert expected_purchases(PAPER, 0.0) == 0.0
    curve = expected_purchases(PAPER, np.array([1.0, 39.0, 78.0]))
    assert isinstance(curve, np.ndarray)
    assert np.all(np.diff(curve) > 0)


def test_gamma_gamma_reproduces_fader_hardie_2013() -> None:
    params = fitted_gg()
    assert params.converged
    assert params.customers == 946
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert round(getattr(params, name), 2) == published, name
        # Agreement with lifetimes well inside the third decimal.
        assert getattr(params, name) == pytest.approx(LIFETIMES_GAMMA_GAMMA[name], abs=1e-5), name


def test_gamma_gamma_needs_repeat_customers() -> None:
    with pytest.raises(ValueError, match="repeat purchases"):
        fit_gamma_gamma([0, 0], [0.0, 0.0])
    with pytest.raises(ValueError, match="> 0"):
        fit_gamma_gamma([1, 2], [10.0, 0.0])


def test_expected_average_order_value() -> None:
    # lifetimes 0.11.3 GammaGammaFitter with params_ (6.25, 3.74, 15.44): conditional_expected_average_profit.
    values = expected_average_order_value(PAPER_GG, [2, 1, 0, 7], [22.35, 11.77, 0.0, 40.0])
    expected = [24.663713910761153, 18.916852057842046, 35.21897810218978, 39.7182189718219]
    assert values == pytest.approx(expected, rel=1e-12)
    # x = 0 gets the population mean p v / (q - 1) whatever its monetary value says.
    assert float(expected_average_order_value(PAPER_GG, 0, float("nan"))) == pytest.approx(6.25 * 15.44 / 2.74)


def test_holdout_forecast_against_the_sample() -> None:
    data = cdnow()
    params = fitted()
    in_sample = np.sum(expected_purchases(params, data.T))
    holdout = np.sum(expected_purchases(params, data.T + 39)) - in_sample
    conditional = float(conditional_expected_purchases(params, 39, data.x, data.t_x, data.T).sum())
    actual_calibration, actual_holdout = data.x.sum(), data.holdout.sum()  # 2,457 and 1,882 purchase days
    # Weeks 1-39: 2,494 expected vs 2,457; weeks 1-78 cumulative: 4,161 vs 4,339.
    assert in_sample / actual_calibration == pytest.approx(1, abs=0.02)
    assert (in_sample + holdout) / (actual_calibration + actual_holdout) == pytest.approx(1, abs=0.05)
    # The holdout weeks alone: 1,667 expected (1,653 from the conditional expectations) vs 1,882 actual. The
    # BG/NBD under-forecasts CDNOW's second 39 weeks by ~12%; lifetimes gives the same sums (its
    # conditional_expected_number_of_purchases_up_to_time summed with its own fit: 1653.4087241798866).
    assert holdout / actual_holdout == pytest.approx(0.886, abs=0.01)
    assert conditional == pytest.approx(1653.4087241798866, rel=1e-6)


def test_predicted_value_by_hand() -> None:
    x, t_x, T, m = 2.0, 30.43, 38.86, 22.35
    horizon, steps, rate = 39.0, 3, 0.05
    order_value = (6.25 * 15.44 + 6.25 * x * m) / (6.25 * x + 3.74 - 1)
    cumulative = [float(conditional_expected_purchases(PAPER, t, x, t_x, T)) for t in (0.0, 13.0, 26.0, 39.0)]
    by_hand = sum((cumulative[i] - cumulative[i - 1]) * order_value / (1 + rate) ** i for i in (1, 2, 3))
    value = predicted_value(PAPER, PAPER_GG, x, t_x, T, m, horizon=horizon, discount_rate=rate, steps=steps)
    assert float(value) == pytest.approx(by_hand, rel=1e-12)


def test_predicted_value_matches_lifetimes_customer_lifetime_value() -> None:
    # lifetimes 0.11.3, published params: GammaGammaFitter.customer_lifetime_value(bgf, x, t_x, T, m, time=12,
    # discount_rate=0.01, freq="W"): 12 monthly periods of 4.345 weeks.
    values = predicted_value(
        PAPER,
        PAPER_GG,
        [2, 1, 0, 7],
        [30.43, 1.71, 0.0, 29.43],
        [38.86, 38.86, 38.86, 35.14],
        [22.35, 11.77, 0.0, 40.0],
        horizon=12 * 4.345,
        discount_rate=0.01,
        steps=12,
    )
    expected = [36.28921112559936, 4.637294659747191, 8.369004358920483, 203.9395138677414]
    assert values == pytest.approx(expected, rel=1e-9)


def test_extreme_histories_stay_finite() -> None:
    x = np.array([0, 0, 0, 1, 300, 300, 300, 10_000, 5])
    t_x = np.array([0, 0, 0, 0, 490, 500, 1, 9_999, 1e-9])
    T = np.array([0, 38.86, 1e6, 0, 500, 500, 500, 10_000, 1e6])
    alive = p_alive(PAPER, x, t_x, T)
    assert np.all((alive >= 0) & (alive <= 1))
    # No purchase to die after: a customer without repeat purchases is alive for sure.
    assert np.all(alive[x == 0] == 1.0)
    assert alive[5] > 0.99 and alive[6] == pytest.approx(0.0, abs=1e-300)
    for horizon in (0.0, 1e-6, 39.0, 1e6):
        expected = conditional_expected_purchases(PAPER, horizon, x, t_x, T)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0), horizon
    assert np.all(np.isfinite(bgnbd_log_likelihood(PAPER, x, t_x, T)))
    assert np.all(np.isfinite(expected_purchases(PAPER, np.array([1e-9, 1e9]))))
    # These few customers have no interior maximum (the likelihood keeps rising as alpha -> 0): the fit says so
    # and still returns finite numbers rather than NaN.
    extreme = fit_bgnbd(x[1:], t_x[1:], T[1:])
    assert all(np.isfinite([extreme.r, extreme.alpha, extreme.a, extreme.b, extreme.log_likelihood]))
    assert not extreme.converged


def test_a_equal_to_one_is_the_limit_not_nan() -> None:
    # a = 1 is a removable 0/0 of eq. 10, and where a fit on customers without repeat purchases leaves a. The limit,
    # with mpmath at 40 digits: 1.1021367860399558.
    at_one = replace(PAPER, a=1.0)
    assert float(conditional_expected_purchases(at_one, 39, 2, 30.43, 38.86)) == pytest.approx(1.10213678604, rel=1e-7)
    no_repeats = fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])
    assert np.all(np.isfinite(conditional_expected_purchases(no_repeats, 39, 0, 0, [10, 20, 30])))


def test_invalid_histories_are_rejected() -> None:
    with pytest.raises(ValueError, match="recency"):
        p_alive(PAPER, 2, 40.0, 38.0)
    with pytest.raises(ValueError, match="frequency"):
        p_alive(PAPER, -1, 0.0, 38.0)
    with pytest.raises(ValueError, match="frequency"):
        p_alive(PAPER, 1.5, 1.0, 38.0)
    with pytest.raises(ValueError, match="finite"):
        fit_bgnbd([1, 2], [1.0, float("nan")], [5.0, 5.0])
    with pytest.raises(ValueError, match="horizon"):
        predicted_value(PAPER, PAPER_GG, 1, 1.0, 2.0, 10.0, horizon=0, discount_rate=0.01, steps=1)
