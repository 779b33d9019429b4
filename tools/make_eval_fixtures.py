#!/usr/bin/env python3
"""Write the SciPy reference fixture for rlxf::eval statistics.

  tests/fixtures/eval/statistics.json
    t_dist        Student t: scipy.stats.t.cdf / t.sf at (t, df), df from 0.5 to 1e9
    betainc       scipy.special.betainc(a, b, x) over small, large and unequal (a, b)
    betainc_exact I_x(a, b) for integer a, b as the exact binomial sum
                  sum_{j=a}^{a+b-1} C(a+b-1, j) x^j (1-x)^(a+b-1-j) in rational arithmetic
                  (fractions.Fraction of the double x), rounded once to double
    t_dist, betainc carry both sides (cdf and sf, value and complement) computed directly
    normal_ppf    scipy.stats.norm.ppf(p), p from 1e-300 to 1 - 1e-12
    welch         samples a, b (rounded to 7 significant digits, 13 for the offset case) and
                  under results.<alternative> (two-sided, greater, less)
                  scipy.stats.ttest_ind(a, b, equal_var=False)'s statistic, df and pvalue:
                  small samples (df ~ 2-5), large (n = 2000, df in the thousands), unequal
                  sizes and variances, a common offset of 1e6, two-sided p near 1e-10 and
                  1e-40, p near 1, one constant sample
    paired        the same with scipy.stats.ttest_rel(a, b) (df = n - 1)
    wilson        the Wilson interval from its formula in NumPy with norm.ppf, for integer
                  and half-integer (ties) success counts

tests/test_eval_statistics.cpp reads the file; the C++ tests never run Python. JSON floats
are written by Python's repr, which round-trips exactly.

Needs: numpy, scipy (the venv of tools/requirements-sklearn.txt; see tools/README.md)
Usage: python tools/make_eval_fixtures.py [--out DIR] [--allow-other-versions]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy
from scipy import optimize, special, stats

EXPECTED_VERSIONS = {"numpy": "2.4.6", "scipy": "1.17.1"}
SEED = 20261115


def F(x) -> list:
    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


# ------------------------------------------------------------------ special functions

def t_dist_cases() -> list:
    out = []
    dfs = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.3, 10.0, 29.7, 100.0, 1e3, 1e4, 1e5, 1e6, 1e9]
    # No t below 1e-3: at t = 1e-8, df = 1 SciPy's t.sf is off by 1.6e-9 (0.4999999952568131
    # against 1/2 - atan(t)/pi = 0.49999999681690116); tests/test_eval_statistics.cpp checks
    # tiny t against the df = 1 and 2 closed forms instead.
    ts = [0.0, 1e-3, 0.1, -0.1, 0.5, 1.0, -1.0, 1.7, 2.5, -2.5, 5.0, -7.0, 10.0, 40.0, -300.0, 1e4]
    for df in dfs:
        for t in ts:
            cdf = float(stats.t.cdf(t, df))
            sf = float(stats.t.sf(t, df))
            if cdf == 0.0 and sf == 0.0:
                continue
            out.append({"t": t, "df": df, "cdf": cdf, "sf": sf})
    return out


def betainc_cases() -> list:
    out = []
    params = [(1.0, 1.0), (0.5, 0.5), (2.0, 3.0), (0.1, 5.0), (5.0, 0.1), (10.0, 10.0),
              (25.0, 0.5), (0.5, 25.0), (100.0, 3.5), (1e3, 1e3), (1e4, 0.5), (5e5, 0.5),
              (1e5, 2e5), (12.5, 40.0), (3e3, 20.0)]
    for a, b in params:
        mode = a / (a + b)
        spread = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        xs = {1e-6, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1 - 1e-6}
        for k in (-6, -3, -1, -0.3, 0, 0.3, 1, 3, 6):
            x = mode + k * spread
            if 0 < x < 1:
                xs.add(x)
        for x in sorted(xs):
            v = float(special.betainc(a, b, x))
            c = float(special.betaincc(a, b, x))
            if v == 0.0 or c == 0.0 or v < 1e-290 or c < 1e-290:
                continue
            out.append({"a": a, "b": b, "x": x, "value": v, "complement": c})
    return out


def betainc_exact_cases() -> list:
    out = []
    for a, b, xs in [(1, 1, [0.25, 0.9]), (3, 4, [0.1, 0.5, 0.77]), (50, 50, [0.3, 0.45, 0.5, 0.6]),
                     (300, 7, [0.9, 0.97, 0.99]), (7, 300, [0.005, 0.02, 0.05]),
                     (1, 200, [0.001, 0.01]), (120, 80, [0.55, 0.6, 0.65])]:
        n = a + b - 1
        for x in xs:
            fx = Fraction(x)
            v = sum(Fraction(math.comb(n, j)) * fx ** j * (1 - fx) ** (n - j) for j in range(a, n + 1))
            out.append({"a": float(a), "b": float(b), "x": x, "value": float(v), "complement": float(1 - v)})
    return out


def normal_ppf_cases() -> list:
    ps = [1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 0.001, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.6, 0.8,
          0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-9, 1 - 1e-12]
    return [{"p": p, "z": float(stats.norm.ppf(p))} for p in ps]


# ------------------------------------------------------------------ t-tests

ALTERNATIVES = ("two-sided", "greater", "less")


def t_test_case(name, a, b, test, digits):
    """Samples rounded to `digits` significant digits (shorter JSON; they are inputs, any
    values do) and the test's statistic, df and p-value for each alternative."""
    a = np.array([float(f"{v:.{digits}g}") for v in a])
    b = np.array([float(f"{v:.{digits}g}") for v in b])
    results = {}
    for alt in ALTERNATIVES:
        r = test(a, b, alternative=alt)
        results[alt] = {"statistic": float(r.statistic), "df": float(r.df), "pvalue": float(r.pvalue)}
    return {"name": name, "a": F(a), "b": F(b), "results": results}


