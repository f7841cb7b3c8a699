"""The reference interpreter: plain NumPy semantics of every op. It defines what the IR means.

Every pass and backend is checked against it at random parameter points, and it is checked
against pyhf's numbers on published models.
"""

from __future__ import annotations

import numpy as np

from tweed.ir import interp_math
from tweed.ir.module import Module
from tweed.ir.node import Node, topo_order
from tweed.ir.ops import Op

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def poisson_nll(n, lam):
    """-ln Pois_c(n | lam) = lam - n ln(lam) + lgamma(n+1), with 0 ln 0 = 0."""
    from scipy.special import gammaln, xlogy  # the reference semantics: SciPy's functions

    with np.errstate(divide="ignore", invalid="ignore"):
        # a negative rate is not a Poisson mean: NaN even where n = 0 (pyhf: only where n > 0)
        return np.where(lam < 0, np.nan, lam - xlogy(n, lam) + gammaln(n + 1.0))


def gauss_nll(a, x, sigma):
    """-ln N(a | x, sigma)."""
    return 0.5 * ((a - x) / sigma) ** 2 + np.log(sigma) + _HALF_LOG_2PI


def _eval(node: Node, vals: dict[int, np.ndarray], pars: np.ndarray, data, offsets) -> np.ndarray:
    op = node.op
    a = [vals[id(x)] for x in node.args]
    at = dict(node.attrs)
    if op is Op.CONST:
        return at["value"].array
    if op is Op.PARAM:
        base = offsets[at["name"]]
        if "start" in at:
            return pars[base + at["start"] : base + at["stop"]]
        return pars[base]
    if op is Op.PARAMS:
        return pars
    if op is Op.GATHER:
        return np.atleast_1d(a[0])[at["index"].array]
    if op is Op.INTERP_FACTOR:
        return interp_math.interp_factor(at["code"], a[0], at["lo"].array, at["hi"].array)
    if op is Op.INTERP_SHIFT:
        return interp_math.interp_shift(
            at["code"], a[0], at["lo"].array, at["nom"].array, at["hi"].array
        )
    if op is Op.ADD:
        out = a[0]
        for x in a[1:]:
            out = out + x
        return out
    if op is Op.MUL:
        out = a[0]
        for x in a[1:]:
            out = out * x
        return out
    if op is Op.CONCAT:
        return np.concatenate([np.atleast_1d(x) for x in a])
    if op in (Op.SEGMENT_SUM, Op.SEGMENT_PROD):
        off = at["offsets"].array
        x = np.atleast_1d(a[0])
        red = np.sum if op is Op.SEGMENT_SUM else np.prod
        return np.array([red(x[off[s] : off[s + 1]]) for s in range(len(off) - 1)], dtype=float)
    if op is Op.EXPR:
        from tweed.ir import expr

        env = {f"x{k}": a[k] for k in range(len(a))}
        return np.asarray(expr.evaluate(expr.parse(at["expr"]), env), dtype=float) * np.ones(np.broadcast_shapes(*[np.shape(x) for x in a]))
    if op is Op.MVNORMAL:
        idx = at["index"].array
        r = data[idx] - np.broadcast_to(a[0], idx.shape)
        P = at["precision"].array.reshape(idx.size, idx.size)
        return 0.5 * r @ P @ r + 0.5 * idx.size * np.log(2 * np.pi) + 0.5 * at["logdet"]
    if op is Op.UNBINNED:
        w = data[at["index"].array]
        on = w != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.asarray(a[1]).sum()) - np.sum(w[on] * np.log(a[0][on]))
    if op is Op.LOGNORMAL:
        n = data[at["index"].array]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(gauss_nll(np.log(n), a[0], at["sigma"].array) + np.log(n))
    if op is Op.POISSON:
        n = data[at["index"].array]
        return np.sum(poisson_nll(n, np.broadcast_to(a[0], n.shape)))
    if op is Op.GAUSS:
        n = data[at["index"].array]
        return np.sum(gauss_nll(n, a[0], at["sigma"].array))
    if op is Op.POISSON_AUX:
        n = data[at["index"].array]
        return np.sum(poisson_nll(n, a[0] * at["tau"].array))
    raise NotImplementedError(f"interpret: no rule for op {op.value}")


def evaluate(module: Module, pars, nodes: list[Node] | None = None, data=None) -> dict[int, np.ndarray]:
    """Values of every node reachable from ``nodes`` (default: the terms), keyed by id(node)."""
    pars = np.asarray(pars, dtype=float)
    data = module.data.array if data is None else np.asarray(data, dtype=float)
    vals: dict[int, np.ndarray] = {}
    offsets = module.offsets
    for node in topo_order(list(module.terms if nodes is None else nodes)):
        vals[id(node)] = np.asarray(_eval(node, vals, pars, data, offsets), dtype=float)
    return vals


def nll(module: Module, pars, data=None) -> float:
    """The negative log-likelihood -ln L(pars | data), all normalisation constants included."""
    vals = evaluate(module, pars, data=data)
    return float(sum(vals[id(t)] for t in module.terms))


def expected_data(module: Module, pars) -> np.ndarray:
    """Expectation of every data entry: rates for Poisson terms, the constraint means for aux."""
    vals = evaluate(module, pars)
    out = np.full(module.data.array.shape, np.nan)
    for t in module.terms:
        x = np.broadcast_to(vals[id(t.args[0])], t.attr("index").shape)
        if t.op is Op.POISSON_AUX:
            x = x * t.attr("tau").array
        elif t.op is Op.UNBINNED:  # Asimov weights: quadrature weight x event-rate density
            x = x * t.attr("grid").array
        elif t.op is Op.LOGNORMAL:  # the datum whose log is the mean (the median)
            x = np.exp(x)
        out[t.attr("index").array] = x
    return out
