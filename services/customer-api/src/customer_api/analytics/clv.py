"""Customer lifetime value: the BG/NBD purchase model, P(alive) and the Gamma-Gamma spend model.

BG/NBD -- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
Model", Marketing Science 24(2), 275-284. While alive a customer buys as a Poisson process with rate
lambda ~ Gamma(r, alpha); after every purchase they drop out for good with probability p ~ Beta(a, b). A customer
is summarised by x (repeat purchases: purchases after the first), t_x (time of the last purchase) and T (age:
time from the first purchase to the end of observation), both times measured from the first purchase. The
likelihood is section 7 of the paper, E[X(t)] its eq. 9, E[Y(t) | x, t_x, T] its eq. 10, and P(alive) Fader,
Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model" (brucehardie.com note 021).

Gamma-Gamma -- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (brucehardie.com note 025),
after Colombo & Jiang (1999): a customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, v), so the
mean value m of their x repeat transactions has a closed-form marginal density and E[M | x, m] is a credibility
weighting of m and the population mean p*v/(q - 1). It assumes spend is independent of the purchase process.

Units: times (t_x, T, t, horizon) are in whatever unit the caller picks -- days, weeks -- and alpha carries that
unit, so fit and predict in the same one; the published CDNOW figures are in weeks. Money is in the caller's
currency unit, and v carries it.

Both models are fitted by maximum likelihood: the mean negative log-likelihood is minimised over the
log-parameters with BFGS and an analytic gradient, on rows collapsed to distinct (x, t_x, T) -- or (x, m) --
weighted by their counts, and on times (money) divided by a data scale so that the optimiser starts near 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import optimize, special  # type: ignore[import-untyped]  # scipy ships no type information

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

# Stopping rule on the gradient of the MEAN negative log-likelihood in log-parameters. 1e-8 leaves the estimates
# within ~1e-7 of the optimum (far inside the 3 decimals published); 1e-9 and below mostly buys BFGS line searches
# that stall on float64 round-off ("precision loss") at 20,000+ distinct rows, doubling the work for nothing.
_GTOL = 1e-8
# BFGS can stop on "precision loss" at the optimum itself; a fit whose gradient is this small still counts.
_CONVERGED_GRADIENT = 1e-6
_MAX_ITERATIONS = 500
# Box for the log-parameters of the fallback fit, on data scaled to about 1. Data without an interior optimum (no
# sign of dropout, say) push a and b towards infinity along a nearly flat ridge of the likelihood; past e^6 ~ 400
# the fit gains nothing measurable while hyp2f1 in E[Y(t)] overflows, so the box stops there.
_LOG_BOUND = 6.0
# E[X(t)] has a removable singularity at a = 1 (0/0). Within _A_NEAR_ONE of it the formula loses digits, so it is
# interpolated between a = 1 -+ _A_STEP, where it is accurate; a fit on customers without any repeat purchase
# leaves a at its starting value 1 exactly, so this case does occur.
_A_NEAR_ONE = 1e-6
_A_STEP = 1e-4


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD estimates; alpha is in the caller's time unit, log_likelihood is the total over all customers."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma estimates; v is in the caller's currency unit. Fitted on repeat customers only."""

    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    converged: bool


# ---------------------------------------------------------------------------------------------------------------
# Input handling


