#!/usr/bin/env python3
"""Write the NumPy reference fixtures for rlxf::algo (RL algorithm math).

  tests/fixtures/algo/kl.json          per-token k1/k2/k3 (clamped or not) and their
                                       derivatives, objective/kl, adaptive KL controller steps
  tests/fixtures/algo/advantages.json  PPO token rewards, GAE (advantages and returns),
                                       discounted returns, masked whitening, running moments,
                                       GRPO group advantages, RLOO baselines and rewards
  tests/fixtures/algo/losses.json      PPO clipped surrogate and value loss, entropy, DPO /
                                       cDPO / IPO, GRPO (three aggregations), RLOO: losses,
                                       gradients and logged statistics

The formulas are re-implemented here from /work/shared/ALGORITHMS.md (TRL / OpenRLHF
PyTorch semantics) in vectorised NumPy, written differently from the C++ on purpose:
GAE as an explicit discounted sum of TD errors (a matrix product, not the backward
recursion), the running moments from the concatenation of all batches (not Chan's merge),
group statistics by reshape, losses and gradients by np.where over whole tensors.
tests/test_algo_*.cpp read the files and require agreement to 1e-10 (double). The C++ tests
never run Python. JSON floats are written by Python's repr, which round-trips exactly.

Needs: numpy (the venv of tools/requirements-sklearn.txt; see tools/README.md)
Usage: python tools/make_algo_fixtures.py [--out DIR] [--allow-other-versions]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

EXPECTED_VERSIONS = {"numpy": "2.4.6"}
SEED = 20261108


def L(x) -> list:
    """A JSON list of floats (or ints for integer arrays)."""
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        return [int(v) for v in a.ravel()]
    return [float(v) for v in a.ravel()]


def ragged_mask(rng: np.random.Generator, B: int, T: int, offsets=None) -> np.ndarray:
    """Right-padded masks with random lengths in [1, T] (first row full, one row short);
    offsets[b] shifts a row's first valid token to the right (a prompt region)."""
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    lengths[-1] = min(lengths[-1], 2)
    m = np.zeros((B, T), dtype=np.int64)
    for b in range(B):
        s = 0 if offsets is None else offsets[b]
        n = min(lengths[b], T - s)
        m[b, s:s + n] = 1
    return m


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # a different route from the C++ exp form


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


# --------------------------------------------------------------------------------- KL

def kl_est(lr, kind):
    if kind == "k1":
        return lr.copy()
    if kind == "k2":
        return lr ** 2 / 2.0
    return np.exp(-lr) - 1.0 + lr


def kl_grad(lr, kind):
    if kind == "k1":
        return np.ones_like(lr)
    if kind == "k2":
        return lr.copy()
    return 1.0 - np.exp(-lr)


def kl_fixture(rng):
    B, T = 4, 6
    mask = ragged_mask(rng, B, T)
    logp = rng.normal(-2.0, 1.0, (B, T))
    ref = logp + rng.normal(0.0, 0.5, (B, T))
    ref[0, 1] = logp[0, 1] + 15.0   # lr = -15: k3 = e^15 - 16, clamped to 10
    ref[0, 2] = logp[0, 2] - 12.0   # lr = 12: k1 = 12 -> 10, k2 = 72 -> 10
    ref[1, 0] = logp[1, 0] + 4.5    # lr = -4.5: k1 = -4.5, k2 = 10.125 -> 10
    cases = []
    lr = logp - ref
    for kind in ("k1", "k2", "k3"):
        for clamp in (False, True):
            k = kl_est(lr, kind)
            g = kl_grad(lr, kind)
            if clamp:  # torch.clamp: value clipped, gradient zero outside [-10, 10]
                g = np.where((k < -10) | (k > 10), 0.0, g)
                k = np.clip(k, -10.0, 10.0)
            k = k * mask
            g = g * mask
            cases.append({"estimator": kind, "clamp": clamp, "kl": L(k), "dkl_dlogp": L(g),
                          "mean_sequence_kl": float(k.sum(axis=1).mean())})
    # Ziegler's adaptive controller: a few steps by hand
    beta, target, horizon = 0.2, 6.0, 10000.0
    steps = []
    for kl, n in [(8.0, 64), (2.5, 64), (6.3, 128), (40.0, 256), (0.0, 512)]:
        e = min(max(kl / target - 1.0, -0.2), 0.2)
        beta = beta * (1.0 + e * n / horizon)
        steps.append({"observed_kl": kl, "n": n, "value": beta})
    return {"B": B, "T": T, "mask": L(mask), "logp": L(logp), "ref_logp": L(ref), "cases": cases,
            "adaptive": {"init": 0.2, "target": target, "horizon": horizon, "steps": steps}}


