"""Parser of the IR text form (grammar: tweed/specs/ir.lark). parse(print(m)) == m."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError, VisitError

from tweed.errors import IRError
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op
from tweed.specs import load_grammar


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(load_grammar("ir.lark"), parser="lalr", maybe_placeholders=True)


class _Values(Transformer):
    """Turns attribute/param values into Python values; const refs stay symbolic."""

    def string(self, items):
        return json.loads(items[0])

    def number(self, items):
        text = str(items[0])
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)

    def special(self, items):
        return float(str(items[0]))

    def constref(self, items):
        return ("@", str(items[0])[1:])

    def true(self, _):
        return True

    def false(self, _):
        return False

    def list(self, items):
        return [x for x in items if x is not None]


def _resolve(value, consts: dict[str, Const]):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "@":
        try:
            return consts[value[1]]
        except KeyError:
            raise IRError(f"reference to undefined constant @{value[1]}") from None
    if isinstance(value, list):
        return tuple(_resolve(v, consts) for v in value)
    return value


def parse_module(text: str) -> Module:
    try:
        tree = _Values().transform(_parser().parse(text))
    except (LarkError, VisitError) as exc:
        raise IRError(f"cannot parse IR text: {exc}") from None
    consts: dict[str, Const] = {}
    values: dict[str, Node] = {}
    params, channels, terms, meta = [], [], [], []
    poi = None
    domain = None
    data = None
    n_main = 0
    for item in tree.children[1:]:
        kind = item.data
        ch = item.children
        if kind == "meta":
            meta.append((str(ch[0]), json.loads(ch[1])))
        elif kind == "poi":
            poi = json.loads(ch[0])
        elif kind == "param":
            name, pkind, scalar, inits, bounds, fixed = ch
            params.append(
                ParamSet(
                    name=json.loads(name),
                    kind=json.loads(pkind),
                    scalar=bool(scalar),
                    inits=tuple(float(x) for x in inits),
                    bounds=tuple((float(a), float(b)) for a, b in bounds),
                    fixed=tuple(bool(x) for x in fixed),
                )
            )
        elif kind == "channel":
            channels.append(Channel(json.loads(ch[0]), int(ch[1]), int(ch[2])))
        elif kind == "const":
            ref, dtype, n, body = ch
            cid = str(ref)[1:]
            dt = np.int64 if str(dtype) == "i64" else np.float64
            arr = np.array(body, dtype=dt)
            if n is None and arr.ndim != 0 or n is not None and arr.shape != (int(n),):
                raise IRError(f"constant @{cid}: declared shape does not match its values")
            c = Const(arr)
            if c.id != cid:
                raise IRError(f"constant @{cid}: content digest is @{c.id} (edited values?)")
            consts[cid] = c
        elif kind == "data":
            data = _resolve(("@", str(ch[0])[1:]), consts)
            n_main = int(ch[1])
        elif kind == "node":
            ref, opname, args, attrs, n = ch
            try:
                op = Op(str(opname))
            except ValueError:
                raise IRError(f"{ref}: unknown op {opname!r}") from None
            arg_nodes = []
            for a in args.children if args is not None else []:
                if str(a) not in values:
                    raise IRError(f"{ref}: argument {a} is used before it is defined")
                arg_nodes.append(values[str(a)])
            attr_items = {}
            for kv in attrs.children if attrs is not None else []:
                attr_items[str(kv.children[0])] = _resolve(kv.children[1], consts)
            node = Node(op, tuple(arg_nodes), attr_items)
            declared = () if n is None else (int(n),)
            if node.shape != declared:
                raise IRError(f"{ref}: declared shape {declared} but op gives {node.shape}")
            values[str(ref)] = node
        elif kind == "term":
            terms.append(values[str(ch[0])])
        elif kind == "domain":
            domain = values[str(ch[0])]
    if data is None:
        raise IRError("IR text has no data line")
    return Module(
        params=tuple(params),
        data=data,
        terms=tuple(terms),
        channels=tuple(channels),
        n_main=n_main,
        poi=poi,
        meta=tuple(meta),
        domain=domain,
    )
