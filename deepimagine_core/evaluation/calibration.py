"""Calibration of a score: Platt scaling on the logit (a temperature and a bias), AUC, and calibration error.

`platt(scores, y)` fits P(y = 1) = sigmoid(a * logit(score) + b) by Newton's method with a small ridge on a and b
(so separable or tiny data give finite values). Fit it on scores the model did not train on (a later time slice of
the history, see `shift.AdaptedPredictor`), never on the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from deepimagine_core.evaluation import scoring

EPS = 1e-6


def logit(p: np.ndarray | Sequence[float]) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z| (scipy's expit)."""
    return expit(np.asarray(z, dtype=float))


def platt(scores: Sequence[float], y: Sequence[int], ridge: float = 1e-3, iters: int = 50) -> tuple[float, float]:
    """(a, b) of P(y=1 | score) = sigmoid(a * logit(score) + b), maximum likelihood with a small ridge."""
    z = logit(scores)
    t = np.asarray(y, dtype=float)
    if z.size == 0 or t.min() == t.max():
        rate = float(np.clip(t.mean() if t.size else 0.5, 0.02, 0.98))
        return 1.0, float(logit([rate])[0])
    X = np.column_stack([z, np.ones_like(z)])
    w = np.array([1.0, 0.0])
    for _ in range(iters):
        p = sigmoid(X @ w)
        grad = X.T @ (p - t) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def auc(scores: Sequence[float], y: Sequence[int]) -> float:
    """Mann-Whitney AUC (ties count half); 0.5 when a class is absent."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(y, dtype=bool)
    if t.all() or not t.any():
        return 0.5
    return float(scoring._auc(s, t, np.ones((1, s.size)))[0])


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Top-label ECE: the question-weighted mean |accuracy − confidence| over equal-width confidence bins."""
    c = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if c.size == 0:
        return float("nan")
    bins = np.clip((c * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.sum() * abs(ok[m].mean() - c[m].mean())
    return float(total / c.size)