# ------------------------------------------------------------------------- advantages

def gae_reference(r, v, m, gamma, lam):
    """A_t = sum_{l>=0} (gamma lam)^l delta_{t+l} over the valid span, with
    delta_t = r_t + gamma V_{t+1} - V_t and V = 0 past the end: an explicit sum."""
    B, T = r.shape
    adv = np.zeros((B, T))
    for b in range(B):
        idx = np.flatnonzero(m[b])
        if idx.size == 0:
            continue
        rr, vv = r[b, idx], v[b, idx]
        v_next = np.append(vv[1:], 0.0)
        delta = rr + gamma * v_next - vv
        n = idx.size
        k = np.arange(n)
        expo = k[None, :] - k[:, None]  # l = s - t
        W = np.where(expo >= 0, (gamma * lam) ** np.maximum(expo, 0), 0.0)
        adv[b, idx] = W @ delta
    return adv, (adv + v) * m


def discounted_reference(r, m, gamma):
    B, T = r.shape
    out = np.zeros((B, T))
    for b in range(B):
        idx = np.flatnonzero(m[b])
        n = idx.size
        k = np.arange(n)
        expo = k[None, :] - k[:, None]
        W = np.where(expo >= 0, gamma ** np.maximum(expo, 0), 0.0)
        out[b, idx] = W @ r[b, idx]
    return out


def whiten_reference(x, m, shift_mean, unbiased):
    vals = x[m.astype(bool)]
    mean = vals.mean()
    var = vals.var(ddof=1 if unbiased else 0)
    w = (x - mean) / np.sqrt(var + 1e-8)
    if not shift_mean:
        w = w + mean
    return w * m, mean, var


def advantages_fixture(rng):
    B, T = 4, 7
    mask = ragged_mask(rng, B, T, offsets=[0, 0, 1, 0])
    kl = rng.normal(0.05, 0.2, (B, T))
    scores = rng.normal(0.0, 1.0, B)
    beta = 0.05
    # token rewards: -beta kl, score on the last valid token
    last = np.array([np.flatnonzero(mask[b]).max() for b in range(B)])
    rewards = -beta * kl * mask
    rewards[np.arange(B), last] += scores
    seq_kl = (kl * mask).sum(axis=1)
    token_rewards = {"B": B, "T": T, "kl": L(kl), "scores": L(scores), "mask": L(mask), "beta": beta,
                     "rewards": L(rewards), "stat_kl": float(seq_kl.mean()),
                     "non_score_reward": float((-beta * seq_kl).mean()), "stat_scores": float(scores.mean()),
                     "rlhf_reward": float(scores.mean() + (-beta * seq_kl).mean())}
    values = rng.normal(0.0, 1.0, (B, T))
    gae_cases = []
    for gamma, lam in [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.9, 0.0)]:
        adv, ret = gae_reference(rewards, values, mask, gamma, lam)
        gae_cases.append({"gamma": gamma, "lambda": lam, "advantages": L(adv), "returns": L(ret)})
    gae = {"B": B, "T": T, "rewards": L(rewards), "values": L(values), "mask": L(mask), "cases": gae_cases}
    disc = {"gamma": 0.97, "out": L(discounted_reference(rewards, mask, 0.97))}
    x = rng.normal(0.7, 2.0, (B, T))
    wcases = []
    for shift in (True, False):
        for unb in (True, False):
            w, mean, var = whiten_reference(x, mask, shift, unb)
            wcases.append({"shift_mean": shift, "unbiased": unb, "out": L(w), "mean": float(mean),
                           "var": float(var)})
    whiten = {"x": L(x), "mask": L(mask), "cases": wcases}
    batches = [rng.normal(3.0, 2.0, n) for n in (5, 1, 8, 3)]
    seen = np.array([])
    rm = []
    for xs in batches:
        seen = np.concatenate([seen, xs])
        rm.append({"batch": L(xs), "count": int(seen.size), "mean": float(seen.mean()),
                   "var": float(seen.var(ddof=1)) if seen.size > 1 else None,
                   "population_var": float(seen.var(ddof=0))})
    probe = rng.normal(3.0, 2.0, 4)
    last_mean, last_var = seen.mean(), seen.var(ddof=1)
    running = {"steps": rm, "probe": L(probe),
               "normalized": L((probe - last_mean) / np.sqrt(last_var + 1e-8)),
               "scaled": L(probe / np.sqrt(last_var + 1e-8))}
    G = 4
    r = np.round(rng.normal(0.5, 1.0, 3 * G), 3)
    r[G:2 * G] = [1.0, 0.0, 1.0, 1.0]  # a binary group
    grp = r.reshape(-1, G)
    centred = grp - grp.mean(axis=1, keepdims=True)
    grpo = {"G": G, "rewards": L(r),
            "group": L(centred / (grp.std(axis=1, ddof=1, keepdims=True) + 1e-4)),
            "batch": L(centred / (r.std(ddof=1) + 1e-4)),
            "none": L(centred)}
    loo = (grp.sum(axis=1, keepdims=True) - grp) / (G - 1)
    rloo = {"G": G, "rewards": L(r), "advantages": L(grp - loo)}
    seq = {"beta": 0.05, "out": L(scores - 0.05 * (kl * mask).sum(axis=1))}
    return {"token_rewards": token_rewards, "gae": gae, "discounted": disc, "whiten": whiten,
            "running_moments": running, "grpo": grpo, "rloo": rloo, "kl_penalised_sequence_rewards": seq}


