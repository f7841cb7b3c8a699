"""The sympy backend: symbolic gradients and Hessians of expressions, as register programs
(run by the numba kernels) and as NumPy functions, against the expression semantics
(ir/expr.py), central finite differences, and the numba backend's own ops."""

from __future__ import annotations

import numpy as np
import pytest

from tweed.api import compile_module
from tweed.codegen.sympy_backend import compile_expression, numpy_function, run_program
from tweed.ir import expr
from tweed.ir.interpret import nll as interpret_nll
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

EXPRESSIONS = [
    ("x0 * x1 + exp(x2)", 3),
    ("x0 + x1 * sqrt(max(x2 + x3 * (x1 - x0), 1e-10))", 4),  # Spey's effective sigma
    ("log(x0) ** 2 / x1", 2),
    ("x0 ** 3 - tanh(x1)", 2),
    ("abs(x0) * sin(x1) + cos(x0)", 2),
    ("pow(x0, x1)", 2),
    ("exp(max(x0, 0) * x1 + min(x0, 0) * x2)", 3),  # Spey's signal-uncertainty factor
    ("a * c1 ** 2 + b * c2 ** 2", 0),  # the functional signal, renamed below
    ("sqrt(x0)", 1),
]


def _prepared(text, n):
    if n == 0:  # named variables -> x0..xk
        tree = expr.parse(text)
        names = expr.variables(tree)
        text = expr.to_text(expr.rename(tree, {v: f"x{k}" for k, v in enumerate(names)}))
        n = len(names)
    return text, n


def _points(n, seed, k=5):
    rng = np.random.default_rng(seed)
    # positive, away from kinks (max/min/abs at 0), where finite differences are fair
    return [rng.uniform(0.3, 2.0, n) * rng.choice([-1.0, 1.0], n) ** (np.arange(n) % 2) for _ in range(k)]