def welch_case(name, a, b, digits=7):
    return t_test_case(name, a, b, lambda x, y, alternative: stats.ttest_ind(
        x, y, equal_var=False, alternative=alternative), digits)


def paired_case(name, a, b, digits=7):
    return t_test_case(name, a, b, lambda x, y, alternative: stats.ttest_rel(
        x, y, alternative=alternative), digits)


def shift_for_p(base_a, base_b, target, test):
    """The shift s for which test(base_a + s, base_b) has the two-sided p-value `target`."""
    f = lambda s: math.log(test(base_a + s, base_b).pvalue) - math.log(target)
    return optimize.brentq(f, 0.0, 100.0, xtol=1e-14)


def welch_cases(rng) -> list:
    out = []
    # Tiny samples: df between 2 and 5.
    a = rng.normal(1.0, 1.0, 3)
    b = rng.normal(0.0, 3.0, 4)
    out.append(welch_case("tiny", a, b))
    a = np.array([0.2, 0.9, 0.4])
    b = np.array([0.1, 0.15, 0.12, 0.2, 0.11])
    out.append(welch_case("tiny-unequal", a, b))
    # Moderate, unequal sizes and variances.
    a = rng.normal(0.3, 1.0, 25)
    b = rng.normal(0.0, 0.4, 60)
    out.append(welch_case("moderate", a, b))
    # Large: df in the thousands; a small true effect.
    a = rng.normal(0.05, 1.0, 2000)
    b = rng.normal(0.0, 1.2, 1800)
    out.append(welch_case("large", a, b))
    # A large common offset (reward-model logits around 1e6).
    a = 1e6 + rng.normal(0.0, 0.1, 30)
    b = 1e6 + rng.normal(0.05, 0.1, 30)
    out.append(welch_case("offset", a, b, digits=13))
    # p near 1e-10 and 1e-40 (two-sided), and the one-sided tails of the first.
    base_a = rng.normal(0.0, 1.0, 40)
    base_b = rng.normal(0.0, 1.5, 35)
    test = lambda x, y: stats.ttest_ind(x, y, equal_var=False)
    s = shift_for_p(base_a, base_b, 1e-10, test)
    out.append(welch_case("p~1e-10", base_a + s, base_b))
    s = shift_for_p(base_a, base_b, 1e-40, test)
    out.append(welch_case("p~1e-40", base_a + s, base_b))
    # p near 1: nearly equal means.
    a = rng.normal(0.0, 1.0, 50)
    b = a[::-1] + rng.normal(0.0, 1e-3, 50)
    out.append(welch_case("p~1", a, b))
    # One constant sample: df = n_other - 1.
    a = np.full(6, 0.5)
    b = rng.normal(0.4, 0.2, 9)
    with warnings.catch_warnings():  # SciPy warns of "catastrophic cancellation" for a
        warnings.simplefilter("ignore", RuntimeWarning)  # constant sample; its variance is 0
        out.append(welch_case("one-constant", a, b))
    return out