# ----------------------------------------------------------------------------- losses

def agg_weights(m, kind, max_len=None):
    B, T = m.shape
    if kind == "token_mean":
        return m / max(m.sum(), 1)
    if kind == "sequence_mean":
        return m / (B * np.maximum(m.sum(axis=1, keepdims=True), 1))
    return m / (B * (max_len or T))


def ppo_policy_reference(new, old, adv, m, eps_low, eps_high, dual, agg, clamp=20.0):
    lr = new - old
    rho = np.exp(np.clip(lr, -clamp, clamp))
    drho = np.where(np.abs(lr) <= clamp, rho, 0.0)
    surr1 = rho * adv
    surr2 = np.clip(rho, 1 - eps_low, 1 + eps_high) * adv
    clip1 = np.minimum(surr1, surr2)
    # gradient of min(surr1, surr2) w.r.t. logp_new: surr1's when it is the smaller one
    gclip1 = np.where(surr2 < surr1, 0.0, adv * drho)
    if dual:
        clip2 = np.maximum(clip1, dual * adv)
        gclip2 = np.where(dual * adv > clip1, 0.0, gclip1)
        obj = np.where(adv < 0, clip2, clip1)
        gobj = np.where(adv < 0, gclip2, gclip1)
        dual_on = (adv < 0) & (dual * adv > clip1)
    else:
        obj, gobj, dual_on = clip1, gclip1, np.zeros_like(m, dtype=bool)
    w = agg_weights(m, agg)
    n = m.sum()
    return {"loss": float((-obj * w).sum()), "dlogp_new": L(-gobj * w),
            "clipfrac": float(((-surr2 > -surr1) * m).sum() / n),
            "dual_clipfrac": float((dual_on * m).sum() / n),
            "approxkl": float(0.5 * (lr ** 2 * m).sum() / n),
            "ratio_mean": float((rho * m).sum() / n)}


def value_reference(v, v_old, ret, m, clip):
    l1 = (v - ret) ** 2
    if clip is None:
        l, g, frac = l1, v - ret, 0.0
    else:
        vc = v_old + np.clip(v - v_old, -clip, clip)
        l2 = (vc - ret) ** 2
        l = np.maximum(l1, l2)
        g = np.where(l2 > l1, 0.0, v - ret)
        frac = float(((l2 > l1) * m).sum() / m.sum())
    n = m.sum()
    return {"loss": float(0.5 * (l * m).sum() / n), "dvalues": L(g * m / n), "clipfrac": frac}


def entropy_reference(z, m):
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))  # small logits: direct logsumexp is exact enough
    H = lse - (p * z).sum(axis=1)
    n = m.sum()
    Ez = (p * z).sum(axis=1, keepdims=True)
    grad = -p * (z - Ez) * m[:, None] / n
    return {"entropy": L(H * m), "mean": float((H * m).sum() / n), "dlogits": L(grad)}


def dpo_reference(pc, pr, rc, rr, beta, ls, kind):
    h = (pc - rc) - (pr - rr)
    P = h.size
    if kind == "sigmoid":
        loss = -(1 - ls) * log_sigmoid(beta * h) - ls * log_sigmoid(-beta * h)
        dh = -(1 - ls) * beta * sigmoid(-beta * h) + ls * beta * sigmoid(beta * h)
    else:
        loss = (h - 1 / (2 * beta)) ** 2
        dh = 2 * (h - 1 / (2 * beta))
    ch, rj = beta * (pc - rc), beta * (pr - rr)
    return {"loss": float(loss.mean()), "d_chosen": L(dh / P), "d_rejected": L(-dh / P),
            "rewards_chosen": float(ch.mean()), "rewards_rejected": float(rj.mean()),
            "rewards_margins": float((ch - rj).mean()), "rewards_accuracies": float((ch > rj).mean()),
            "logps_chosen": float(pc.mean()), "logps_rejected": float(pr.mean())}


