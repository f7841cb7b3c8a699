"""A parameter constrained a million times tighter than the others (a Barlow-Beeston gamma
whose relative MC uncertainty is 1e-6: auxiliary datum tau = 1e12, as in the 3L-eRJR
workspace) neither makes the NLL noisy nor slows the fits (docs/design.md, "Poisson terms
without cancellation")."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import rich_workspace
from tweed.api import compile_module, read
from tweed.ir import interpret
from tweed.runtime import fit as fitmod
from tweed.runtime.minimize import inverse_hessian_guess

STIFF = "other_unc[0]"


def stiff_workspace() -> dict:
    ws = rich_workspace()
    other = ws["channels"][0]["samples"][3]
    assert other["modifiers"][1]["name"] == "other_unc"
    other["modifiers"][1]["data"][0] = other["data"][0] * 1e-6  # tau = 1e12
    return ws


@pytest.fixture(scope="module")
def loaded():
    r = read(stiff_workspace())
    return r.module, compile_module(r.module)


def test_the_nll_is_smooth_in_a_stiff_gamma(loaded):
    """Along the stiff gamma, the NLL follows its quadratic to 1e-9 between neighbouring
    floating-point values (the textbook lambda - n ln(lambda) + lgamma(n+1) jumps by ~1e-4:
    its terms are ~3e13 and cancel)."""
    module, cm = loaded
    best = fitmod.fit(cm).require_success("fit")
    i = cm.par_names.index(STIFF)
    x = best.bestfit.copy()
    steps = np.arange(-40, 41) * np.spacing(x[i])
    f = []
    for s in steps:
        y = x.copy()
        y[i] += s
        f.append(cm.nll(y))
    f = np.array(f) - f[40]
    curvature = 1e12  # tau / gamma^2 at gamma ~ 1
    g = cm.nll_and_grad(x)[1][i]
    np.testing.assert_allclose(f, g * steps + 0.5 * curvature * steps**2, atol=1e-9)
    # the reference semantics (the IR interpreter, pyhf's formula) is that noisy here
    naive = [interpret.nll(module, np.where(np.arange(x.size) == i, x + s, x)) for s in steps[::10]]
    assert np.ptp(np.array(naive) - np.array(f[::10]) - naive[4]) > 1e-6


def test_at_the_nominal_point_the_terms_are_pyhfs(loaded):
    """Where each rate equals its datum the Poisson term is its constant, computed as pyhf
    computes it; elsewhere the two formulas agree to rounding."""
    module, cm = loaded
    x = cm.inits()
    assert cm.nll(x) == pytest.approx(interpret.nll(module, x), rel=1e-13)
    y = x * 1.01
    assert cm.nll(y) == pytest.approx(interpret.nll(module, y), rel=1e-9)


def test_refits_converge_quickly(loaded):
    """POI-fixed refits (a ranking's, a profile's) converge in tens of evaluations, not the
    thousands the noise cost (a 3L-eRJR ranking refit took ~15,000)."""
    _, cm = loaded
    best = fitmod.fit(cm).require_success("fit")
    poi = cm.poi_index
    for value in (0.5, 1.0, 2.0, 4.0):
        r = fitmod.fit(cm, init=best.bestfit, fix={poi: value}, hessian=False)
        assert r.status == "ok" and r.nfev < 300, (value, r.status, r.nfev)


def test_the_inverse_hessian_guess_is_exact_for_a_stiff_direction():
    """One curvature of 1e11 among curvatures ~1: the guess is the inverse itself, not
    an inverse floored at 1e-10 x the largest eigenvalue (which shrank every other step)."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    H = A @ A.T + 6 * np.eye(6)
    H[0, :] *= 3e5
    H[:, 0] *= 3e5
    np.testing.assert_allclose(inverse_hessian_guess(H) @ H, np.eye(6), atol=1e-9)
