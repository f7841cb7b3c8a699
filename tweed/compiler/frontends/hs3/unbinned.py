"""Unbinned HS3 likelihoods: a distribution of one observable paired with `unbinned` data.

The term is the extended unbinned likelihood (IR op `unbinned`):

    NLL = nu - sum_i w_i ln( sum_k c_k f_k(x_i) )

for an extended `mixture_dist` (nu = sum_k c_k, RooFit's and pyhs3's convention: the data-only
ln N! is left out), and -sum_i w_i ln f(x_i) for any other pdf (not extended). Every f_k is
normalised over the data axis [min, max]: analytically for gaussian/normal, exponential,
lognormal, uniform and polynomial distributions, by 64-point Gauss-Legendre quadrature for
`generic_dist` (as pyhs3 does).

The densities are evaluated at the events and at a quadrature grid on the axis (composite
Gauss-Legendre, GRID_PANELS x GRID_ORDER points). The event weights w_i are data entries (the
grid's are 0); the expected value of entry i is grid_i x density_i (0 at events), so the
model's expected data at a parameter point are the Asimov data of the unbinned term:
NLL_Asimov(theta) = nu(theta) - integral lambda(x; theta_hat) ln lambda(x; theta) dx by
quadrature. For a pdf that is not extended the grid weights carry the observed number of
events, so the Asimov weights add up to it.
"""

from __future__ import annotations

import math

import numpy as np

from tweed.ir.build import const as _const
from tweed.ir.build import is_zero
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

GRID_PANELS, GRID_ORDER = 32, 8
GL_ORDER = 64
_SQRT2 = repr(math.sqrt(2.0))
_SQRT2PI = repr(math.sqrt(2.0 * math.pi))


def _expr(text: str, args) -> Node:
    return Node(Op.EXPR, tuple(args), {"expr": text})


def _num(x: float) -> str:
    return repr(float(x))


def _subst(tree, mapping: dict):
    """The expression tree with variables replaced by trees (simultaneously)."""
    tag = tree[0]
    if tag == "var":
        return mapping.get(tree[1], tree)
    if tag == "num":
        return tree
    if tag == "call":
        return ("call", tree[1], *[_subst(a, mapping) for a in tree[2:]])
    return (tag, *[_subst(a, mapping) for a in tree[1:]])


def fuse(node: Node) -> Node:
    """One `expr` node for a tree of elementwise expr/add/mul nodes over the points: the kernels
    then make one pass over the points instead of one per node. Scalars (the normalisations,
    the yields) and anything else stay arguments, computed once."""
    from tweed.ir import expr as irexpr

    shape = node.shape
    args: list[Node] = []

    def var(n: Node):
        for k, a in enumerate(args):
            if a is n:
                return ("var", f"x{k}")
        args.append(n)
        return ("var", f"x{len(args) - 1}")

    def tree(n: Node):
        if n.shape == shape and n.op is Op.EXPR:
            subs = {f"x{k}": tree(a) for k, a in enumerate(n.args)}
            return _subst(irexpr.parse(n.attr("expr")), subs)
        if n.shape == shape and n.op in (Op.ADD, Op.MUL):
            parts = [tree(a) for a in n.args]
            out = parts[0]
            for t in parts[1:]:
                out = ("add" if n.op is Op.ADD else "mul", out, t)
            return out
        return var(n)

    text = irexpr.to_text(tree(node))
    return Node(Op.EXPR, tuple(args), {"expr": text}) if args else node


def _scaled(shape: Node, norm: Node) -> Node:
    """A pdf: its shape at the points times its (scalar) normalisation."""
    return Node(Op.MUL, (shape, norm))


