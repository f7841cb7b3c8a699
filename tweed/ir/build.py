"""Small constructors the front ends share: constants and parameter reads as IR nodes."""

from __future__ import annotations

import numpy as np

from tweed.ir.node import Const, Node
from tweed.ir.ops import Op


def const(x) -> Node:
    """A constant node (scalar or vector, float64)."""
    return Node(Op.CONST, (), {"value": Const(np.asarray(x, dtype=float))})


def is_zero(node: Node) -> bool:
    """A constant that is 0 everywhere (e.g. the expected count of a non-extended unbinned term)."""
    return node.op is Op.CONST and not np.any(node.attr("value").array)


def param(name: str, n: int | None = None) -> Node:
    """The scalar parameter `name`, or the first n components of a per-bin set."""
    if n is None:
        return Node(Op.PARAM, (), {"name": name})
    return Node(Op.PARAM, (), {"name": name, "start": 0, "stop": n})
