"""Profile-likelihood test statistics (Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727).

All are built from t = max(T(mu) - T_hat, 0) with T = twice the NLL of the POI-fixed and the
free fit, both under the same bounds, as pyhf does (../shared/docs/formats/inference.md §2).
The tilde variants equal the plain ones in value: the bounded free fit makes them tilde when
the POI's lower bound is 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tweed.runtime.fit import FitResult, fit

TEST_STATS = ("qtilde", "q", "q0", "tmu", "tmu_tilde")


@dataclass
class TestStatResult:
    value: float
    mu: float
    free: FitResult
    fixed: FitResult


def _check_bounds(model, name: str, bounds) -> None:
    lo = (model.bounds() if bounds is None else np.asarray(bounds))[model.poi_index, 0]
    if name in ("qtilde", "tmu_tilde") and lo != 0:
        warnings.warn(f"{name} assumes the POI's lower bound is 0 (it is {lo})", stacklevel=3)
    if name in ("q", "tmu") and lo >= 0:
        warnings.warn(
            f"{name} assumes the POI may go negative (its lower bound is {lo}); "
            "with a lower bound of 0 it equals the tilde statistic", stacklevel=3)


def profile(model, mu: float, data=None, init=None, bounds=None, fixed=None, free: FitResult | None = None):
    """(t, free fit, POI-fixed fit) with t = max(T(mu) - T_hat, 0)."""
    if model.poi_index is None:
        raise ValueError("the model has no POI")
    free = free or fit(model, data, init, bounds, fixed, hessian=False)
    start = init
    if start is None and free.success:  # the free fit's best point is near the POI-fixed one
        start = free.bestfit
    cond = fit(model, data, start, bounds, fixed, poi_value=mu, hessian=False)
    return max(cond.twice_nll - free.twice_nll, 0.0), free, cond


def test_statistic(name: str, model, mu: float, data=None, init=None, bounds=None, fixed=None,
                   free: FitResult | None = None, warn: bool = True) -> TestStatResult:
    """q~mu ("qtilde"), q_mu ("q"), q0, t_mu ("tmu"), t~mu ("tmu_tilde")."""
    if name not in TEST_STATS:
        raise ValueError(f"unknown test statistic {name!r}; expected one of {TEST_STATS}")
    if name == "q0":
        if mu != 0.0 and warn:
            warnings.warn("q0 tests mu = 0; the given mu is ignored", stacklevel=2)
        mu = 0.0
    elif warn:
        _check_bounds(model, name, bounds)
    t, free, cond = profile(model, mu, data, init, bounds, fixed, free)
    muhat = free.bestfit[model.poi_index]
    if name in ("q", "qtilde") and muhat > mu:
        t = 0.0
    if name == "q0" and muhat < 0:
        t = 0.0
    return TestStatResult(value=t, mu=mu, free=free, fixed=cond)
