"""The compiled steps of a fit's start-up: the inverse-Hessian guess's elementwise steps
(codegen/numba_minimize.py: scaled_metric, unscaled_inverse) and the Fisher-information
curvature (codegen/numba_kernels.py: fisher_information) give what the numpy steps give
(docs/design.md, "Fits")."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import rich_workspace
from tweed.api import compile_module, read
from tweed.codegen import numba_minimize as M
from tweed.runtime import fit as fitmod
from tweed.runtime.minimize import inverse_hessian_guess


def _spd(rng, n, spread=1e3):
    A = rng.normal(size=(n, n))
    s = np.exp(rng.uniform(0, np.log(spread), n))  # parameters on different scales
    H = (A @ A.T + n * np.eye(n)) * s[:, None] * s[None, :]
    H[np.triu_indices(n, 1)] *= 1 + 1e-15  # not exactly symmetric, as a finite-difference Hessian
    return H


@pytest.mark.parametrize("n", [1, 2, 5, 68, 126])
def test_compiled_inverse_hessian_guess_is_bit_identical(n):
    """Same rounding, step by step: the compiled and numpy guesses are equal, not just close."""
    rng = np.random.default_rng(n)
    H = _spd(rng, n)
    ref = inverse_hessian_guess(H)
    got = inverse_hessian_guess(H, None, M)
    assert np.array_equal(got, ref)
    np.testing.assert_allclose(got @ (0.5 * (H + H.T)), np.eye(n), atol=1e-8)
    # a subset of free parameters, as a fit with fixed parameters asks
    free = np.sort(rng.choice(n, size=max(1, n // 2), replace=False))
    assert np.array_equal(inverse_hessian_guess(H, free, M), inverse_hessian_guess(H[np.ix_(free, free)]))


def test_compiled_guess_falls_back_like_the_reference():
    """Indefinite (eigenvalue route) and non-finite matrices take the numpy route: the same
    positive-definite result with or without the compiled steps."""
    rng = np.random.default_rng(7)
    H = _spd(rng, 8)
    H[0, 0] = -H[0, 0]  # indefinite
    got, ref = inverse_hessian_guess(H, None, M), inverse_hessian_guess(H)
    assert np.array_equal(got, ref)
    assert np.all(np.linalg.eigvalsh(0.5 * (got + got.T)) > 0)
    H = _spd(rng, 8)
    H[2, 5] = np.nan
    got, ref = inverse_hessian_guess(H, None, M), inverse_hessian_guess(H)
    assert np.array_equal(got, ref)
    assert np.all(np.isfinite(got)) and np.all(np.diag(got) > 0)


@pytest.fixture(scope="module")
def compiled():
    return compile_module(read(rich_workspace()).module)


def test_fisher_information_kernel_matches_the_numpy_sum(compiled):
    """J^T diag(1/lambda) J over the main bins plus the constraint curvature, in one compiled
    call, equals the numpy sum from rate_jacobian and expected_data."""
    cm = compiled
    k = cm.kernels
    assert hasattr(k, "fisher_information")
    rng = np.random.default_rng(3)
    for x in (cm.inits(), cm.inits() * rng.uniform(0.8, 1.2, cm.n_params)):
        J = k.rate_jacobian(x)[: cm.n_main]
        lam = cm.expected_data(x)[: cm.n_main]
        w = 1.0 / np.maximum(lam, 1e-9 * max(1.0, float(np.max(np.abs(lam)))))
        want = (J.T * w) @ J + k.constraint_hessian()
        got = k.fisher_information(x)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))
        np.testing.assert_allclose(got, got.T, rtol=1e-14, atol=0)  # (J_a w) J_b vs (J_b w) J_a
    # what the fits use: the compiled curvature at the start point
    np.testing.assert_array_equal(fitmod._curvature(cm, cm.inits()), k.fisher_information(cm.inits()))


def test_fits_agree_with_and_without_the_compiled_steps(compiled, monkeypatch):
    """A fit started from the compiled guess and one from the numpy guess reach the same
    minimum (the guesses are equal, so the fits are too)."""
    cm = compiled
    a = fitmod.fit(cm).require_success("fit")
    cm2 = compile_module(read(rich_workspace()).module)
    monkeypatch.setattr(fitmod, "_compiled_steps", lambda model: None)
    monkeypatch.setattr(type(cm2.kernels), "fisher_information", None, raising=False)
    b = fitmod.fit(cm2).require_success("fit")
    assert a.twice_nll == pytest.approx(b.twice_nll, rel=1e-12)
    np.testing.assert_allclose(a.bestfit, b.bestfit, rtol=1e-9, atol=1e-9)


def test_nll_and_grad_takes_any_parameter_array(compiled):
    """The model's own-data shortcut (a bound kernel call) and the general path agree, for
    every form a caller may pass: C-contiguous float64 (the shortcut), a strided view, a
    read-only array, float32, a list; with the model's data given explicitly too."""
    cm = compiled
    rng = np.random.default_rng(5)
    x = cm.inits() * rng.uniform(0.9, 1.1, cm.n_params)
    f, g = cm.nll_and_grad(x)
    d, lg = cm._data(None)
    f_ref, g_ref = cm.kernels.nll_grad(x.copy(), d, lg)
    assert f == f_ref and np.array_equal(g, g_ref)
    strided = np.repeat(x, 2)[::2]
    frozen = x.copy()
    frozen.setflags(write=False)
    for form in (strided, frozen, list(x), x.copy()):
        fx, gx = cm.nll_and_grad(form)
        assert fx == f and np.array_equal(gx, g)
    single = x.astype(np.float32)  # converted to float64 first
    f32, g32 = cm.nll_and_grad(single)
    f_ref, g_ref = cm.kernels.nll_grad(single.astype(float), d, lg)
    assert f32 == f_ref and np.array_equal(g32, g_ref)
    fd, gd = cm.nll_and_grad(x, cm.data.copy())
    assert fd == f and np.array_equal(gd, g)
    # each call returns its own gradient array
    g2 = cm.nll_and_grad(x)[1]
    assert g2 is not g and np.array_equal(g2, g)
    with pytest.raises(ValueError, match="parameters"):
        cm.nll_and_grad(x[:-1])


def test_a_model_still_pickles(compiled):
    """Models travel to dask workers: the bound own-data call is rebuilt on unpickling."""
    import pickle

    cm = compiled
    twin = pickle.loads(pickle.dumps(cm))
    x = cm.inits() * 1.05
    f, g = cm.nll_and_grad(x)
    f2, g2 = twin.nll_and_grad(x)
    assert f2 == f and np.array_equal(g2, g)
    assert twin._own_nll_grad is not None
