"""Helpers for the simplified-likelihood tests: generated models and their Spey twins."""

from __future__ import annotations

import numpy as np
import pytest


def generated(n: int, seed: int = 7, third: bool = True) -> dict:
    """A seeded n-bin simplified likelihood with a positive-definite covariance."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(5.0, 60.0, n)
    sd = 0.1 * b + rng.uniform(0.5, 2.0, n)
    A = rng.normal(size=(n, n))
    M = A @ A.T + n * np.eye(n)
    corr = M / np.sqrt(np.outer(np.diag(M), np.diag(M)))
    cov = corr * np.outer(sd, sd)
    doc = {"observed": rng.poisson(b).astype(float).tolist(), "background": b.tolist(),
           "covariance": cov.tolist(), "signal": rng.uniform(0.0, 6.0, n).tolist()}
    if third:
        doc["third_moment"] = (0.3 * sd**3 * rng.uniform(-1, 1, n)).tolist()
    return doc


@pytest.fixture(scope="session")
def spey():
    return pytest.importorskip("spey", reason="spey (a test-only oracle) is not installed")


def spey_model(spey, doc: dict, model: str, **extra):
    """The Spey model with the same inputs (docs/simplified.md §2)."""
    s, b, n = doc["signal"], doc["background"], doc["observed"]
    kw = dict(signal_yields=s, background_yields=b, data=n, **extra)
    cov = np.asarray(doc.get("covariance")) if "covariance" in doc else None
    if model == "uncorrelated_background":
        kw["absolute_uncertainties"] = doc.get("uncertainties", np.sqrt(np.diag(cov)).tolist())
    elif model in ("correlated_background", "multivariate_normal"):
        kw["covariance_matrix"] = doc["covariance"]
    elif model == "third_moment_expansion":
        kw["covariance_matrix"] = doc["covariance"]
        kw["third_moment"] = doc["third_moment"]
    elif model == "effective_sigma":
        kw["correlation_matrix"] = doc["correlation"]
        kw["absolute_uncertainty_envelops"] = doc["uncertainty_envelopes"]
    elif model in ("normal",):
        kw["absolute_uncertainties"] = doc["uncertainties"]
    elif model == "poisson" and "uncertainties" in doc:
        kw["absolute_uncertainties"] = doc["uncertainties"]
    return spey.get_backend(f"default.{model}")(**kw)
