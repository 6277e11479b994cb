"""Benchmark: customer_api.analytics.clv.fit_bgnbd against lifetimes' BetaGeoFitter on the CDNOW master file.

Run from the repository root:

    .venv/bin/python bench/clv_fit_bench.py [--repeats 7]

Needs `pip install -r bench/requirements.txt` (lifetimes 0.11.3 and what it imports). The data is the CDNOW
master file (23,570 customers who first bought in Q1 1997, purchases to 1998-06-30), read from the lifetimes
0.11.3 wheel, which is fetched once with `pip download` into ~/.cache/crm-bench/ (override: CRM_BENCH_CACHE).

The summary is the one of FHL (2005) for the CDNOW sample, applied to the master: purchases on the same day are
one purchase; calibration 1997-01-01 .. 1997-09-30; x = purchase days - 1, t_x and T in weeks from the first
purchase day, T to 1997-09-30. Both fitters get the same per-customer arrays; lifetimes' fit() also computes its
Hessian (standard errors), ours does not, and ours collapses identical (x, t_x, T) rows, so a third, informative
column gives lifetimes those same collapsed rows through its `weights` argument. Runs alternate between the
fitters, after one untimed warm-up of each; the figures are medians of wall time.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from customer_api.analytics.clv import BGNBDParams, fit_bgnbd

LIFETIMES = "lifetimes==0.11.3"
WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
MASTER = "lifetimes/datasets/CDNOW_master.txt"
CALIBRATION_START = np.datetime64("1997-01-01")
CALIBRATION_END = np.datetime64("1997-09-30")  # last calibration day; T is measured to it
PUBLISHED_CUSTOMERS = 23_570

FloatArray = npt.NDArray[np.float64]


def cache_dir() -> Path:
    path = Path(os.environ.get("CRM_BENCH_CACHE", Path.home() / ".cache" / "crm-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def master_text() -> str:
    wheel = cache_dir() / WHEEL
    if not wheel.exists():
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", LIFETIMES, "-d", str(wheel.parent)]
        print("fetching the data:", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(MASTER).decode("ascii")


def yyyymmdd_to_days(dates: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Days since 1997-01-01 for integer dates like 19970101, without a per-row Python loop."""
    months = ((dates // 10_000 - 1970) * 12 + dates // 100 % 100 - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (dates % 100 - 1).astype("timedelta64[D]")
    return np.asarray((days - CALIBRATION_START).astype(np.int64), dtype=np.int64)


def bgnbd_summary(text: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(x, t_x, T) in weeks per customer from 'customer date cds dollars' lines (the first line is a header)."""
    table = np.loadtxt(text.splitlines()[1:], dtype=np.int64, usecols=(0, 1))
    customer, day = table[:, 0], yyyymmdd_to_days(table[:, 1])
    end = int((CALIBRATION_END - CALIBRATION_START).astype(np.int64))
    keep = day <= end
    # Same-day purchases are one purchase: distinct (customer, day) pairs, sorted by customer then day.
    pairs = np.unique(np.stack([customer[keep], day[keep]], axis=1), axis=0)
    _, first_index, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    first = pairs[first_index, 1]
    last = pairs[first_index + counts - 1, 1]
    x = (counts - 1).astype(np.float64)
    return x, (last - first) / 7.0, (end - first) / 7.0


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Time fit_bgnbd against lifetimes on the CDNOW master.")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each fitter (default 7)")
    args = parser.parse_args()
    try:
        import lifetimes  # type: ignore[import-untyped]
    except ImportError:
        sys.exit("lifetimes is not installed: .venv/bin/python -m pip install -r bench/requirements.txt")
    x, t_x, age = bgnbd_summary(master_text())
    if x.size != PUBLISHED_CUSTOMERS:
        sys.exit(f"expected {PUBLISHED_CUSTOMERS} customers in the CDNOW master, got {x.size}")
    rows, weights = np.unique(np.stack([x, t_x, age], axis=1), axis=0, return_counts=True)

    def ours() -> BGNBDParams:
        return fit_bgnbd(x, t_x, age)

    def theirs() -> object:
        return lifetimes.BetaGeoFitter().fit(x, t_x, age)

    def theirs_weighted() -> object:
        return lifetimes.BetaGeoFitter().fit(rows[:, 0], rows[:, 1], rows[:, 2], weights=weights)

    contestants = {"ours": ours, "lifetimes": theirs, "lifetimes, collapsed rows": theirs_weighted}
    with warnings.catch_warnings():
        # lifetimes 0.11.3 on current pandas/autograd emits deprecation noise that says nothing about the fit.
        warnings.simplefilter("ignore")
        mine = ours()
        reference = theirs()
        reference_weighted = theirs_weighted()
        times: dict[str, list[float]] = {name: [] for name in contestants}
        for _ in range(args.repeats):
            for name, function in contestants.items():
                times[name].append(timed(function))

    their_params = reference.params_  # type: ignore[attr-defined]
    weighted_params = reference_weighted.params_  # type: ignore[attr-defined]
    names = ("r", "alpha", "a", "b")
    print(
        f"CDNOW master: {x.size} customers, {len(weights)} distinct (x, t_x, T) rows, {int(x.sum())} repeat purchases"
    )
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("numpy", "scipy", "pandas", "autograd", "lifetimes")
    )
    print(f"python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs, {args.repeats} timed runs each\n")
    print("| fitter | median s | min s | r | alpha | a | b |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, params in (
        ("ours", [getattr(mine, n) for n in names]),
        ("lifetimes", [float(their_params[n]) for n in names]),
        ("lifetimes, collapsed rows", [float(weighted_params[n]) for n in names]),
    ):
        cells = " | ".join(f"{value:.4f}" for value in params)
        print(f"| {name} | {statistics.median(times[name]):.4f} | {min(times[name]):.4f} | {cells} |")
    ratio = statistics.median(times["lifetimes"]) / statistics.median(times["ours"])
    ratio_weighted = statistics.median(times["lifetimes, collapsed rows"]) / statistics.median(times["ours"])
    print(
        f"\nspeed-up (median lifetimes / median ours): {ratio:.1f}x; against lifetimes on collapsed rows: "
        f"{ratio_weighted:.1f}x; target >= 2x: {'met' if ratio >= 2 else 'MISSED'}"
    )
    print(f"ours: log-likelihood {mine.log_likelihood:.2f} (weeks), converged {mine.converged}")

    disagreements = [
        f"{n}: ours {getattr(mine, n):.6f} vs lifetimes {float(their_params[n]):.6f}"
        for n in names
        if abs(getattr(mine, n) - float(their_params[n])) >= 5e-4
    ]
    if disagreements:
        sys.exit("estimates disagree at 3 decimals: " + "; ".join(disagreements))
    print("estimates agree to 3 decimals")


if __name__ == "__main__":
    main()
