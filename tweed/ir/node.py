"""Immutable, hash-consed IR nodes and content-addressed constants.

Building a node that is structurally identical to a live one returns the live one, so
common subexpressions are shared for free and node equality is identity.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np

from tweed.errors import IRError
from tweed.ir.ops import ARITY, ATTR_KEYS, Op


class Const:
    """A constant tensor (float64 or int64), addressed by a digest of its content.

    Hashable and comparable by content, so it can be a node attribute; the array is
    read-only. The printer lists a module's constants in a table and refers to them as @id.
    """

    __slots__ = ("array", "digest", "_finite", "__weakref__")

    def __init__(self, array: Any, dtype: str | None = None):
        self._finite = None
        if dtype is None and type(array) is float:  # fast path: scalar factors (normsys lo/hi)
            arr = np.array(array)
            arr.setflags(write=False)
            self.array = arr
            self.digest = hashlib.sha256(b"<f8()" + arr.tobytes()).hexdigest()
            return
        arr = np.array(array, dtype=dtype) if dtype else np.array(array)
        if arr.dtype.kind in "iub":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        else:
            raise IRError(f"constant of unsupported dtype {arr.dtype}")
        if arr.ndim > 1:
            raise IRError(f"constants are scalars or vectors, got shape {arr.shape}")
        arr = arr.copy(order="C")
        arr.setflags(write=False)
        h = hashlib.sha256()
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
        self.array = arr
        self.digest = h.hexdigest()

    @property
    def id(self) -> str:
        return self.digest[:12]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def is_int(self) -> bool:
        return self.array.dtype == np.int64

    @property
    def finite(self) -> bool:
        """All values finite (computed once: constants are immutable)."""
        if self._finite is None:
            self._finite = bool(np.all(np.isfinite(self.array)))
        return self._finite

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"@{self.id}"


Attrs = tuple[tuple[str, Any], ...]

_INTERN: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()


def _broadcast(shapes: list[tuple[int, ...]], what: str) -> tuple[int, ...]:
    out: tuple[int, ...] = ()
    for s in shapes:
        if s == ():
            continue
        if out == ():
            out = s
        elif s != out:
            raise IRError(f"{what}: cannot broadcast shapes {shapes}")
    return out


def _length(shape: tuple[int, ...]) -> int:
    return 1 if shape == () else shape[0]


def infer_shape(op: Op, args: tuple["Node", ...], attrs: dict[str, Any]) -> tuple[int, ...]:
    """Shape rule of every op (the verifier re-checks the rules that need the module)."""
    if op is Op.CONST:
        return attrs["value"].shape
    if op is Op.PARAM:
        if "start" in attrs:
            n = attrs["stop"] - attrs["start"]
            if n <= 0:
                raise IRError(f"param {attrs['name']}: empty slice")
            return (n,)
        return ()
    if op is Op.PARAMS:
        return (int(attrs["size"]),)
    if op is Op.GATHER:
        return attrs["index"].shape or (1,)
    if op is Op.INTERP_FACTOR:
        return _broadcast([args[0].shape, attrs["lo"].shape, attrs["hi"].shape], op.value)
    if op is Op.INTERP_SHIFT:
        keys = ("lo", "nom", "hi")
        return _broadcast([args[0].shape] + [attrs[k].shape for k in keys], op.value)
    if op in (Op.ADD, Op.MUL, Op.EXPR):
        return _broadcast([a.shape for a in args], op.value)
    if op is Op.CONCAT:
        return (sum(_length(a.shape) for a in args),)
    if op in (Op.SEGMENT_SUM, Op.SEGMENT_PROD):
        return (max(_length(attrs["offsets"].shape) - 1, 0),)
    if op in (Op.POISSON, Op.GAUSS, Op.POISSON_AUX, Op.MVNORMAL, Op.LOGNORMAL, Op.UNBINNED):
        return ()
    raise IRError(f"no shape rule for op {op}")


class Node:
    """One IR node: an op, its argument nodes, hashable attributes, and its shape."""

    __slots__ = ("op", "args", "attrs", "shape", "__weakref__")

    op: Op
    args: tuple["Node", ...]
    attrs: Attrs
    shape: tuple[int, ...]

    def __new__(cls, op: Op, args: tuple["Node", ...] = (), attrs: dict[str, Any] | Attrs = ()):
        items = tuple(sorted(dict(attrs).items()))
        args = tuple(args)
        key = (op, tuple(id(a) for a in args), items)
        found = _INTERN.get(key)
        if found is not None and found.args == args:
            return found
        _check_signature(op, args, items)
        self = object.__new__(cls)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "attrs", items)
        object.__setattr__(self, "shape", infer_shape(op, args, dict(items)))
        _INTERN[key] = self
        return self

    def __setattr__(self, name, value):
        raise AttributeError("IR nodes are immutable")

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def size(self) -> int:
        return _length(self.shape)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        from tweed.ir.printer import format_node_inline

        return format_node_inline(self)

    def __reduce__(self):
        return (Node, (self.op, self.args, self.attrs))


def _check_signature(op: Op, args: tuple[Node, ...], items: Attrs) -> None:
    lo, hi = ARITY[op]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise IRError(f"{op.value}: takes {lo}..{hi if hi is not None else 'n'} args, got {len(args)}")
    required, optional = ATTR_KEYS[op]
    keys = {k for k, _ in items}
    missing = set(required) - keys
    extra = keys - set(required) - set(optional)
    if missing or extra:
        raise IRError(f"{op.value}: attributes missing {sorted(missing)}, unexpected {sorted(extra)}")
    for k, v in items:
        try:
            hash(v)
        except TypeError as exc:
            raise IRError(f"{op.value}: attribute {k} is not hashable") from exc


def topo_order(roots: list[Node] | tuple[Node, ...]) -> list[Node]:
    """All nodes reachable from roots, each after its args (iterative DFS, stable order)."""
    seen: set[int] = set()
    order: list[Node] = []
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if i < len(node.args):
                stack.append((node, i + 1))
                child = node.args[i]
                if id(child) not in seen:
                    stack.append((child, 0))
            elif id(node) not in seen:
                seen.add(id(node))
                order.append(node)
    return order