def _float_array(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _customers(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated, broadcast (x, t_x, T). t_x is ignored (set to 0) where x == 0: there is no last repeat purchase."""
    x = _float_array(frequency, "frequency")
    t_x = _float_array(recency, "recency")
    age = _float_array(T, "T")
    try:
        x, t_x, age = np.broadcast_arrays(x, t_x, age)
    except ValueError as exc:
        raise ValueError("frequency, recency and T must have the same shape") from exc
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    t_x = np.where(x > 0, t_x, 0.0)
    if np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("recency must satisfy 0 <= recency <= T")
    return x, t_x, age


def _collapse(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """Distinct rows of the given columns and how many customers share each: the likelihood is a weighted sum.

    lexsort plus a run-length pass rather than np.unique(axis=0), whose row sort costs more than the whole fit.
    """
    flat = [column.ravel() for column in columns]
    order = np.lexsort(flat[::-1])
    ordered = [column[order] for column in flat]
    repeats_previous = np.ones(order.size, dtype=bool)
    repeats_previous[:1] = False
    for column in ordered:
        repeats_previous[1:] &= column[1:] == column[:-1]
    first = np.flatnonzero(~repeats_previous)
    counts = np.diff(np.append(first, order.size)).astype(np.float64)
    return [column[first] for column in ordered], counts


def _by_value(x: FloatArray) -> tuple[FloatArray, IndexArray]:
    """Distinct values of x and each element's position among them.

    The special functions of x alone (gammaln, betaln, digamma) are then evaluated once per distinct purchase
    count -- a few dozen values -- instead of once per row, which is most of the cost of an evaluation.
    """
    values, index = np.unique(x, return_inverse=True)
    return values, index.reshape(x.shape)


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]], start: FloatArray
) -> tuple[FloatArray, bool]:
    """Minimise over log-parameters; (solution, converged). converged is False when the data has no interior MLE.

    Unconstrained BFGS is the fast path. Data whose likelihood keeps rising towards a boundary (say alpha -> 0 for a
    handful of odd customers) drives it to overflow; those fits are redone inside a box of +-_LOG_BOUND with
    L-BFGS-B, which is slower per step, and a solution on the box is reported as not converged.
    """
    # Extreme trial points overflow on the way; the checks below judge the outcome, so the noise is muted.
    with np.errstate(all="ignore"):
        result = optimize.minimize(
            objective, start, jac=True, method="BFGS", options={"gtol": _GTOL, "maxiter": _MAX_ITERATIONS}
        )
        solution = np.asarray(result.x, dtype=np.float64)
        value, gradient = objective(solution)
        if not (np.all(np.abs(solution) < _LOG_BOUND) and np.isfinite(value) and np.all(np.isfinite(gradient))):
            result = optimize.minimize(
                objective,
                np.clip(start, -_LOG_BOUND, _LOG_BOUND),
                jac=True,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * start.size,
                options={"gtol": _GTOL, "ftol": 1e-15, "maxiter": _MAX_ITERATIONS},
            )
            solution = np.asarray(result.x, dtype=np.float64)
            value, gradient = objective(solution)
    interior = bool(np.all(np.abs(solution) < _LOG_BOUND * (1 - 1e-9)))
    finite = bool(np.isfinite(value) and np.all(np.isfinite(gradient)))
    small_gradient = finite and float(np.max(np.abs(gradient))) <= _CONVERGED_GRADIENT
    return solution, interior and finite and (bool(result.success) or small_gradient)


# ---------------------------------------------------------------------------------------------------------------
# BG/NBD


def _log_dead_odds(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """log of P(died right after the last purchase) / P(alive at T), given the history; -inf where x == 0.

    (r + x) * log((alpha + T) / (alpha + t_x)) is written with log1p so a customer whose last purchase is close to T
    keeps full precision, and it stays finite for any x and T where the plain ratio to the power r + x overflows.
    """
    has_repeat = x > 0
    # max(x, 1) keeps log(b + x - 1) finite for x == 0 rows, whose value is then discarded.
    log_odds = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * np.log1p((T - t_x) / (alpha + t_x))
    return np.where(has_repeat, log_odds, -np.inf)


def _bgnbd_terms(
    log_params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    gradient: bool,
    by_x: tuple[FloatArray, IndexArray] | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """Per-row log-likelihood and (optionally) its gradient in (log r, log alpha, log a, log b), shape (4, rows).

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / G(r) * [(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)];
    the bracket is summed in log space (logaddexp) so neither power underflows for large x or T.
    by_x is _by_value(x), passed in by a fit that evaluates the same rows many times.
    """
    r, alpha, a, b = np.exp(log_params)
    values, row = _by_value(x) if by_x is None else by_x
    per_value = special.gammaln(r + values) - special.gammaln(r) + special.betaln(a, b + values) - special.betaln(a, b)
    log_alive_term = -(r + x) * np.log(alpha + T)
    log_dead_odds = _log_dead_odds(r, alpha, a, b, x, t_x, T)
    # log(1 + e^d) = logaddexp(0, d): the log of the bracket relative to its "alive" term.
    log_bracket = np.logaddexp(0.0, log_dead_odds)
    ll = np.asarray(per_value[row] + r * np.log(alpha) + log_alive_term + log_bracket, dtype=np.float64)
    if not gradient:
        return ll, None
    # Posterior weights of the two bracket terms: P(alive) and 1 - P(alive).
    w_alive = np.exp(-log_bracket)
    w_dead = np.exp(log_dead_odds - log_bracket)
    digamma_ab = (special.digamma(a + b) - special.digamma(a + b + values))[row]
    d_r = (special.digamma(r + values) - special.digamma(r))[row] + np.log(alpha)
    d_r = d_r - w_alive * np.log(alpha + T) - w_dead * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))
    d_a = digamma_ab + w_dead / a
    d_b = digamma_ab + (special.digamma(b + values) - special.digamma(b))[row]
    d_b = d_b - w_dead / (b + np.maximum(x, 1.0) - 1.0)
    jacobian = np.stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
    return ll, np.asarray(jacobian, dtype=np.float64)


def fit_bgnbd(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    initial: BGNBDParams | None = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit. x = repeat purchases, t_x = time of the last one, T = age, one time unit."""
    x, t_x, age = _customers(frequency, recency, T)
    if x.size == 0:
        raise ValueError("no customers to fit")
    if not np.any(age > 0):
        raise ValueError("every customer has age T == 0: nothing has been observed yet")
    (rx, rt_x, rT), weights = _collapse(x, t_x, age)
    by_x = _by_value(rx)
    total = float(weights.sum())
    # Times divided by their mean put alpha near 1 whatever unit the caller uses, which BFGS's identity start needs.
    scale = float(np.mean(age))
    st_x, sT = rt_x / scale, rT / scale

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        ll, jacobian = _bgnbd_terms(log_params, rx, st_x, sT, gradient=True, by_x=by_x)
        assert jacobian is not None
        return -float(weights @ ll) / total, -(jacobian @ weights) / total

    start = np.zeros(4) if initial is None else np.log([initial.r, initial.alpha / scale, initial.a, initial.b])
    solution, converged = _minimise(objective, start)
    r, alpha_scaled, a, b = (float(v) for v in np.exp(solution))
    alpha = alpha_scaled * scale
    # Reported in the caller's unit: the scaled likelihood differs by the Jacobian of the time change.
    ll_rows, _ = _bgnbd_terms(np.log([r, alpha, a, b]), rx, rt_x, rT, gradient=False, by_x=by_x)
    return BGNBDParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=float(weights @ ll_rows),
        customers=int(total),
        converged=converged and bool(np.isfinite(ll_rows).all()),
    )


def bgnbd_log_likelihood(
    params: BGNBDParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Each customer's BG/NBD log-likelihood (FHL 2005 section 7) under params, in the caller's time unit."""
    x, t_x, age = _customers(frequency, recency, T)
    log_params = np.log([params.r, params.alpha, params.a, params.b])
    return _bgnbd_terms(log_params, x, t_x, age, gradient=False)[0]


def p_alive(params: BGNBDParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)); exactly 1 for x == 0."""
    x, t_x, age = _customers(frequency, recency, T)
    log_odds = _log_dead_odds(params.r, params.alpha, params.a, params.b, x, t_x, age)
    return np.asarray(np.exp(-np.logaddexp(0.0, log_odds)), dtype=np.float64)


def _expected_bracket(params: BGNBDParams, t: FloatArray, x: FloatArray | float, T: FloatArray | float) -> FloatArray:
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))].

    Through Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) the power and the function
    combine into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): no huge 2F1 times a tiny power for large x, and the
    series is tame because its second parameter a-1 does not grow with x.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_NEAR_ONE:
        below = _expected_bracket(replace(params, a=1.0 - _A_STEP), t, x, T)
        above = _expected_bracket(replace(params, a=1.0 + _A_STEP), t, x, T)
        return np.asarray(below + (a - 1.0 + _A_STEP) / (2 * _A_STEP) * (above - below), dtype=np.float64)
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log_one_minus_z = -np.log1p(t / (alpha + T))
    g = np.exp((a - 1.0) * log_one_minus_z) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    # + 0.0 turns the -0.0 that t == 0 gives when a < 1 into a plain 0.
    return np.asarray(c / (a - 1.0) * (1.0 - g) + 0.0, dtype=np.float64)


