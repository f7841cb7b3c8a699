"""Robust fits: statuses, the retry strategies, refusal to use failed fits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import rich_workspace
from tweed.api import compile_module, read
from tweed.errors import FitError
from tweed.runtime import fit as fitmod
from tweed.runtime import infer


def model():
    return compile_module(read(rich_workspace()).module)


def test_a_converged_fit_lists_one_attempt():
    r = infer.fit(model())
    assert r.status == "ok" and [a["strategy"] for a in r.attempts] == ["bfgs"]
    assert r.to_dict()["attempts"][0]["status"] == "ok"


def test_retries_walk_the_strategies(monkeypatch):
    cm = model()
    monkeypatch.setattr(fitmod, "MAXITER", 2)  # the compiled minimiser gives up at once
    r = fitmod.fit(cm, hessian=False)
    names = [a["strategy"] for a in r.attempts]
    assert names[0] == "bfgs" and r.attempts[0]["status"] == "max-iterations"
    assert names[-1] == "reference" and r.status == "ok"  # the reference implementation finished
    ref = infer.fit(model(), hessian=False)
    assert r.twice_nll == pytest.approx(ref.twice_nll, abs=1e-6)


def test_failed_fits_are_refused_unless_allowed(monkeypatch):
    cm = model()
    monkeypatch.setattr(fitmod, "MAXITER", 1)
    monkeypatch.setattr(fitmod, "STRATEGIES", ("bfgs",))
    r = fitmod.fit(cm, hessian=False)
    assert not r.success and r.status == "max-iterations"
    with pytest.raises(FitError, match="did not converge"):
        infer.hypotest(cm, 1.0)
    h = infer.hypotest(cm, 1.0, allow_failed_fits=True)
    assert 0 <= h.CLs_obs <= 1
    with pytest.raises(FitError):
        infer.upper_limit(cm)


def test_constrained_parameter_at_a_bound_is_flagged():
    ws = {"channels": [{"name": "c", "samples": [
        {"name": "sig", "data": [5.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
        {"name": "bkg", "data": [50.0], "modifiers": [
            {"name": "alpha", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}}]}]}],
        "observations": [{"name": "c", "data": [200.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": [
            {"name": "alpha", "bounds": [[-0.5, 0.5]]}]}}], "version": "1.0.0"}
    r = infer.fit(compile_module(read(ws).module))
    assert r.success and {"alpha", "mu"} <= set(r.at_bounds)
    assert r.warnings == ["constrained parameter alpha ended at a bound of its range"]  # mu is free