def paired_cases(rng) -> list:
    out = []
    a = rng.normal(0.0, 1.0, 3)
    b = a + rng.normal(0.5, 0.3, 3)
    out.append(paired_case("tiny", a, b))
    prompt = rng.normal(0.0, 2.0, 200)  # a shared per-prompt effect
    a = prompt + rng.normal(0.1, 0.5, 200)
    b = prompt + rng.normal(0.0, 0.5, 200)
    out.append(paired_case("prompts", a, b))
    prompt = rng.normal(0.0, 1.0, 2000)
    a = prompt + rng.normal(0.01, 1.0, 2000)
    b = prompt + rng.normal(0.0, 1.0, 2000)
    out.append(paired_case("large", a, b))
    base_a = rng.normal(0.0, 1.0, 30)
    base_b = base_a + rng.normal(0.0, 0.2, 30)
    test = lambda x, y: stats.ttest_rel(x, y)
    s = shift_for_p(base_a, base_b, 1e-10, test)
    out.append(paired_case("p~1e-10", base_a + s, base_b))
    return out


def wilson_cases() -> list:
    out = []
    for k, n, level in [(0, 10, 0.95), (10, 10, 0.95), (7, 10, 0.95), (7.5, 10, 0.95), (1, 1, 0.95),
                        (55, 100, 0.95), (55, 100, 0.9), (55, 100, 0.99), (123.5, 400, 0.95),
                        (3999, 4000, 0.95)]:
        z = float(stats.norm.ppf(0.5 + level / 2))
        p = k / n
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        out.append({"successes": float(k), "n": n, "level": level, "estimate": p,
                    "lower": max(0.0, center - half), "upper": min(1.0, center + half)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/eval")
    ap.add_argument("--allow-other-versions", action="store_true")
    args = ap.parse_args(argv)
    got = {"numpy": np.__version__, "scipy": scipy.__version__}
    if got != EXPECTED_VERSIONS and not args.allow_other_versions:
        print(f"version mismatch: have {got}, pinned {EXPECTED_VERSIONS} "
              "(install tools/requirements-sklearn.txt or pass --allow-other-versions)", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    meta = {"generator": "tools/make_eval_fixtures.py", "seed": SEED, "versions": got}
    obj = {"meta": meta, "t_dist": t_dist_cases(), "betainc": betainc_cases(),
           "betainc_exact": betainc_exact_cases(), "normal_ppf": normal_ppf_cases(),
           "welch": welch_cases(rng), "paired": paired_cases(rng), "wilson": wilson_cases()}
    args.out.mkdir(parents=True, exist_ok=True)
    f = args.out / "statistics.json"
    f.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    h = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
    print(f"  {f}  {f.stat().st_size:>8} B  sha256:{h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
