"""The numba kernels against the IR interpreter; exact gradient and Hessian against finite
differences; every interpolation code through the kernels; no per-model compilation."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from tweed.runtime.model import poisson_saturation

from tests.models import rich_workspace, simple_workspace
from tests.strategies import random_points, workspaces
from tweed.api import read
from tweed.codegen.numba_backend import NumbaKernels
from tweed.compiler.pipeline import run_pipeline
from tweed.ir.interpret import expected_data, nll


def kernels(ws, **kw):
    m = read(ws, **kw).module
    opt = run_pipeline(m)
    k = NumbaKernels.from_module(opt)
    d = opt.data.array
    return m, k, d, poisson_saturation(d)


def fd_grad(f, x, eps=1e-6):
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        out[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


def check(ws, seed=0, **kw):
    m, k, d, lg = kernels(ws, **kw)
    rng = np.random.default_rng(seed)
    np.testing.assert_allclose(k.nll(m.inits(), d, lg), nll(m, m.inits()), rtol=1e-10)
    # derivatives at random points only: codes 0 and 1 have a kink at alpha = 0 (the inits)
    for x in random_points(m.inits(), m.bounds(), np.zeros(m.n_params, bool), rng):
        ref = nll(m, x)
        if not np.isfinite(ref):
            continue
        np.testing.assert_allclose(k.nll(x, d, lg), ref, rtol=1e-10)
        f, g = k.nll_grad(x, d, lg)
        assert f == k.nll(x, d, lg)
        np.testing.assert_allclose(g, fd_grad(lambda y: k.nll(y, d, lg), x), rtol=1e-5, atol=1e-5)
        H = k.hessian(x, d, lg)
        np.testing.assert_allclose(H, H.T, atol=1e-9 * (1 + np.abs(H).max()))
        Hfd = np.array([fd_grad(lambda y: k.nll_grad(y, d, lg)[1][i], x) for i in range(x.size)])
        np.testing.assert_allclose(H, Hfd, rtol=1e-4, atol=1e-4)
        v = rng.normal(size=x.size)
        np.testing.assert_allclose(k.hvp(x, v, d, lg)[2], H @ v, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(k.expected(x), expected_data(m, x), rtol=1e-12)


def test_simple():
    check(simple_workspace())


@pytest.mark.parametrize("normsys", ["code0", "code1", "code2", "code4"])
@pytest.mark.parametrize("histosys", ["code0", "code2", "code4", "code4p"])
def test_every_interpolation_code(normsys, histosys):
    check(rich_workspace(), normsys_code=normsys, histosys_code=histosys)


def test_outside_the_polynomial_region():
    m, k, d, lg = kernels(rich_workspace())
    for a in (-2.3, -1.0, 1.0, 1.8):
        x = m.inits()
        x[0] = a  # jes
        np.testing.assert_allclose(k.nll(x, d, lg), nll(m, x), rtol=1e-10)


def test_zero_normfactor_gradient_is_exact():
    """Products of factors are differentiated without dividing: mu = 0 is fine."""
    m, k, d, lg = kernels(rich_workspace())
    x = m.inits()
    x[m.poi_index] = 0.0
    g = k.nll_grad(x, d, lg)[1]
    np.testing.assert_allclose(g, fd_grad(lambda y: nll(m, y), x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ws", [rich_workspace(), simple_workspace()])
def test_gradient_ignores_what_the_adjoint_buffer_held(ws):
    """A first-order sweep zeroes only the adjoints it reads before writing (pack.py's ZERO_ADJ)
    and assigns those of a SOLE segment sum's entries: garbage left in the buffer by an earlier
    call, or NaN, must not reach the gradient."""
    from tweed.codegen.pack import F_FLAGS, F_OP, OP_SEGSUM, SOLE, ZERO_ADJ

    m, k, d, lg = kernels(ws)
    flags, ops = k.program.ins[:, F_FLAGS], k.program.ins[:, F_OP]
    assert np.any((ops == OP_SEGSUM) & (flags & SOLE != 0))  # the assigning path is exercised
    assert np.count_nonzero(flags & ZERO_ADJ) < len(flags)
    rng = np.random.default_rng(3)
    for x in random_points(m.inits(), m.bounds(), np.zeros(m.n_params, bool), rng):
        ref = k.hvp(x, np.zeros(m.n_params), d, lg)[1]  # clears the whole buffer first
        k._adj[:] = np.nan
        np.testing.assert_array_equal(k.nll_grad(x, d, lg)[1], ref)
        k._adj[:] = rng.normal(size=k._adj.size) * 1e300
        np.testing.assert_array_equal(k.nll_grad(x, d, lg)[1], ref)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(workspaces())
def test_generated(ws):
    check(ws)


def test_new_model_needs_no_compilation():
    """The JIT kernels are compiled once (numba cache=True) and serve every model (the kernels
    compiled at install, tests/codegen/test_aot.py, are one module for all)."""
    from tweed.codegen import numba_kernels as K

    def run(ws):
        m, k, d, lg = kernels(ws)
        x, arr, v0 = m.inits(), k.program.arrays, k.program.val0
        n = x.size
        K.nll(*arr, v0.copy(), x, d, lg)
        K.nll_grad(*arr, v0.copy(), np.zeros_like(v0), x, d, lg, np.empty(n))
        K.hessian_columns(*arr, v0, x, d, lg, np.arange(n), np.zeros((n, n)))
        K.expected(*arr, v0.copy(), x, np.empty(k.program.n_data))

    names = ("nll", "nll_grad", "hessian_columns", "expected")
    run(simple_workspace())
    before = {name: len(getattr(K, name).signatures) for name in names}
    ws = rich_workspace()
    ws["channels"][0]["samples"][0]["data"] = [1.0, 2.0, 9.0]
    run(ws)
    after = {name: len(getattr(K, name).signatures) for name in names}
    assert after == before
    assert all(getattr(K, name)._cache.__class__.__name__ != "NullCache" for name in names)
