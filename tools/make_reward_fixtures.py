#!/usr/bin/env python3
"""Write the scikit-learn / SciPy / NumPy reference fixtures for rlxf::reward.

  tests/fixtures/reward/metrics.json
      "metrics": cases of (P(MET), label, threshold, bins) with scikit-learn's
      accuracy_score, precision_score, recall_score, f1_score (zero_division=0),
      roc_auc_score, log_loss, brier_score_loss and calibration_curve(strategy="uniform"),
      plus the per-bin counts and the ECE derived from sklearn's own binning;
      "temperature": logits and labels drawn with a known T, and the T minimising the mean
      NLL found by SciPy's brentq on the derivative (an independent root finder).
  tests/fixtures/reward/losses.json
      class-weighted two-class cross-entropy (weights from sklearn's
      compute_class_weight("balanced")) and Bradley-Terry losses with their gradients,
      written with NumPy formulas (np.logaddexp), no torch.

tests/test_reward_metrics.cpp and tests/test_reward_losses.cpp read them; the C++ tests
never run Python. JSON floats are written by Python's repr, which round-trips exactly.

Needs: pip install -r tools/requirements-sklearn.txt   (see tools/README.md)
Usage: python tools/make_reward_fixtures.py [--out DIR] [--allow-other-versions]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, brier_score_loss, f1_score, log_loss, precision_score,
                             recall_score, roc_auc_score)
from sklearn.utils.class_weight import compute_class_weight

EXPECTED_VERSIONS = {"scikit-learn": "1.9.1", "numpy": "2.4.6", "scipy": "1.17.1"}
SEED = 20261107


def num(x: float) -> float | None:
    """A JSON number, or null for NaN (JSON has no NaN)."""
    x = float(x)
    return None if math.isnan(x) else x


def scores_with_ties(rng: np.random.Generator, n_cont: int, n_grid: int) -> np.ndarray:
    """Continuous scores, scores on a 0.05 grid (ties, values on bin edges such as 0.3 and
    0.7) and the extremes 0, 1 and 0.5, shuffled."""
    cont = rng.beta(2.0, 2.0, n_cont)
    grid = np.round(rng.integers(0, 21, n_grid) * 0.05, 2)
    fixed = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.5, 0.3, 0.7])
    p = np.concatenate([cont, grid, fixed])
    return p[rng.permutation(p.size)]


def labels_for(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Labels from a slightly miscalibrated model: P(MET) = 0.1 + 0.8 p, so p = 0 can be MET
    and p = 1 NOT MET (log_loss's clamping is exercised)."""
    return (rng.random(p.size) < 0.1 + 0.8 * p).astype(np.int64)


def metric_case(name: str, p: np.ndarray, y: np.ndarray, threshold: float, bins: int) -> dict:
    pred = (p >= threshold).astype(np.int64)  # rlxf's rule: MET iff p >= threshold
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc = roc_auc_score(y, p)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    # sklearn's binning (calibration_curve's own lines), for the counts and the ECE
    edges = np.linspace(0.0, 1.0, bins + 1)
    binids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(binids, minlength=bins)
    nonempty = counts > 0
    assert np.allclose(prob_true, (np.bincount(binids, weights=y, minlength=bins) / np.maximum(counts, 1))[nonempty])
    ece = float(np.sum(counts[nonempty] / p.size * np.abs(prob_true - prob_pred)))
    return {
        "name": name,
        "threshold": threshold,
        "bins": bins,
        "p": [float(v) for v in p],
        "label": [int(v) for v in y],
        "expected": {
            "accuracy": num(accuracy_score(y, pred)),
            "precision": num(precision_score(y, pred, labels=[0, 1], pos_label=1, zero_division=0)),
            "recall": num(recall_score(y, pred, labels=[0, 1], pos_label=1, zero_division=0)),
            "f1": num(f1_score(y, pred, labels=[0, 1], pos_label=1, zero_division=0)),
            "roc_auc": num(auc),
            "log_loss": num(log_loss(y, p, labels=[0, 1])),
            "brier": num(brier_score_loss(y, p, pos_label=1)),
            "ece": ece,
            "bin_counts": [int(c) for c in counts],
            "calibration_prob_true": [float(v) for v in prob_true],
            "calibration_prob_pred": [float(v) for v in prob_pred],
        },
    }


