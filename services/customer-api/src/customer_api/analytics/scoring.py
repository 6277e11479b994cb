"""Pure rules of customer value over arrays, one entry per customer: purchase summaries, RFM scores
and segments, value-pyramid tiers, churn assessment. No database here, so each rule is testable alone.

Definitions (all counted in whole days of the business time zone, up to the observation date):
- a purchase day is a day with at least one order; frequency counts purchase days, as the models assume;
- recency = days from the last purchase day to the observation day;
- RFM frequency and monetary value count the purchase days and spend inside the RFM window;
- quintile score = 1 + floor(5 · (customers strictly worse) / customers), so equal customers score
  equally and the best fifth scores 5;
- tier: customers ranked by spend in the tier window; with `better` the customers spending strictly
  more, a customer is gold if better < 5 % of the base, silver if < 20 %, bronze if < 50 % (the
  configured shares, cumulated), else regular; customers who spent nothing are regular.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PurchaseSummary:
    """Per customer (index 0..n-1): purchase-day facts. Customers without purchases have days == 0.

    Spend is in whole cents, so that equal spends compare equal (in yuan as floats, 0.10 + 0.20 > 0.30 and a
    tie would be ranked)."""

    days: IntArray  # distinct purchase days, all time
    first_day: IntArray  # day number of the first purchase (undefined where days == 0)
    last_day: IntArray
    total_spend: IntArray
    first_day_spend: IntArray
    window_days: IntArray  # purchase days inside the RFM window
    window_spend: IntArray
    tier_spend: IntArray  # spend inside the tier window


def _sums(customer_index: IntArray, values: IntArray, customers: int) -> IntArray:
    """Per customer sums of whole numbers. bincount adds in float64, which is exact below 2**53 (cents: 90
    trillion yuan a customer)."""
    return np.bincount(customer_index, weights=values, minlength=customers).astype(np.int64)


def summarize(
    customers: int,
    customer_index: IntArray,
    day: IntArray,
    spend: IntArray,
    *,
    as_of_day: int,
    rfm_window_days: int,
    tier_window_days: int,
) -> PurchaseSummary:
    """Summarise purchase days given one entry per (customer, day) with that day's spend in cents."""
    order = np.lexsort((day, customer_index))
    customer_index, day, spend = customer_index[order], day[order], spend[order]
    days = np.bincount(customer_index, minlength=customers).astype(np.int64)
    has = days > 0
    first_pos = np.zeros(customers, dtype=np.int64)
    first_pos[has] = np.searchsorted(customer_index, np.flatnonzero(has), side="left")
    last_pos = first_pos + np.maximum(days, 1) - 1
    first_day = np.where(has, day[first_pos] if day.size else 0, 0).astype(np.int64)
    last_day = np.where(has, day[last_pos] if day.size else 0, 0).astype(np.int64)
    in_rfm = day > as_of_day - rfm_window_days
    in_tier = day > as_of_day - tier_window_days
    return PurchaseSummary(
        days=days,
        first_day=first_day,
        last_day=last_day,
        total_spend=_sums(customer_index, spend, customers),
        first_day_spend=np.where(has, spend[first_pos] if spend.size else 0, 0).astype(np.int64),
        window_days=np.bincount(customer_index, weights=in_rfm, minlength=customers).astype(np.int64),
        window_spend=_sums(customer_index, spend * in_rfm, customers),
        tier_spend=_sums(customer_index, spend * in_tier, customers),
    )


def quintile_scores(values: FloatArray | IntArray, *, higher_is_better: bool = True) -> IntArray:
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    keyed = values if higher_is_better else -values
    worse = np.searchsorted(np.sort(keyed), keyed, side="left")
    return (1 + (5 * worse) // values.size).astype(np.int64)


def segments(r_scores: IntArray, f_scores: IntArray, grid: Sequence[Sequence[str]]) -> list[str]:
    """Name each customer's segment from the R×F grid (rows R = 1..5, columns F = 1..5)."""
    table = np.array(grid, dtype=object)
    return [str(name) for name in table[r_scores - 1, f_scores - 1]]


def tiers(spend: FloatArray | IntArray, shares: Mapping[str, float]) -> list[str]:
    """The value pyramid: tiers from the top by cumulated share of the base; no spend means regular."""
    n = spend.size
    if n == 0:
        return []
    better = n - np.searchsorted(np.sort(spend), spend, side="right")
    result = np.full(n, "regular", dtype=object)
    cumulated = 0.0
    assigned = np.zeros(n, dtype=bool)
    for tier, share in shares.items():
        cumulated += share
        hit = ~assigned & (better < cumulated * n) & (spend > 0)
        result[hit] = tier
        assigned |= hit
    return [str(t) for t in result]


@dataclass(frozen=True)
class ChurnRules:
    p_alive_below: float
    p_alive_drop: float
    overdue_factor: float
    top_value_share: float


@dataclass(frozen=True)
class ChurnAssessment:
    at_risk: NDArray[np.bool_]
    value_at_risk: FloatArray
    reasons: list[list[dict[str, Any]]]


def _top_share(values: FloatArray, share: float) -> NDArray[np.bool_]:
    better = values.size - np.searchsorted(np.sort(values), values, side="right")
    return (better < share * values.size) & (values > 0)


def assess_churn(
    *,
    rules: ChurnRules,
    trailing_spend: FloatArray,
    predicted_value: FloatArray,
    p_alive: FloatArray,
    p_alive_previous: FloatArray,
    recency_days: FloatArray,
    typical_interval_days: FloatArray,
) -> ChurnAssessment:
    """Customers worth saving who are slipping away, and why.

    Worth saving: within the top share by trailing spend or by predicted value. Slipping: P(alive)
    below the threshold, P(alive) fallen by the configured drop since the last refresh, or silent for
    more than `overdue_factor` times their own typical gap between purchase days (customers with at
    least two gaps). Value at risk = (1 − P(alive)) × the larger of trailing spend and predicted value.
    NaN inputs (no model, no previous refresh, too few purchases) never trigger a rule.
    """
    worth = _top_share(trailing_spend, rules.top_value_share) | _top_share(
        np.nan_to_num(predicted_value), rules.top_value_share
    )
    with np.errstate(invalid="ignore"):
        low = p_alive < rules.p_alive_below
        falling = (p_alive_previous - p_alive) >= rules.p_alive_drop
        overdue = recency_days > rules.overdue_factor * typical_interval_days
    at_risk = worth & (low | falling | overdue)
    stake = np.maximum(trailing_spend, np.nan_to_num(predicted_value))
    value_at_risk = np.where(at_risk, (1 - np.nan_to_num(p_alive, nan=0.0)) * stake, 0.0)
    reasons: list[list[dict[str, Any]]] = []
    for i in range(at_risk.size):
        found: list[dict[str, Any]] = []
        if at_risk[i]:
            if low[i]:
                found.append({"code": "p_alive_low", "detail": f"P(alive) {p_alive[i]:.2f} < {rules.p_alive_below}"})
            if falling[i]:
                found.append(
                    {
                        "code": "p_alive_falling",
                        "detail": f"P(alive) fell from {p_alive_previous[i]:.2f} to {p_alive[i]:.2f}",
                    }
                )
            if overdue[i]:
                found.append(
                    {
                        "code": "overdue",
                        "detail": f"no purchase for {recency_days[i]:.0f} days; "
                        f"usually every {typical_interval_days[i]:.0f}",
                    }
                )
        reasons.append(found)
    return ChurnAssessment(at_risk=at_risk, value_at_risk=value_at_risk, reasons=reasons)