def _horizon(t: npt.ArrayLike) -> FloatArray:
    horizon = _float_array(t, "t")
    if np.any(horizon < 0):
        raise ValueError("t must be >= 0")
    return horizon


def conditional_expected_purchases(
    params: BGNBDParams, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next t time units (FHL 2005 eq. 10).

    t broadcasts against the customers, e.g. t of shape (k, 1) with n customers gives a (k, n) table.
    """
    x, t_x, age = _customers(frequency, recency, T)
    horizon = _horizon(t)
    log_dead_odds = _log_dead_odds(params.r, params.alpha, params.a, params.b, x, t_x, age)
    alive = np.exp(-np.logaddexp(0.0, log_dead_odds))
    return np.asarray(alive * _expected_bracket(params, horizon, x, age), dtype=np.float64)


def expected_purchases(params: BGNBDParams, t: npt.ArrayLike) -> FloatArray | float:
    """E[X(t)]: expected repeat purchases of a new customer in their first t time units (FHL 2005 eq. 9)."""
    horizon = _horizon(t)
    expected = _expected_bracket(params, horizon, 0.0, 0.0)
    return float(expected) if expected.ndim == 0 else expected


# ---------------------------------------------------------------------------------------------------------------
# Gamma-Gamma


def _gamma_gamma_terms(
    log_params: FloatArray,
    x: FloatArray,
    m: FloatArray,
    *,
    gradient: bool,
    by_x: tuple[FloatArray, IndexArray] | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """Per-row log density of the mean spend m over x transactions and its gradient in (log p, log q, log v).

    f(m | x) = G(px+q) / (G(px) G(q)) * v^q m^(px-1) x^(px) / (v + m x)^(px+q)   (Fader & Hardie 2013, eq. 1a).
    """
    p, q, v = np.exp(log_params)
    values, row = _by_value(x) if by_x is None else by_x
    p_values = p * values
    per_value = special.gammaln(p_values + q) - special.gammaln(p_values) + p_values * np.log(values)
    px = p * x
    log_m = np.log(m)
    log_total = np.log(v + m * x)
    ll = per_value[row] - special.gammaln(q) + q * np.log(v) + (px - 1.0) * log_m - (px + q) * log_total
    ll = np.asarray(ll, dtype=np.float64)
    if not gradient:
        return ll, None
    digamma_sum = special.digamma(p_values + q)
    d_p = x * ((digamma_sum - special.digamma(p_values) + np.log(values))[row] + log_m - log_total)
    d_q = (digamma_sum - special.digamma(q))[row] + np.log(v) - log_total
    d_v = q / v - (px + q) / (v + m * x)
    return ll, np.asarray(np.stack([p * d_p, q * d_q, v * d_v]), dtype=np.float64)


def fit_gamma_gamma(
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    initial: GammaGammaParams | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on the customers with frequency > 0 (others are skipped).

    monetary_value is each customer's mean spend per REPEAT transaction (the first purchase left out), > 0.
    """
    x_all = _float_array(frequency, "frequency")
    m_all = _float_array(monetary_value, "monetary_value")
    try:
        x_all, m_all = np.broadcast_arrays(x_all, m_all)
    except ValueError as exc:
        raise ValueError("frequency and monetary_value must have the same shape") from exc
    if np.any(x_all < 0) or np.any(x_all != np.floor(x_all)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    repeat = x_all > 0
    if not np.any(repeat):
        raise ValueError("Gamma-Gamma needs customers with repeat purchases (frequency > 0); there are none")
    x, m = x_all[repeat], m_all[repeat]
    if np.any(m <= 0):
        raise ValueError("monetary_value must be > 0 for customers with repeat purchases")
    (rx, rm), weights = _collapse(x, m)
    by_x = _by_value(rx)
    total = float(weights.sum())
    # Spend divided by its mean puts v near 1 in any currency, keeping BFGS's identity start reasonable.
    scale = float(np.mean(m))
    sm = rm / scale

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        ll, jacobian = _gamma_gamma_terms(log_params, rx, sm, gradient=True, by_x=by_x)
        assert jacobian is not None
        return -float(weights @ ll) / total, -(jacobian @ weights) / total

    start = np.zeros(3) if initial is None else np.log([initial.p, initial.q, initial.v / scale])
    solution, converged = _minimise(objective, start)
    p, q, v_scaled = (float(value) for value in np.exp(solution))
    v = v_scaled * scale
    ll_rows, _ = _gamma_gamma_terms(np.log([p, q, v]), rx, rm, gradient=False, by_x=by_x)
    return GammaGammaParams(
        p=p,
        q=q,
        v=v,
        log_likelihood=float(weights @ ll_rows),
        customers=int(total),
        converged=converged and bool(np.isfinite(ll_rows).all()),
    )


def expected_average_order_value(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """E[M | x, m] = (p v + p x m) / (p x + q - 1) (Fader & Hardie 2013, eq. 5).

    A weighting of the customer's own mean m and the population mean p v / (q - 1), which is what x == 0 customers
    get (their monetary_value is ignored). NaN where p x + q - 1 <= 0: with q <= 1 the population mean is infinite.
    """
    x = _float_array(frequency, "frequency")
    m = np.asarray(monetary_value, dtype=np.float64)
    x, m = np.broadcast_arrays(x, m)
    if np.any(x < 0):
        raise ValueError("frequency must be >= 0")
    own = np.where(x > 0, m, 0.0)
    if not np.all(np.isfinite(own)):
        raise ValueError("monetary_value must be finite for customers with repeat purchases")
    p, q, v = params.p, params.q, params.v
    denominator = p * x + q - 1.0
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.asarray(np.where(denominator > 0, (p * v + p * x * own) / safe, np.nan), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Value


def predicted_value(
    bg: BGNBDParams,
    gg: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon: float,
    discount_rate: float,
    steps: int,
) -> FloatArray:
    """Discounted expected spend over the next `horizon` time units, cut into `steps` equal periods.

    sum over i = 1..steps of (E[Y(t_i)] - E[Y(t_(i-1))]) * E[M | x, m] / (1 + discount_rate)^i, t_i = horizon*i/steps,
    and discount_rate is per period. The same sum as lifetimes' GammaGammaFitter.customer_lifetime_value, whose `time`
    months at `freq` units per month is horizon = time * units_per_month with steps = time.
    """
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError("horizon must be > 0")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if not (np.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError("discount_rate must be > -1")
    x, t_x, age = _customers(frequency, recency, T)
    order_value = expected_average_order_value(gg, x, monetary_value)
    cut_points = horizon * np.arange(steps + 1, dtype=np.float64) / steps
    cumulative = conditional_expected_purchases(bg, cut_points.reshape((-1,) + (1,) * x.ndim), x, t_x, age)
    per_period = np.diff(cumulative, axis=0)
    discount = (1.0 + discount_rate) ** -np.arange(1, steps + 1, dtype=np.float64)
    return np.asarray(np.tensordot(discount, per_period, axes=1) * order_value, dtype=np.float64)
