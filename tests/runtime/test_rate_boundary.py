"""Fits that meet the wall where an empty bin's expected rate reaches 0 (below it the NLL is
undefined) are finished by a minimisation with those rates held >= 0, and reach the
constrained minimum (docs/robustness.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from tweed.api import compile_module, read
from tweed.runtime import infer
from tweed.runtime.model import poisson_saturation
from tweed.runtime.toys import _fit_batch


def wall_model():
    # bin 0 is empty, its rate a - 3 alpha (histosys, piecewise linear); bin 1 (n events) wants
    # 5 a + 5 = n; alpha's constraint pulls it to 0 but the empty bin pushes it up: the
    # minimum lies on the wall a = 3 alpha
    samples = [
        {"name": "A", "data": [1.0, 5.0], "modifiers": [{"name": "a", "type": "normfactor", "data": None}]},
        {"name": "B", "data": [0.0, 5.0], "modifiers": [
            {"name": "alpha", "type": "histosys", "data": {"hi_data": [-3.0, 5.0], "lo_data": [3.0, 5.0]}}]},
    ]
    ws = {"channels": [{"name": "ch", "samples": samples}],
          "observations": [{"name": "ch", "data": [0.0, 10.0]}],
          "measurements": [{"name": "m", "config": {"poi": "a", "parameters": [
              {"name": "a", "bounds": [[0.0, 10.0]], "inits": [1.0]}]}}],
          "version": "1.0.0"}
    return compile_module(read(ws, histosys_code="code0").module)


def wall_minimum(n):
    """The constrained minimum, on the wall a = 3 alpha (the problem is convex, and the
    unconstrained minimum lies beyond the wall)."""
    f = lambda al: (15 * al + 5) - n * np.log(15 * al + 5) + gammaln(n + 1) + 0.5 * al**2 + 0.5 * np.log(2 * np.pi)  # noqa: E731
    r = minimize_scalar(f, bounds=(0.0, 3.0), method="bounded", options={"xatol": 1e-12})
    return r.fun, 3 * r.x, r.x


def test_fit_on_the_wall_reaches_the_constrained_minimum():
    m = wall_model()
    r = infer.fit(m, hessian=False)
    assert r.success, r.message
    f, a, al = wall_minimum(10.0)
    assert r.twice_nll == pytest.approx(2 * f, abs=1e-7)
    np.testing.assert_allclose([r.bestfit[m.params.index("a")], r.bestfit[m.params.index("alpha")]], [a, al],
                               atol=1e-4)
    assert "rate of an empty bin is 0" in r.message
    assert r.attempts[-1]["strategy"] == "rates>=0"


def test_batched_toy_fits_on_the_wall_reach_the_constrained_minimum():
    m = wall_model()
    datas = np.array([[0.0, 10.0, 0.0], [0.0, 14.0, 0.0]])
    lo, hi = m.bounds()[:, 0], m.bounds()[:, 1]
    free = np.flatnonzero(~m.fixed())
    Y, f, st = _fit_batch(m, np.tile(m.inits(), (2, 1)), free, datas, poisson_saturation(datas), lo, hi)
    assert list(st) == [0, 0]
    for k, n in enumerate((10.0, 14.0)):
        assert f[k] == pytest.approx(wall_minimum(n)[0], abs=1e-7)