def temperature_case(rng: np.random.Generator, n: int, t_true: float) -> dict:
    z = rng.normal(0.0, 3.0, n)
    y = (rng.random(n) < expit(z / t_true)).astype(np.int64)

    def dnll(a: float) -> float:  # d/da mean NLL, a = 1/T
        return float(np.mean((expit(a * z) - y) * z))

    a = brentq(dnll, 1.0 / 20.0, 1.0 / 0.05, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    t = 1.0 / a
    nll = float(np.mean(np.logaddexp(0.0, z / t) - y * z / t))
    return {"t_true": t_true, "logits": [float(v) for v in z], "label": [int(v) for v in y],
            "t_fit": t, "nll_at_fit": nll}


def losses_fixture(rng: np.random.Generator) -> dict:
    B = 9
    logits = rng.normal(0.0, 2.0, (B, 2))
    logits[0] = [30.0, -25.0]  # a confidently wrong or right row, far out
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0])
    w = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    lse = np.logaddexp(logits[:, 0], logits[:, 1])
    nll = lse - logits[np.arange(B), labels]
    wy = w[labels]
    loss = float(np.sum(wy * nll) / np.sum(wy))
    soft = np.exp(logits - lse[:, None])
    onehot = np.eye(2)[labels]
    grad = wy[:, None] * (soft - onehot) / np.sum(wy)
    unweighted = float(np.mean(nll))

    P = 7
    rc = rng.normal(0.0, 1.5, P)
    rr = rng.normal(0.0, 1.5, P)
    rc[0], rr[0] = 1000.0, -1000.0  # d = 2000
    rc[1], rr[1] = -600.0, 400.0    # d = -1000
    m = rng.uniform(0.0, 1.0, P)
    x = rc - rr - m
    bt = float(np.mean(np.logaddexp(0.0, -x)))
    s = expit(-x)
    return {
        "weighted_ce": {
            "B": B, "logits": [float(v) for v in logits.ravel()], "label": [int(v) for v in labels],
            "class_weight": [float(v) for v in w], "loss": loss, "dlogits": [float(v) for v in grad.ravel()],
            "loss_unweighted": unweighted,
        },
        "bradley_terry": {
            "r_chosen": [float(v) for v in rc], "r_rejected": [float(v) for v in rr],
            "margin": [float(v) for v in m], "loss": bt,
            "d_chosen": [float(v) for v in -s / P], "d_rejected": [float(v) for v in s / P],
            "loss_no_margin": float(np.mean(np.logaddexp(0.0, -(rc - rr)))),
            "accuracy": float(np.mean(rc > rr)), "margin_mean": float(np.mean(rc - rr)),
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/reward"))
    ap.add_argument("--allow-other-versions", action="store_true",
                    help="do not insist on the pinned scikit-learn/numpy/scipy versions")
    args = ap.parse_args(argv)
    got = {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__}
    if got != EXPECTED_VERSIONS and not args.allow_other_versions:
        print(f"version mismatch: have {got}, pinned {EXPECTED_VERSIONS} "
              "(install tools/requirements-sklearn.txt or pass --allow-other-versions)", file=sys.stderr)
        return 2

    rng = np.random.default_rng(SEED)
    p = scores_with_ties(rng, 200, 100)
    y = labels_for(rng, p)
    small = np.round(rng.integers(0, 11, 40) * 0.1, 1)  # heavy ties on a 0.1 grid
    y_small = labels_for(rng, small)
    cases = [
        metric_case("mixed-300-t0.5-b10", p, y, 0.5, 10),
        metric_case("mixed-300-t0.3-b7", p, y, 0.3, 7),
        metric_case("grid-40-t0.6-b5", small, y_small, 0.6, 5),
        metric_case("grid-40-t0.6-b10", small, y_small, 0.6, 10),
        metric_case("one-class-met", p[:50], np.ones(50, dtype=np.int64), 0.5, 10),
    ]
    for c in cases:
        e = c["expected"]
        assert sum(e["bin_counts"]) == len(c["p"])
    assert cases[-1]["expected"]["roc_auc"] is None

    meta = {"generator": "tools/make_reward_fixtures.py", "seed": SEED,
            "versions": {k: v for k, v in got.items()}}
    metrics = {"meta": meta, "metrics": cases,
               "temperature": [temperature_case(rng, 4000, 1.7), temperature_case(rng, 300, 0.6)]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics.json": metrics, "losses.json": {"meta": meta, **losses_fixture(rng)}}
    for name, obj in files.items():
        f = out / name
        f.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
        h = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        print(f"  {f}  {f.stat().st_size:>8} B  sha256:{h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
