"""Slow, obviously-correct twins of the vectorised association tests (one variant at a time)."""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats


def firth_plain(X: np.ndarray, y: np.ndarray, tol: float = 1e-10, max_iter: int = 1000):
    """Firth (1993) penalised logistic regression by plain Newton with step-halving; returns
    (beta, se, penalised log-likelihood)."""

    def pen(b):
        eta = X @ b
        mu = special.expit(eta)
        w = mu * (1 - mu)
        info = X.T @ (X * w[:, None])
        ll = np.sum(y * eta - np.logaddexp(0, eta))
        return ll + 0.5 * np.linalg.slogdet(info)[1], mu, w, info

    b = np.zeros(X.shape[1])
    for _ in range(max_iter):
        pll, mu, w, info = pen(b)
        inv = np.linalg.inv(info)
        h = np.array([w[i] * X[i] @ inv @ X[i] for i in range(len(y))])
        score = X.T @ (y - mu + h * (0.5 - mu))
        step = inv @ score
        if np.abs(step).max() > 5:
            step *= 5 / np.abs(step).max()
        while pen(b + step)[0] < pll - 1e-10 * max(1.0, abs(pll)):
            step /= 2
        b = b + step
        if np.abs(step).max() < tol or np.abs(score).max() < tol:
            break
    pll, _, _, info = pen(b)
    return b, np.sqrt(np.diag(np.linalg.inv(info))), pll


def firth_optimum(X: np.ndarray, y: np.ndarray, last_fixed: bool = False):
    """Firth's estimate by a general-purpose optimiser (scipy's BFGS) maximising the penalised
    log-likelihood ℓ(β) + ½ log|I(β)| itself, with its exact gradient (the modified score): no
    Newton step, no I(β) as Hessian, so it shares nothing with the fit under test. With
    ``last_fixed`` the last coefficient stays 0 (the constrained fit of the penalised LRT, the
    penalty still of the whole design). Returns (beta, penalised log-likelihood)."""
    free = X.shape[1] - 1 if last_fixed else X.shape[1]

    def minus(b):
        b = np.r_[b, np.zeros(X.shape[1] - free)]
        eta = X @ b
        mu = special.expit(eta)
        w = mu * (1 - mu)
        info = X.T @ (X * w[:, None])
        h = w * np.einsum("ni,ij,nj->n", X, np.linalg.inv(info), X)
        ll = np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * np.linalg.slogdet(info)[1]
        return -ll, -(X.T @ (y - mu + h * (0.5 - mu)))[:free]

    fit = optimize.minimize(minus, np.zeros(free), jac=True, method="BFGS", options={"gtol": 1e-9})
    return np.r_[fit.x, np.zeros(X.shape[1] - free)], -fit.fun


def trend_plain(dosage: np.ndarray, case: np.ndarray):
    """Cochran–Armitage trend test from Armitage (1955), counts and the pairwise variance sum;
    returns (Z, p)."""
    t = [0.0, 1.0, 2.0]
    r = [int(np.sum((dosage == k) & case)) for k in range(3)]
    s = [int(np.sum((dosage == k) & ~case)) for k in range(3)]
    n = [r[k] + s[k] for k in range(3)]
    R, S = sum(r), sum(s)
    N = R + S
    T = sum(t[k] * (r[k] * S - s[k] * R) for k in range(3))
    var = sum(t[k] ** 2 * n[k] * (N - n[k]) for k in range(3))
    var -= 2 * sum(t[k] * t[j] * n[k] * n[j] for k in range(3) for j in range(k + 1, 3))
    var *= R * S / N
    z = T / np.sqrt(var)
    return z, 2 * stats.norm.sf(abs(z))