def grpo_reference(new, old, ref, adv, m, eps_low, eps_high, beta, agg, max_len=None):
    A = adv[:, None] * np.ones_like(new)
    if old is None:
        rho, drho = np.ones_like(new), np.ones_like(new)
    else:
        lr = new - old
        rho = np.exp(np.clip(lr, -20, 20))
        drho = np.where(np.abs(lr) <= 20, rho, 0.0)
    c1 = rho * A
    c2 = np.clip(rho, 1 - eps_low, 1 + eps_high) * A
    per = -np.minimum(c1, c2)
    g = np.where(c2 < c1, 0.0, -A * drho)
    if ref is not None:
        D = np.exp(ref - new) - (ref - new) - 1
        per = per + beta * D
        g = g + beta * (1 - np.exp(ref - new))
        kl = float((D * m).sum() / m.sum())
    else:
        kl = 0.0
    w = agg_weights(m, agg, max_len)
    low = (rho < 1 - eps_low) & (A < 0)
    high = (rho > 1 + eps_high) & (A > 0)
    n = m.sum()
    return {"loss": float((per * w).sum()), "dlogp_new": L(g * w), "kl": kl,
            "clip_ratio_low": float((low * m).sum() / n), "clip_ratio_high": float((high * m).sum() / n),
            "clip_ratio": float(((low | high) * m).sum() / n)}


def rloo_reference(new, old, adv, m, eps):
    B = new.shape[0]
    s = (new * m).sum(axis=1)
    lr = np.zeros(B) if old is None else s - (old * m).sum(axis=1)
    rho = np.exp(np.clip(lr, -20, 20))
    l1 = -adv * rho
    l2 = -adv * np.clip(rho, 1 - eps, 1 + eps)
    g = np.where(l2 > l1, 0.0, -adv * rho) / B
    return {"loss": float(np.maximum(l1, l2).mean()), "dlogp_new": L(g[:, None] * m),
            "clipfrac": float((l2 > l1).mean()), "approxkl": float(0.5 * (lr ** 2).mean()),
            "ratio_mean": float(rho.mean())}