def _fd_grad(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


@pytest.mark.parametrize("text,n", EXPRESSIONS)
def test_register_program_value_gradient_hessian(text, n):
    text, n = _prepared(text, n)
    tree = expr.parse(text)
    prog = compile_expression(text, n)

    def value(x):
        return float(expr.evaluate(tree, {f"x{k}": x[k] for k in range(n)}))

    for x in _points(n, seed=n):
        if not np.isfinite(value(x)):
            continue
        regs = run_program(prog, x)
        assert float(regs[prog.value]) == pytest.approx(value(x), rel=1e-13, abs=1e-15)
        grad = np.array([float(regs[r]) for r in prog.grad])
        assert grad == pytest.approx(_fd_grad(value, x), rel=1e-6, abs=1e-8)

        def gk(y, k):
            return float(run_program(prog, y)[prog.grad[k]])

        hess = {}
        it = iter(prog.hess)
        for i in range(n):
            for j in range(i, n):
                hess[i, j] = float(run_program(prog, x)[next(it)])
        for i in range(n):
            fd = _fd_grad(lambda y: gk(y, i), x)
            for j in range(n):
                assert hess[min(i, j), max(i, j)] == pytest.approx(fd[j], rel=1e-5, abs=1e-7)
        f, grads = numpy_function(text, n)
        assert f(*x) == pytest.approx(value(x), rel=1e-13)
        assert [g(*x) for g in grads] == pytest.approx(grad, rel=1e-12, abs=1e-14)


def test_common_subexpressions_are_shared():
    from tweed.codegen.sympy_backend import R_COS, R_SIN

    prog = compile_expression("sin(x0 * x1) + sin(x0 * x1) ** 2", 2)
    # one sin(x0*x1) and one cos(x0*x1) serve the value, the gradient and the Hessian
    assert sum(1 for op in prog.ops if op[0] == R_SIN) == 1
    assert sum(1 for op in prog.ops if op[0] == R_COS) == 1


def _module(rate: Node, n: int, params) -> Module:
    data = Const(np.array([5.0, 9.0, 14.0][:n]))
    return Module(params=tuple(params), data=data, n_main=n, channels=(Channel("c", 0, n),), poi="a",
                  terms=(Node(Op.POISSON, (rate,), {"index": Const(np.arange(n))}),))


def _pset(name, n=None):
    size = n or 1
    return ParamSet(name, (1.0,) * size, ((-5.0, 5.0),) * size, (False,) * size, scalar=n is None)


def test_numba_kernels_run_expressions_exactly():
    a = Node(Op.PARAM, (), {"name": "a"})
    t = Node(Op.PARAM, (), {"name": "t", "start": 0, "stop": 3})
    s = Node(Op.CONST, (), {"value": Const(np.array([2.0, 3.0, 4.0]))})
    rate = Node(Op.EXPR, (a, s, t), {"expr": "x0 * x1 + exp(0.3 * x2) * sqrt(x1)"})
    mod = _module(rate, 3, [_pset("a"), _pset("t", 3)])
    model = compile_module(mod)
    rng = np.random.default_rng(2)
    for _ in range(4):
        p = rng.uniform(0.2, 2.0, 4)
        f, g = model.nll_and_grad(p)
        assert f == pytest.approx(interpret_nll(mod, p), rel=1e-13)
        assert g == pytest.approx(_fd_grad(lambda q: interpret_nll(mod, q), p), rel=1e-6)
        H = model.hessian(p)
        Hfd = np.array([_fd_grad(lambda q: model.nll_and_grad(q)[1][k], p) for k in range(4)])
        assert H == pytest.approx(Hfd, rel=1e-5, abs=1e-7)


def test_expression_and_native_ops_agree():
    """The same rate written with the native mul/add ops and as an expression: identical
    value, gradient and Hessian from the numba backend."""
    a = Node(Op.PARAM, (), {"name": "a"})
    t = Node(Op.PARAM, (), {"name": "t", "start": 0, "stop": 3})
    s = Node(Op.CONST, (), {"value": Const(np.array([2.0, 3.0, 4.0]))})
    native = Node(Op.ADD, (Node(Op.MUL, (a, s)), Node(Op.MUL, (t, t, s))))
    symbolic = Node(Op.EXPR, (a, s, t), {"expr": "x0 * x1 + x2 ** 2 * x1"})
    params = [_pset("a"), _pset("t", 3)]
    m1, m2 = compile_module(_module(native, 3, params)), compile_module(_module(symbolic, 3, params))
    p = np.array([0.7, 1.1, 0.4, 1.9])
    f1, g1 = m1.nll_and_grad(p)
    f2, g2 = m2.nll_and_grad(p)
    assert f1 == pytest.approx(f2, rel=1e-14)
    assert g1 == pytest.approx(g2, rel=1e-13)
    assert m1.hessian(p) == pytest.approx(m2.hessian(p), rel=1e-12)


@pytest.mark.parametrize("which", ["simple", "rich", "simplified-tme", "simplified-effective-sigma"])
def test_symbolic_nll_of_whole_models(which):
    """The whole NLL built symbolically from the IR (sympy_backend.symbolic_nll), its gradient
    derived by sympy: against the IR interpreter and the numba kernels at random points."""
    from tests.models import rich_workspace, simple_workspace
    from tweed import api
    from tweed.codegen.sympy_backend import nll_functions

    if which == "simple":
        loaded = api.read(simple_workspace())
    elif which == "rich":
        loaded = api.read(rich_workspace())
    else:
        doc = {"observed": [10.0, 14.0, 3.0], "background": [9.0, 12.0, 4.0],
               "covariance": [[4.0, 1.0, 0.3], [1.0, 5.0, 0.2], [0.3, 0.2, 1.5]],
               "third_moment": [2.0, -1.5, 0.6], "signal": [2.0, 1.0, 0.5],
               "uncertainty_envelopes": [[2.2, 1.8], [2.5, 2.0], [1.3, 1.1]],
               "correlation": [[1.0, 0.2, 0.1], [0.2, 1.0, 0.05], [0.1, 0.05, 1.0]]}
        loaded = api.read(doc, model="third_moment_expansion" if which.endswith("tme") else "effective_sigma")
    nll, grad = nll_functions(loaded.module)
    model = api.compile_module(loaded)
    rng = np.random.default_rng(5)
    lo, hi = model.bounds().T
    for _ in range(4):
        p = model.inits() + rng.uniform(-0.3, 0.3, model.n_params) * np.minimum(1.0, hi - lo)
        p = np.clip(p, lo, hi)
        assert nll(p) == pytest.approx(interpret_nll(loaded.module, p), rel=1e-12)
        f, g = model.nll_and_grad(p)
        assert nll(p) == pytest.approx(f, rel=1e-12)
        assert grad(p) == pytest.approx(g, rel=1e-8, abs=1e-9)
