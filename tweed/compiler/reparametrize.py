"""Reparametrisation: scalar parameters replaced by expressions of new named parameters
(e.g. a normfactor mu -> sqrt(k), or a signal strength -> c1**2 + c2**2), for any format.

The expressions use the grammar of tweed/specs/expr.lark and become `expr` nodes, whose
value, gradient and Hessian the sympy backend derives. Parameters an expression names that
the model does not have yet are added after the existing ones; they take the initial value
and range of the parameter they replace unless `ranges` says otherwise. A replaced POI is
succeeded by the first new parameter of its expression.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tweed.errors import InputError
from tweed.ir import expr
from tweed.ir.module import Module, ParamSet
from tweed.ir.node import Node, topo_order
from tweed.ir.ops import Op


def parse_assignment(text: str) -> tuple[str, str]:
    """'NAME=EXPRESSION' -> (NAME, EXPRESSION)."""
    name, sep, rhs = text.partition("=")
    if not sep or not name.strip() or not rhs.strip():
        raise InputError(f"--expr: expected NAME=EXPRESSION, e.g. mu=sqrt(k); got {text!r}")
    return name.strip(), rhs.strip()


def parse_range(text: str) -> tuple[str, tuple[float, float, float | None]]:
    """'NAME=LO:HI' or 'NAME=LO:HI:INIT' -> (NAME, (lo, hi, init or None))."""
    name, sep, rhs = text.partition("=")
    parts = rhs.split(":")
    try:
        if not sep or len(parts) not in (2, 3):
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
        init = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise InputError(f"--param-range: expected NAME=LO:HI[:INIT], e.g. k=0:10; got {text!r}") from None
    if lo > hi:
        raise InputError(f"--param-range {text!r}: the lower bound is above the upper bound")
    return name.strip(), (lo, hi, init)


def reparametrize(module: Module, expressions: dict[str, str],
                  ranges: dict[str, tuple[float, float, float | None]] | None = None,
                  extra_roots: tuple[Node, ...] = ()) -> tuple[Module, tuple[Node, ...]]:
    """The module with every PARAM node of the named scalar sets replaced by its expression;
    extra_roots (e.g. a domain) are rewritten the same way and returned."""
    ranges = dict(ranges or {})
    sets = {p.name: p for p in module.params}
    new_sets: list[ParamSet] = []
    exprs: dict[str, tuple] = {}
    for name, text in expressions.items():
        if name not in sets:
            raise InputError(f"--expr {name}=...: the model has no parameter named {name!r} "
                             f"(it has: {', '.join(list(sets)[:12])}{', ...' if len(sets) > 12 else ''})")
        old = sets[name]
        if not old.scalar:
            raise InputError(f"--expr {name}=...: {name!r} is a per-bin parameter set; only scalar "
                             "parameters can be replaced by expressions")
        tree = expr.parse(text)
        for v in expr.variables(tree):
            if v in expressions:
                raise InputError(f"--expr {name}={text}: {v!r} is itself replaced by an expression")
            if v not in sets and all(p.name != v for p in new_sets):
                lo, hi = old.bounds[0]
                init = old.inits[0]
                if v in ranges:
                    lo, hi, given = ranges[v]
                    init = given if given is not None else min(max(init, lo), hi)
                new_sets.append(ParamSet(v, (init,), ((lo, hi),), (False,), kind="expression"))
        exprs[name] = tree
    unknown = [v for v in ranges if v not in {p.name for p in new_sets}]
    if unknown:
        raise InputError(f"--param-range: {unknown[0]!r} is not a new parameter of an --expr")
    for p in new_sets:
        lo, hi = p.bounds[0]
        if not (lo <= p.inits[0] <= hi) or math.isnan(p.inits[0]):
            raise InputError(f"initial value {p.inits[0]} of {p.name!r} is outside its range [{lo}, {hi}]")

    replacement: dict[str, Node] = {}
    for name, tree in exprs.items():
        names = expr.variables(tree)
        args = tuple(Node(Op.PARAM, (), {"name": v}) for v in names)
        text = expr.to_text(expr.rename(tree, {v: f"x{k}" for k, v in enumerate(names)}))
        replacement[name] = Node(Op.EXPR, args, {"expr": text}) if args else Node(
            Op.EXPR, (Node(Op.PARAM, (), {"name": new_sets[0].name if new_sets else name}),),
            {"expr": f"0 * x0 + {text}"})

    memo: dict[int, Node] = {}
    dom = (module.domain,) if module.domain is not None else ()
    for node in topo_order(list(module.terms) + list(dom) + list(extra_roots)):
        if node.op is Op.PARAM and node.attr("name") in replacement:
            memo[id(node)] = replacement[node.attr("name")]
        elif node.args and any(id(a) in memo for a in node.args):
            memo[id(node)] = Node(node.op, tuple(memo.get(id(a), a) for a in node.args), node.attrs)

    def sub(n: Node) -> Node:
        return memo.get(id(n), n)

    params = tuple(p for p in module.params if p.name not in exprs) + tuple(new_sets)
    poi = module.poi
    if poi in exprs:
        first = [v for v in expr.variables(exprs[poi]) if v in {p.name for p in new_sets}]
        poi = first[0] if first else None
    out = replace(module, params=params, terms=tuple(sub(t) for t in module.terms), poi=poi,
                  domain=None if module.domain is None else sub(module.domain))
    return out, tuple(sub(r) for r in extra_roots)