class Unbinned:
    """Lowers distributions of one observable to densities at given points (IR nodes)."""

    def __init__(self, L, obs: str, lo: float, hi: float):
        self.L, self.obs, self.lo, self.hi = L, obs, float(lo), float(hi)

    # -- public: the term of one (distribution, unbinned datum) pair ---------------------------
    def term(self, name: str, events: np.ndarray, weights: np.ndarray) -> dict:
        """The term's parts: density and rate nodes, and per point (events, then the grid) its
        observed weight, its quadrature weight and its coordinate."""
        t, w = np.polynomial.legendre.leggauss(GRID_ORDER)
        edges = np.linspace(self.lo, self.hi, GRID_PANELS + 1)
        half = 0.5 * np.diff(edges)[:, None]
        gx = (0.5 * (edges[1:] + edges[:-1]))[:, None] + half * t
        gw = (half * w).ravel()
        points = np.concatenate([events, gx.ravel()])
        at = _const(points)
        idx, d = self.L.dists[name]
        if d.get("type") == "mixture_dist":
            dens, rate = self.mixture(name, at)
            extended = not is_zero(rate)
        else:
            dens, rate, extended = self.pdf(name, at), _const(0.0), False
        scale = 1.0 if extended else float(np.sum(weights))
        dens = fuse(dens)
        return {"density": dens, "rate": rate, "weights": np.concatenate([weights, np.zeros(gw.size)]),
                "grid": np.concatenate([np.zeros(events.size), gw * scale]), "points": points,
                "observable": self.obs, "lo": self.lo, "hi": self.hi}

    # -- distributions ---------------------------------------------------------------------------
    def mixture(self, name: str, at: Node) -> tuple[Node, Node]:
        """(event-rate density at the points, expected number of events: 0 if not extended)."""
        idx, d = self.L.dists[name]
        dw = f"/distributions/{idx}"
        summands, coefs = d.get("summands") or [], d.get("coefficients") or []
        if not summands or len(coefs) not in (len(summands), len(summands) - 1):
            self.L.fail(dw, f"mixture_dist needs N summands and N (extended) or N-1 coefficients, got "
                            f"{len(summands)} and {len(coefs)}")
        fs = [self.pdf(s, at, f"{dw}/summands/{k}") for k, s in enumerate(summands)]
        cs = [self.L.value(c, f"{dw}/coefficients/{k}") for k, c in enumerate(coefs)]
        if len(cs) == len(fs) - 1:  # fractions; the last one is 1 - sum
            rest = _expr("1 - " + " - ".join(f"x{k}" for k in range(len(cs))), cs) if cs else _const(1.0)
            parts = [Node(Op.MUL, (c, f)) for c, f in zip(cs + [rest], fs)]
            return (parts[0] if len(parts) == 1 else Node(Op.ADD, tuple(parts))), _const(0.0)
        parts = [Node(Op.MUL, (c, f)) for c, f in zip(cs, fs)]
        total = parts[0] if len(parts) == 1 else Node(Op.ADD, tuple(parts))
        nu = cs[0] if len(cs) == 1 else Node(Op.ADD, tuple(cs))
        extended = d.get("extended", True)
        if extended is False:  # N coefficients, not extended: fractions c_k / sum c
            return _expr("x0 / x1", (total, nu)), _const(0.0)
        return total, nu

    def pdf(self, name: str, at: Node, where: str | None = None) -> Node:
        """The normalised density of distribution `name` at the points `at` (a vector)."""
        L = self.L
        if name not in L.dists:
            L.fail(where or "/distributions", f"undefined distribution {name!r}")
        idx, d = L.dists[name]
        dw = f"/distributions/{idx}"
        t = d.get("type")
        a, b = _num(self.lo), _num(self.hi)
        # each pdf: its shape at the points times a normalisation that depends on the
        # parameters only (a scalar, computed once per evaluation rather than per point)
        if t in ("gaussian_dist", "normal_dist"):
            self._observable(d, "x", dw)
            m, s = L.value(d.get("mean"), f"{dw}/mean"), L.value(d.get("sigma"), f"{dw}/sigma")
            norm = f"0.5 * (erf(({b} - x0) / (x1 * {_SQRT2})) - erf(({a} - x0) / (x1 * {_SQRT2})))"
            return _scaled(_expr("exp(-0.5 * ((x0 - x1) / x2) ** 2)", (at, m, s)),
                           _expr(f"1 / (x1 * {_SQRT2PI} * {norm})", (m, s)))
        if t == "exponential_dist":
            self._observable(d, "x", dw)
            c = L.value(d.get("c"), f"{dw}/c")
            return _scaled(_expr("exp(-x1 * x0)", (at, c)), _expr(f"x0 / (exp(-x0 * {a}) - exp(-x0 * {b}))", (c,)))
        if t == "lognormal_dist":
            self._observable(d, "x", dw)
            if self.lo < 0:
                L.fail(dw, f"lognormal_dist on an observable range starting at {self.lo} < 0")
            m, s = L.value(d.get("mu"), f"{dw}/mu"), L.value(d.get("sigma"), f"{dw}/sigma")
            la = "(-1e300)" if self.lo == 0 else _num(math.log(self.lo))
            lb = _num(math.log(self.hi))
            norm = f"0.5 * (erf(({lb} - x0) / (x1 * {_SQRT2})) - erf(({la} - x0) / (x1 * {_SQRT2})))"
            return _scaled(_expr("exp(-0.5 * ((log(x0) - x1) / x2) ** 2) / x0", (at, m, s)),
                           _expr(f"1 / (x1 * {_SQRT2PI} * {norm})", (m, s)))
        if t == "uniform_dist":
            return _expr(f"x0 * 0 + {_num(1.0 / (self.hi - self.lo))}", (at,))
        if t == "polynomial_dist":
            self._observable(d, "x", dw)
            cs = [L.value(c, f"{dw}/coefficients/{k}") for k, c in enumerate(d.get("coefficients") or [])]
            if not cs:
                L.fail(f"{dw}/coefficients", "polynomial_dist needs coefficients")
            poly = " + ".join(f"x{k + 1} * x0 ** {k}" for k in range(len(cs)))
            integ = " + ".join(f"x{k} * {_num((self.hi ** (k + 1) - self.lo ** (k + 1)) / (k + 1))}"
                               for k in range(len(cs)))
            return _scaled(_expr(poly, (at, *cs)), _expr(f"1 / ({integ})", cs))
        if t == "generic_dist" and name in L.normalised:  # Tweed's export: normalised already
            return L.expression(d.get("expression", ""), f"{dw}/expression", bind={self.obs: at})
        if t == "generic_dist":
            return self._generic(d.get("expression", ""), at, f"{dw}/expression")
        if t == "mixture_dist":
            dens, nu = self.mixture(name, at)
            if (d.get("coefficients") and len(d["coefficients"]) == len(d.get("summands") or [])
                    and d.get("extended", True) is not False):
                return _expr("x0 / x1", (dens, nu))  # a nested extended mixture: its shape
            return dens
        L.fail(f"{dw}/type", f"distribution type {t!r} is not supported on unbinned data (supported: "
                             "mixture_dist, gaussian_dist, normal_dist, exponential_dist, lognormal_dist, "
                             "uniform_dist, polynomial_dist, generic_dist)")

    # -- helpers ---------------------------------------------------------------------------------
    def _observable(self, d: dict, key: str, dw: str):
        if d.get(key) != self.obs:
            self.L.fail(f"{dw}/{key}", f"expected the observable {self.obs!r} of the paired data, got "
                                       f"{d.get(key)!r}")

    def _generic(self, text: str, at: Node, where: str) -> Node:
        """f(x)/integral of f over [lo, hi], the integral by Gauss-Legendre quadrature."""
        t, w = np.polynomial.legendre.leggauss(GL_ORDER)
        half, mid = 0.5 * (self.hi - self.lo), 0.5 * (self.hi + self.lo)
        nodes = _const(half * t + mid)
        f_ev = self.L.expression(text, where, bind={self.obs: at})
        f_gl = self.L.expression(text, where, bind={self.obs: nodes})
        if f_gl.op is Op.CONST or f_gl.size != GL_ORDER:
            self.L.fail(where, f"generic_dist: the expression does not depend on the observable {self.obs!r}")
        integral = Node(Op.SEGMENT_SUM, (Node(Op.MUL, (f_gl, _const(half * w))),),
                        {"offsets": Const(np.array([0, GL_ORDER], dtype=np.int64))})
        n = max(at.size, 1)
        spread = Node(Op.GATHER, (integral,), {"index": Const(np.zeros(n, dtype=np.int64))})
        return _expr("x0 / x1", (f_ev, spread))
