"""The verifier: a table of checks per op plus module-level invariants.

Runs after every pass (TWEED_VERIFY=0 turns it off). An error quotes the offending node.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from tweed.errors import IRError
from tweed.ir.module import Module
from tweed.ir.node import Const, Node
from tweed.ir.ops import INTERP_CODES, TERM_OPS, Op
from tweed.ir.printer import format_node_inline


def _fail(node: Node, why: str) -> None:
    raise IRError(f"{why}: in `{format_node_inline(node)}`")


def _float_const(node: Node, key: str) -> Const:
    c = node.attr(key)
    if not isinstance(c, Const) or c.is_int:
        _fail(node, f"attribute {key} must be a float constant")
    if not c.finite:
        _fail(node, f"attribute {key} has non-finite values")
    return c


def _int_const(node: Node, key: str) -> Const:
    c = node.attr(key)
    if not isinstance(c, Const) or not c.is_int:
        _fail(node, f"attribute {key} must be an integer constant")
    return c


def _check_param(node: Node, m: Module) -> None:
    name = node.attr("name")
    if name not in m.offsets:
        _fail(node, f"unknown parameter set {name!r}")
    size = m.param_set(name).size
    start, stop = node.attr("start"), node.attr("stop")
    if start is None:
        if size != 1:
            _fail(node, f"scalar access to parameter set {name!r} of size {size}")
    elif not (0 <= start < stop <= size):
        _fail(node, f"slice {start}:{stop} outside parameter set {name!r} of size {size}")


def _check_params(node: Node, m: Module) -> None:
    if node.attr("size") != m.n_params:
        _fail(node, f"size {node.attr('size')} but the module has {m.n_params} parameters")


def _check_gather(node: Node, m: Module) -> None:
    idx = _int_const(node, "index").array
    if idx.size and (idx.min() < 0 or idx.max() >= node.args[0].size):
        _fail(node, f"index out of range for an argument of size {node.args[0].size}")


def _check_interp(node: Node, m: Module) -> None:
    if node.attr("code") not in INTERP_CODES[node.op]:
        _fail(node, f"code {node.attr('code')!r} not one of {INTERP_CODES[node.op]}")
    keys = ("lo", "hi") if node.op is Op.INTERP_FACTOR else ("lo", "nom", "hi")
    for k in keys:
        _float_const(node, k)


def _check_segment(node: Node, m: Module) -> None:
    off = _int_const(node, "offsets").array
    if off.ndim != 1 or off.size < 1 or off[0] != 0 or off[-1] != node.args[0].size:
        _fail(node, "offsets must start at 0 and end at the argument's size")
    if np.any(np.diff(off) < 0):
        _fail(node, "offsets must be non-decreasing")


def _check_term(node: Node, m: Module) -> None:
    idx = _int_const(node, "index").array
    n = m.data.array.size
    if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
        _fail(node, f"data index out of range for data of size {n}")
    if node.args[0].shape not in ((), idx.shape):
        _fail(node, f"argument shape {node.args[0].shape} does not match {idx.size} data entries")
    for key in ("sigma", "tau"):
        if node.attr(key) is not None:
            c = _float_const(node, key)
            if np.any(c.array <= 0):
                _fail(node, f"attribute {key} must be positive")
            if c.shape not in ((), idx.shape):
                _fail(node, f"attribute {key} has shape {c.shape}, expected {idx.shape}")


def _check_expr(node: Node, m: Module) -> None:
    from tweed.errors import InputError
    from tweed.ir import expr

    try:
        tree = expr.parse(node.attr("expr"))
    except InputError as exc:
        _fail(node, exc.message)
    allowed = {f"x{k}" for k in range(len(node.args))}
    unknown = [v for v in expr.variables(tree) if v not in allowed]
    if unknown:
        _fail(node, f"expression uses {unknown}, but the node has only {sorted(allowed)}")


def _check_mvnormal(node: Node, m: Module) -> None:
    _check_term(node, m)
    k = node.attr("index").shape[0]
    p = _float_const(node, "precision")
    if p.shape != (k * k,):
        _fail(node, f"precision must hold {k}x{k} values, has {p.shape}")
    if not np.isfinite(node.attr("logdet")):
        _fail(node, "logdet is not finite")


def _check_unbinned(node: Node, m: Module) -> None:
    _check_term(node, m)
    n = node.attr("index").shape
    dens, rate = node.args
    if dens.shape != n:
        _fail(node, f"the densities {dens.shape} must match the data entries {n}")
    for key in ("grid", "points"):
        if _float_const(node, key).shape != n:
            _fail(node, f"attribute {key} must have one value per data entry {n}")
    if rate.shape not in ((), (1,)):
        _fail(node, f"the expected number of events must be a scalar, has shape {rate.shape}")
    if not node.attr("lo") < node.attr("hi"):
        _fail(node, "the observable range needs lo < hi")


def _check_const(node: Node, m: Module) -> None:
    _float_const(node, "value")


def _check_nothing(node: Node, m: Module) -> None:
    return None


CHECKS: dict[Op, Callable[[Node, Module], None]] = {
    Op.CONST: _check_const,
    Op.PARAM: _check_param,
    Op.PARAMS: _check_params,
    Op.GATHER: _check_gather,
    Op.INTERP_FACTOR: _check_interp,
    Op.INTERP_SHIFT: _check_interp,
    Op.ADD: _check_nothing,
    Op.MUL: _check_nothing,
    Op.CONCAT: _check_nothing,
    Op.SEGMENT_SUM: _check_segment,
    Op.SEGMENT_PROD: _check_segment,
    Op.EXPR: _check_expr,
    Op.POISSON: _check_term,
    Op.GAUSS: _check_term,
    Op.POISSON_AUX: _check_term,
    Op.MVNORMAL: _check_mvnormal,
    Op.LOGNORMAL: _check_term,
    Op.UNBINNED: _check_unbinned,
}


def verify(m: Module) -> Module:
    """Check every node and the module invariants; return the module unchanged."""
    names = [p.name for p in m.params]
    if len(set(names)) != len(names):
        raise IRError("parameter set names are not unique")
    for p in m.params:
        if not (len(p.inits) == len(p.bounds) == len(p.fixed)) or p.size == 0:
            raise IRError(f"parameter set {p.name!r}: inits, bounds, fixed differ in length")
        for lo, hi in p.bounds:
            if not lo <= hi:
                raise IRError(f"parameter set {p.name!r}: lower bound {lo} above upper bound {hi}")
    if m.poi is not None and m.poi not in m.offsets:
        raise IRError(f"POI {m.poi!r} is not a parameter set")
    if m.data.is_int or m.data.array.ndim != 1:
        raise IRError("data must be a float vector")
    if not 0 <= m.n_main <= m.data.array.size:
        raise IRError("n_main outside the data vector")
    for c in m.channels:
        if not 0 <= c.start <= c.stop <= m.n_main:
            raise IRError(f"channel {c.name!r}: bins {c.start}:{c.stop} outside the main data")
    for t in m.terms:
        if t.op not in TERM_OPS:
            raise IRError(f"term is not a likelihood term: `{format_node_inline(t)}`")
    if m.domain is not None and (m.domain.op in TERM_OPS or m.domain.size < 1):
        raise IRError("the domain must be a vector of rates, not a term or a scalar")
    for node in m.nodes():
        if node.op not in MODULE_DEPENDENT and node in _VERIFIED:
            continue
        for a in node.args:
            if a.op in TERM_OPS:
                _fail(node, "a likelihood term is used as an argument")
        CHECKS[node.op](node, m)
        if node.op not in MODULE_DEPENDENT:
            _VERIFIED.add(node)
    return m


# Checks of most ops depend only on the node (immutable), so a node verified once stays
# verified; parameter reads and terms depend on the module's table and data and are always
# checked.
MODULE_DEPENDENT = frozenset({Op.PARAM, Op.PARAMS}) | TERM_OPS
_VERIFIED: "weakref.WeakSet[Node]" = weakref.WeakSet()