def losses_fixture(rng):
    B, T = 4, 6
    mask = ragged_mask(rng, B, T)
    new = rng.normal(-1.5, 0.7, (B, T))
    old = new + rng.normal(0.0, 0.35, (B, T))
    old[1, 0] = new[1, 0] - 1.6  # rho ~ 5: above the dual-clip c = 3 if A < 0
    adv = rng.normal(0.0, 1.0, (B, T))
    adv[1, 0] = -abs(adv[1, 0]) - 0.5
    ppo = {"B": B, "T": T, "logp_new": L(new), "logp_old": L(old), "advantages": L(adv), "mask": L(mask),
           "cases": []}
    for name, el, eh, dual, agg in [("default", 0.2, 0.2, 0, "token_mean"),
                                    ("asymmetric", 0.2, 0.28, 0, "token_mean"),
                                    ("dual_clip", 0.2, 0.2, 3.0, "token_mean"),
                                    ("sequence_mean", 0.1, 0.3, 0, "sequence_mean")]:
        c = {"name": name, "eps_low": el, "eps_high": eh, "dual_clip": dual, "aggregation": agg}
        c.update(ppo_policy_reference(new, old, adv, mask, el, eh, dual, agg))
        ppo["cases"].append(c)
    v_old = rng.normal(0.0, 1.0, (B, T))
    d = rng.normal(0.0, 0.3, (B, T))
    d = np.where(np.abs(np.abs(d) - 0.2) < 0.01, 1.1 * d, d)  # keep finite differences off the clip kink
    v = v_old + d
    ret = v_old + rng.normal(0.0, 1.0, (B, T))
    value = {"values": L(v), "values_old": L(v_old), "returns": L(ret), "mask": L(mask),
             "clip_0.2": value_reference(v, v_old, ret, mask, 0.2),
             "unclipped": value_reference(v, v_old, ret, mask, None)}
    N, V = 6, 5
    z = rng.normal(0.0, 2.0, (N, V))
    em = np.array([1, 1, 0, 1, 1, 0])
    entropy = {"N": N, "V": V, "logits": L(z), "mask": L(em), **entropy_reference(z, em)}
    P = 6
    pc = rng.normal(-20.0, 5.0, P)
    pr = rng.normal(-22.0, 5.0, P)
    rc = pc + rng.normal(0.0, 2.0, P)
    rr = pr + rng.normal(0.0, 2.0, P)
    dpo = {"policy_chosen": L(pc), "policy_rejected": L(pr), "ref_chosen": L(rc), "ref_rejected": L(rr),
           "sigmoid": dpo_reference(pc, pr, rc, rr, 0.1, 0.0, "sigmoid"),
           "cdpo": dpo_reference(pc, pr, rc, rr, 0.1, 0.1, "sigmoid"),
           "ipo": dpo_reference(pc, pr, rc, rr, 0.1, 0.0, "ipo"),
           "sigmoid_beta_0.5": dpo_reference(pc, pr, rc, rr, 0.5, 0.0, "sigmoid")}
    # TRL's IPO: every log-prob divided by its sequence's number of response tokens
    nc = rng.integers(3, 30, P).astype(float)
    nr = rng.integers(3, 30, P).astype(float)
    trl_ipo = dpo_reference(pc / nc, pr / nr, rc / nc, rr / nr, 0.1, 0.0, "ipo")
    trl_ipo["d_chosen_sum"] = L(np.array(trl_ipo["d_chosen"]) / nc)
    trl_ipo["d_rejected_sum"] = L(np.array(trl_ipo["d_rejected"]) / nr)
    dpo["ipo_trl_averaged"] = {"chosen_len": L(nc), "rejected_len": L(nr), **trl_ipo}
    G = 2
    gB = 4
    gmask = ragged_mask(rng, gB, T)
    gnew = rng.normal(-1.5, 0.7, (gB, T))
    gold = gnew + rng.normal(0.0, 0.3, (gB, T))
    gref = gnew + rng.normal(0.0, 0.4, (gB, T))
    gadv = np.array([0.9, -0.9, 0.4, -0.4])
    grpo = {"B": gB, "T": T, "G": G, "logp_new": L(gnew), "logp_old": L(gold), "ref_logp": L(gref),
            "advantages": L(gadv), "mask": L(gmask), "cases": []}
    for name, agg, beta, eh, on_policy, max_len in [("dapo_beta0.04", "token_mean", 0.04, 0.2, False, None),
                                                    ("grpo_beta0.04", "sequence_mean", 0.04, 0.2, False, None),
                                                    ("dr_grpo_beta0", "fixed_length", 0.0, 0.28, False, 8),
                                                    ("on_policy_grpo", "sequence_mean", 0.04, 0.2, True, None)]:
        c = {"name": name, "aggregation": agg, "beta": beta, "eps_high": eh, "on_policy": on_policy,
             "max_length": max_len or 0}
        c.update(grpo_reference(gnew, None if on_policy else gold, gref if beta > 0 else None, gadv, gmask,
                                0.2, eh, beta, agg, max_len))
        grpo["cases"].append(c)
    rnew = rng.normal(-1.0, 0.3, (gB, T))
    rold = rnew + rng.normal(0.0, 0.15, (gB, T))
    radv = np.array([-1.2, -0.7, 0.3, 1.5])
    rloo = {"B": gB, "T": T, "logp_new": L(rnew), "logp_old": L(rold), "advantages": L(radv), "mask": L(gmask),
            "eps": 0.2, "off_policy": rloo_reference(rnew, rold, radv, gmask, 0.2),
            "on_policy": rloo_reference(rnew, None, radv, gmask, 0.2)}
    return {"ppo_policy": ppo, "value": value, "entropy": entropy, "dpo": dpo, "grpo": grpo, "rloo": rloo}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/algo")
    ap.add_argument("--allow-other-versions", action="store_true")
    args = ap.parse_args(argv)
    if np.__version__ != EXPECTED_VERSIONS["numpy"] and not args.allow_other_versions:
        print(f"numpy {np.__version__} != pinned {EXPECTED_VERSIONS['numpy']} (--allow-other-versions)",
              file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    meta = {"generator": "tools/make_algo_fixtures.py", "seed": SEED, "numpy": np.__version__}
    files = {"kl.json": {"meta": meta, **kl_fixture(rng)},
             "advantages.json": {"meta": meta, **advantages_fixture(rng)},
             "losses.json": {"meta": meta, **losses_fixture(rng)}}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        f = args.out / name
        f.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
        h = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        print(f"  {f}  {f.stat().st_size:>8} B  sha256:{h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
