"""The one-line-per-node text form of the IR.

    tweed-ir 1
    poi "mu"
    param "mu" kind="normfactor" scalar=true init=[1.0] bounds=[[0.0, 10.0]] fixed=[false]
    channel "SR" bins=0:2
    const @5d0c1f2a9b3e = f64[2] [5.0, 10.0]
    data @... n_main=2
    %0 = param {name="mu"} : f64[]
    %1 = mul %0, %2 : f64[2]
    term %5

Floats are printed with repr(), so parse(print(m)) rebuilds the module exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tweed.ir.module import Module
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

FORMAT_VERSION = 1


def _num(x: float | int) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def format_value(v: Any) -> str:
    if isinstance(v, Const):
        return f"@{v.id}"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (bool, int, float)):
        return _num(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r}")


def format_shape(shape: tuple[int, ...]) -> str:
    return "f64[" + ",".join(str(s) for s in shape) + "]"


def format_attrs(node: Node) -> str:
    if not node.attrs:
        return ""
    return " {" + ", ".join(f"{k}={format_value(v)}" for k, v in node.attrs) + "}"


def format_node_inline(node: Node, names: dict[int, str] | None = None) -> str:
    """One node as text; args are shown as %names when known, else by their op."""

    def arg(a: Node) -> str:
        if names and id(a) in names:
            return names[id(a)]
        return f"%<{a.op.value}>"

    args = ", ".join(arg(a) for a in node.args)
    return f"{node.op.value}{' ' + args if args else ''}{format_attrs(node)} : {format_shape(node.shape)}"


def format_const(c: Const) -> str:
    dtype = "i64" if c.is_int else "f64"
    shape = "" if c.shape == () else str(c.shape[0])
    values = c.array.tolist()
    body = _num(values) if c.shape == () else "[" + ", ".join(_num(x) for x in values) + "]"
    return f"const @{c.id} = {dtype}[{shape}] {body}"


def _comment(node: Node, module: Module | None) -> str:
    """Parameter names behind a gather from the whole parameter vector (for readers only)."""
    if module is None or node.op is not Op.GATHER or node.args[0].op is not Op.PARAMS:
        return ""
    names = module.par_names
    idx = node.attr("index").array
    shown = [names[i] for i in idx[:4]]
    more = f", ... ({len(idx)})" if len(idx) > 4 else ""
    return "  # " + ", ".join(shown) + more


def print_module(module: Module, consts: bool = True) -> str:
    lines = [f"tweed-ir {FORMAT_VERSION}"]
    for k, v in module.meta:
        lines.append(f"meta {k}={json.dumps(v)}")
    if module.poi is not None:
        lines.append(f"poi {json.dumps(module.poi)}")
    for p in module.params:
        lines.append(
            f"param {json.dumps(p.name)} kind={json.dumps(p.kind)} scalar={_num(p.scalar)}"
            f" init={format_value(p.inits)} bounds={format_value(p.bounds)}"
            f" fixed={format_value(p.fixed)}"
        )
    for c in module.channels:
        lines.append(f"channel {json.dumps(c.name)} bins={c.start}:{c.stop}")
    if consts:
        for c in module.consts():
            lines.append(format_const(c))
    lines.append(f"data @{module.data.id} n_main={module.n_main}")
    names: dict[int, str] = {}
    for i, node in enumerate(module.nodes()):
        names[id(node)] = f"%{i}"
        lines.append(f"%{i} = {format_node_inline(node, names)}{_comment(node, module)}")
    for t in module.terms:
        lines.append(f"term {names[id(t)]}")
    if module.domain is not None:
        lines.append(f"domain {names[id(module.domain)]}")
    return "\n".join(lines) + "\n"


def summary(module: Module) -> str:
    """Node counts per op: a one-line picture of a stage."""
    counts: dict[str, int] = {}
    for n in module.nodes():
        counts[n.op.value] = counts.get(n.op.value, 0) + 1
    body = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    return f"{len(module.params)} parameter sets, {module.n_params} parameters; nodes: {body}"
