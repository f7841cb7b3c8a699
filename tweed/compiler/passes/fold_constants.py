"""fold-constants: evaluate what does not depend on parameters, drop modifiers that do nothing.

Requires: a verified module.
Guarantees: no op other than a term has only constant args; no interp op whose templates
  make it the identity (shift with lo == nom == hi, factor with lo == hi == 1); no add/mul
  arg that is an all-zero / all-one constant when dropping it keeps the shape; at most one
  constant arg per add/mul (so parameter-free samples become one constant per channel).
Preserves: the NLL at every point (up to floating-point summation order), the parameter
  table and the data. Fixed parameters are *not* substituted here (see fold-fixed).
"""

from __future__ import annotations

import weakref

import numpy as np

from tweed.compiler.passes import register
from tweed.compiler.passes.rewrite import applies_to, rewrite_module
from tweed.ir import interpret
from tweed.ir.module import Module
from tweed.ir.node import Const, Node, _broadcast
from tweed.ir.ops import TERM_OPS, Op


def const(value) -> Node:
    return Node(Op.CONST, (), {"value": Const(np.asarray(value, dtype=float))})


def _is_const(n: Node) -> bool:
    return n.op is Op.CONST


def _value(n: Node) -> np.ndarray:
    return n.attr("value").array


def _filled(node: Node, value: float) -> Node:
    return const(np.full(node.shape, value))


@applies_to(Op.INTERP_SHIFT)
def identity_shift(node: Node, m: Module) -> Node | None:
    """A histosys whose up and down templates equal the nominal shifts nothing."""
    if node.op is not Op.INTERP_SHIFT:
        return None
    lo, nom, hi = (node.attr(k) for k in ("lo", "nom", "hi"))
    if lo.shape == nom.shape == hi.shape:  # equal content <=> equal digest
        return _filled(node, 0.0) if lo == nom and hi == nom else None
    lo, nom, hi = lo.array, nom.array, hi.array
    if np.array_equal(np.broadcast_to(lo, nom.shape), nom) and np.array_equal(
        np.broadcast_to(hi, nom.shape), nom
    ):
        return _filled(node, 0.0)
    return None


@applies_to(Op.INTERP_FACTOR)
def identity_factor(node: Node, m: Module) -> Node | None:
    """A normsys with hi == lo == 1 is the factor 1 for every code."""
    if node.op is not Op.INTERP_FACTOR:
        return None
    lo, hi = node.attr("lo").array, node.attr("hi").array
    if lo.shape == () and hi.shape == ():
        return _filled(node, 1.0) if lo.item() == 1.0 and hi.item() == 1.0 else None
    if np.all(lo == 1.0) and np.all(hi == 1.0):
        return _filled(node, 1.0)
    return None


def _drop_neutral(node: Node, neutral: float) -> Node | None:
    keep = [a for a in node.args if not (_is_const(a) and np.all(_value(a) == neutral))]
    if len(keep) == len(node.args):
        return None
    if not keep:
        return _filled(node, neutral)
    if _broadcast([a.shape for a in keep], node.op.value) != node.shape:
        return None
    return keep[0] if len(keep) == 1 else Node(node.op, tuple(keep))


@applies_to(Op.ADD)
def drop_zero_terms(node: Node, m: Module) -> Node | None:
    return _drop_neutral(node, 0.0) if node.op is Op.ADD else None


@applies_to(Op.MUL)
def drop_unit_factors(node: Node, m: Module) -> Node | None:
    return _drop_neutral(node, 1.0) if node.op is Op.MUL else None


@applies_to(Op.ADD, Op.MUL)
def merge_constants(node: Node, m: Module) -> Node | None:
    """add/mul with two or more constant args: combine them into one (first position)."""
    if node.op not in (Op.ADD, Op.MUL):
        return None
    consts = [a for a in node.args if _is_const(a)]
    if len(consts) < 2 or len(consts) == len(node.args):
        return None
    vals = [_value(a) for a in consts]
    merged = sum(vals[1:], vals[0]) if node.op is Op.ADD else np.prod(np.broadcast_arrays(*vals), axis=0)
    rest = [a for a in node.args if not _is_const(a)]
    return Node(node.op, (const(merged), *rest))


@applies_to(*(op for op in Op if op not in TERM_OPS and op not in (Op.CONST, Op.PARAM, Op.PARAMS)))
def evaluate_constant(node: Node, m: Module) -> Node | None:
    """Any non-term op whose args are all constants becomes a constant."""
    if node.op in TERM_OPS or node.op in (Op.CONST, Op.PARAM, Op.PARAMS) or not node.args:
        return None
    if not all(_is_const(a) for a in node.args):
        return None
    vals = interpret.evaluate(m, np.zeros(0), nodes=[node])  # no parameter is read
    return const(np.asarray(vals[id(node)], dtype=float).reshape(node.shape))


RULES = (identity_shift, identity_factor, evaluate_constant, drop_zero_terms, drop_unit_factors,
         merge_constants)


# every rule depends on the node alone (constants are evaluated without parameters), so
# results are remembered across modules: hash-consing makes unchanged samples the same nodes
_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@register("fold-constants")
def fold_constants(module: Module) -> Module:
    return rewrite_module(module, RULES, memo=_MEMO)
