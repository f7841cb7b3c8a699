"""Expressions: a small closed language (tweed/specs/expr.lark) for parameter-dependent
yields and the IR's elementwise `expr` op.

parse() gives a tree of tuples: ("num", x) | ("var", name) | (op, a, b) | ("neg", a) |
("call", fname, args...). evaluate() is its NumPy semantics (the reference the sympy
backend's compiled derivatives are checked against).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from lark import Lark, Transformer
from lark.exceptions import LarkError, VisitError

from tweed.errors import InputError
from tweed.specs import load_grammar

FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1, "abs": 1, "sin": 1, "cos": 1, "tanh": 1, "erf": 1,
             "max": 2, "min": 2, "pow": 2}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(load_grammar("expr.lark"), parser="lalr")


class _Tree(Transformer):
    def number(self, items):
        return ("num", float(items[0]))

    def var(self, items):
        return ("var", str(items[0]))

    def add(self, items):
        return ("add", items[0], items[1])

    def sub(self, items):
        return ("sub", items[0], items[1])

    def mul(self, items):
        return ("mul", items[0], items[1])

    def div(self, items):
        return ("div", items[0], items[1])

    def pow(self, items):
        return ("pow", items[0], items[1])

    def neg(self, items):
        return ("neg", items[0])

    def args(self, items):
        return list(items)

    def call(self, items):
        name = str(items[0])
        args = items[1] or []
        if name not in FUNCTIONS:
            raise ValueError(f"unknown function {name!r} (known: {', '.join(sorted(FUNCTIONS))})")
        if len(args) != FUNCTIONS[name]:
            raise ValueError(f"{name}() takes {FUNCTIONS[name]} argument(s), got {len(args)}")
        if name == "pow":
            return ("pow", args[0], args[1])
        return ("call", name, *args)


@lru_cache(maxsize=4096)
def parse(text: str):
    """The expression tree of text; InputError (naming the column) if it does not parse."""
    try:
        return _Tree().transform(_parser().parse(text))
    except VisitError as exc:
        raise InputError(f"in expression {text!r}: {exc.orig_exc}") from None
    except LarkError as exc:
        col = getattr(exc, "column", None)
        where = f" at column {col}" if col else ""
        raise InputError(f"cannot parse expression {text!r}{where}") from None


def variables(tree) -> list[str]:
    """Variable names in first-use order."""
    out: list[str] = []

    def walk(t):
        if t[0] == "var":
            if t[1] not in out:
                out.append(t[1])
        elif t[0] == "num":
            return
        elif t[0] == "call":
            for a in t[2:]:
                walk(a)
        else:
            for a in t[1:]:
                walk(a)

    walk(tree)
    return out


def evaluate(tree, env: dict):
    """NumPy value of tree with variables from env (arrays broadcast)."""
    tag = tree[0]
    if tag == "num":
        return tree[1]
    if tag == "var":
        return env[tree[1]]
    if tag == "neg":
        return -evaluate(tree[1], env)
    if tag == "call":
        a = [evaluate(x, env) for x in tree[2:]]
        if tree[1] == "erf":
            from scipy.special import erf

            return erf(*a)
        f = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
             "tanh": np.tanh, "max": np.maximum, "min": np.minimum}[tree[1]]
        return f(*a)
    a, b = evaluate(tree[1], env), evaluate(tree[2], env)
    with np.errstate(all="ignore"):
        if tag == "add":
            return a + b
        if tag == "sub":
            return a - b
        if tag == "mul":
            return a * b
        if tag == "div":
            return a / b
        return np.power(a, b)


def rename(tree, mapping: dict):
    """The tree with variables renamed (names not in mapping stay)."""
    tag = tree[0]
    if tag == "var":
        return ("var", mapping.get(tree[1], tree[1]))
    if tag == "num":
        return tree
    if tag == "call":
        return ("call", tree[1], *[rename(a, mapping) for a in tree[2:]])
    return (tag, *[rename(a, mapping) for a in tree[1:]])


def to_text(tree) -> str:
    """Canonical text of a tree (fully parenthesised, floats by repr): parse(to_text(t)) == t."""
    tag = tree[0]
    if tag == "num":
        return repr(tree[1])
    if tag == "var":
        return tree[1]
    if tag == "neg":
        return f"(-{to_text(tree[1])})"
    if tag == "call":
        return f"{tree[1]}({', '.join(to_text(a) for a in tree[2:])})"
    sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}[tag]
    return f"({to_text(tree[1])} {sym} {to_text(tree[2])})"
