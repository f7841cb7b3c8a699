"""fuse-modifiers: every modifier kind across all samples and channels becomes one batched op.

Requires: Poisson rates in HistFactory's sum-of-products form, channel by channel:
  rate_c = const + sum_samples (nominal + sum interp_shift(alpha)) * prod(factors), with
  factors param scalars, param slices (per-bin gammas), interp_factor(alpha), constants.
  A channel not in this form is left as it is (and concatenated back in place).
Guarantees: per Poisson term, one gather of all parameters per modifier kind, one
  interp_factor per code over all normsys-like entries, one interp_shift per code over all
  histosys entries (bins where the templates equal the nominal are dropped), segment
  products for per-sample and per-bin factors, and one segment sum into bins. All Gaussian
  constraints become one gauss term, all Poisson constraints one poisson_aux term.
Preserves: the NLL at every point (up to floating-point summation order), the parameter
  table and the data layout.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from tweed.compiler.passes import register
from tweed.ir.module import Channel, Module
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op


def _const(values) -> Node:
    return Node(Op.CONST, (), {"value": Const(np.asarray(values, dtype=float))})


def _ints(values) -> Const:
    return Const(np.asarray(values, dtype=np.int64))


@dataclass
class _Product:
    """One product term (a sample) of a channel, with flat parameter indices."""

    n: int
    nom: np.ndarray
    scale: np.ndarray
    shifts: list = field(default_factory=list)  # (code, alpha index, lo, nom, hi)
    block: list = field(default_factory=list)  # ("interp", code, idx, lo, hi) | ("param", idx) | ("const", v)
    gammas: list = field(default_factory=list)  # flat index per bin (n,)


class _NotNormalForm(Exception):
    pass


def _flat_index(node: Node, offsets) -> np.ndarray:
    base = offsets[node.attr("name")]
    if node.attr("start") is None:
        return np.array([base])
    return base + np.arange(node.attr("start"), node.attr("stop"))


def _summands(expr: Node) -> list[Node]:
    if expr.op is Op.ADD and not any(a.op is Op.INTERP_SHIFT for a in expr.args):
        return [t for a in expr.args for t in _summands(a)]
    return [expr]


def _is_base(node: Node) -> bool:
    if node.op is Op.INTERP_SHIFT:
        return True
    return node.op is Op.ADD and all(a.op in (Op.CONST, Op.INTERP_SHIFT) for a in node.args)


class _Offsets:
    """A module's parameter offsets, recording which sets were looked up."""

    def __init__(self, m: Module):
        self.offsets = m.offsets
        self.used: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        k = self.used[name] = self.offsets[name]
        return k


# _product per rate node: a scan builds the same background samples at every point, in
# modules whose parameter offsets may differ (a signal adds its own parameters). An entry is
# reused when the offsets of the parameter sets it read are unchanged.
_PRODUCTS: "weakref.WeakKeyDictionary[Node, tuple]" = weakref.WeakKeyDictionary()


def _product(term: Node, n: int, m: Module) -> _Product:
    hit = _PRODUCTS.get(term)
    if hit is not None and hit[0] == n and all(m.offsets.get(k) == v for k, v in hit[1]):
        return hit[2]
    offsets = _Offsets(m)
    p = _build_product(term, n, offsets)
    _PRODUCTS[term] = (n, tuple(offsets.used.items()), p)
    return p


def _build_product(term: Node, n: int, offsets: _Offsets) -> _Product:
    factors = list(term.args) if term.op is Op.MUL else [term]
    bases = [f for f in factors if _is_base(f)]
    if len(bases) > 1:
        raise _NotNormalForm
    p = _Product(n=n, nom=np.ones(n), scale=np.ones(n))
    for f in factors:
        if f in bases:
            continue
        if f.op is Op.CONST:
            v = f.attr("value").array
            if v.shape == ():
                p.block.append(("const", float(v)))
            else:
                p.scale = p.scale * v
        elif f.op is Op.PARAM and f.shape == ():
            p.block.append(("param", int(_flat_index(f, offsets)[0])))
        elif f.op is Op.PARAM and f.shape == (n,):
            p.gammas.append(_flat_index(f, offsets))
        elif f.op is Op.INTERP_FACTOR and f.args[0].op is Op.PARAM and f.args[0].shape == () and f.shape == ():
            idx = int(_flat_index(f.args[0], offsets)[0])
            p.block.append(("interp", f.attr("code"), idx, float(f.attr("lo").array), float(f.attr("hi").array)))
        else:
            raise _NotNormalForm
    if bases:
        base = bases[0]
        parts = base.args if base.op is Op.ADD else (base,)
        nom = np.zeros(n)
        for a in parts:
            if a.op is Op.CONST:
                nom = nom + a.attr("value").array
            elif a.args[0].op is Op.PARAM and a.args[0].shape == ():
                idx = int(_flat_index(a.args[0], offsets)[0])
                lo, mid, hi = (np.broadcast_to(a.attr(k).array, (n,)) for k in ("lo", "nom", "hi"))
                p.shifts.append((a.attr("code"), idx, lo, mid, hi))
            else:
                raise _NotNormalForm
        p.nom = nom
    return p


def _decompose(expr: Node, n: int, m: Module):
    """Channel rate -> (constant per bin, product terms), or raise _NotNormalForm."""
    const = np.zeros(n)
    products = []
    for t in _summands(expr):
        if t.shape not in ((), (n,)):
            raise _NotNormalForm
        if t.op is Op.CONST:
            const = const + t.attr("value").array
        else:
            products.append(_product(t, n, m))
    return const, products


def _gather(values: Node, index) -> Node:
    """values[index], composing a gather of a gather into one."""
    index = np.asarray(index, dtype=np.int64)
    if values.op is Op.GATHER:
        return Node(Op.GATHER, values.args, {"index": _ints(values.attr("index").array[index])})
    return Node(Op.GATHER, (values,), {"index": _ints(index)})


def _segmented(groups: list[tuple[Node, np.ndarray]], nseg: int, op: Op) -> Node:
    """Reduce the elements of several nodes into nseg segments; keys give each element's segment."""
    nodes = [g for g, _ in groups]
    keys = np.concatenate([k for _, k in groups])
    values = nodes[0] if len(nodes) == 1 else Node(Op.CONCAT, tuple(nodes))
    order = np.argsort(keys, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        values = _gather(values, order)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=nseg))])
    if nseg == len(keys) and np.array_equal(offsets, np.arange(nseg + 1)):
        return values
    return Node(op, (values,), {"offsets": _ints(offsets)})


def _gather_params(P: Node, idx) -> Node:
    return Node(Op.GATHER, (P,), {"index": _ints(idx)})


def _fuse_channels(P: Node, chans: list[tuple[np.ndarray, list[_Product]]]) -> Node:
    """The rate of several decomposed channels, bins in the given order."""
    # rows: (product, bin), grouped by output bin
    rows = []  # (product id, local bin)
    bin_of_row = []
    nbins = 0
    products: list[_Product] = []
    for const, prods in chans:
        n = len(const)
        first = len(products)
        products.extend(prods)
        for b in range(n):
            for j in range(len(prods)):
                rows.append((first + j, b))
                bin_of_row.append(nbins + b)
        nbins += n
    R = len(rows)
    row_of = {key: r for r, key in enumerate(rows)}
    const_all = np.concatenate([c for c, _ in chans]) if chans else np.zeros(0)
    if R == 0:
        return _const(const_all)
    nom_rows = np.array([products[p].nom[b] * products[p].scale[b] for p, b in rows])

    # histosys-like shifts, per code
    by_code: dict[str, dict[str, list]] = {}
    for pid, p in enumerate(products):
        for code, idx, lo, mid, hi in p.shifts:
            for b in range(p.n):
                if lo[b] == mid[b] == hi[b]:
                    continue  # shifts nothing in this bin, for every code
                s = p.scale[b]
                e = by_code.setdefault(code, {"row": [], "idx": [], "lo": [], "nom": [], "hi": []})
                e["row"].append(row_of[(pid, b)])
                e["idx"].append(idx)
                e["lo"].append(lo[b] * s)
                e["nom"].append(mid[b] * s)
                e["hi"].append(hi[b] * s)
    parts = []
    if by_code:
        groups = []
        for code in sorted(by_code):
            e = by_code[code]
            attrs = {"code": code, "lo": Const(np.array(e["lo"])), "nom": Const(np.array(e["nom"])),
                     "hi": Const(np.array(e["hi"]))}
            groups.append((Node(Op.INTERP_SHIFT, (_gather_params(P, e["idx"]),), attrs), np.array(e["row"])))
        shifted = _segmented(groups, R, Op.SEGMENT_SUM)
        parts.append(Node(Op.ADD, (shifted, _const(nom_rows))))
    else:
        parts.append(_const(nom_rows))

    # per-sample factors (normfactor, lumi, normsys, constants), per kind
    interp: dict[str, dict[str, list]] = {}
    scal_idx, scal_blk, const_val, const_blk = [], [], [], []
    for pid, p in enumerate(products):
        for f in p.block:
            if f[0] == "interp":
                e = interp.setdefault(f[1], {"blk": [], "idx": [], "lo": [], "hi": []})
                e["blk"].append(pid)
                e["idx"].append(f[2])
                e["lo"].append(f[3])
                e["hi"].append(f[4])
            elif f[0] == "param":
                scal_idx.append(f[1])
                scal_blk.append(pid)
            else:
                const_val.append(f[1])
                const_blk.append(pid)
    groups = []
    for code in sorted(interp):
        e = interp[code]
        attrs = {"code": code, "lo": Const(np.array(e["lo"])), "hi": Const(np.array(e["hi"]))}
        groups.append((Node(Op.INTERP_FACTOR, (_gather_params(P, e["idx"]),), attrs), np.array(e["blk"])))
    if scal_idx:
        groups.append((_gather_params(P, scal_idx), np.array(scal_blk)))
    if const_val:
        groups.append((_const(const_val), np.array(const_blk)))
    if groups:
        per_block = _segmented(groups, len(products), Op.SEGMENT_PROD)
        block_of_row = np.array([p for p, _ in rows])
        if np.array_equal(block_of_row, np.arange(R)) and len(products) == R:
            parts.append(per_block)
        else:
            parts.append(_gather(per_block, block_of_row))

    # per-bin factors (staterror, shapesys, shapefactor)
    g_idx, g_row = [], []
    for pid, p in enumerate(products):
        for gam in p.gammas:
            for b in range(p.n):
                g_idx.append(int(gam[b]))
                g_row.append(row_of[(pid, b)])
    if g_idx:
        parts.append(_segmented([(_gather_params(P, g_idx), np.array(g_row))], R, Op.SEGMENT_PROD))

    nu = parts[0] if len(parts) == 1 else Node(Op.MUL, tuple(parts))
    lam = _segmented([(nu, np.array(bin_of_row))], nbins, Op.SEGMENT_SUM)
    if np.any(const_all != 0):
        lam = Node(Op.ADD, (lam, _const(const_all)))
    return lam


def _fuse_rate(rate: Node, P: Node, m: Module) -> Node:
    pieces = list(rate.args) if rate.op is Op.CONCAT else [rate]
    fused, others = [], []  # (position, ...) in concat order
    for pos, expr in enumerate(pieces):
        n = expr.size
        try:
            const, prods = _decompose(expr, n, m)
            fused.append((pos, const, prods))
        except _NotNormalForm:
            others.append((pos, expr))
    if not fused:
        return rate
    lam = _fuse_channels(P, [(c, p) for _, c, p in fused])
    if not others:
        return lam
    # put unfused channels back in place
    sizes = [p.size for p in pieces]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    new_pos = []
    for pos, _, _ in fused:
        new_pos.extend(range(starts[pos], starts[pos + 1]))
    for pos, _ in others:
        new_pos.extend(range(starts[pos], starts[pos + 1]))
    perm = np.argsort(np.array(new_pos), kind="stable")
    joined = Node(Op.CONCAT, (lam, *[e for _, e in others]))
    return Node(Op.GATHER, (joined,), {"index": _ints(perm)})


def _fuse_constraints(terms: list[Node], op: Op, key: str, P: Node, m: Module) -> list[Node]:
    mine = [t for t in terms if t.op is op and t.args[0].op is Op.PARAM]
    if len(mine) < 1:
        return []
    idx, data_idx, width = [], [], []
    for t in mine:
        k = t.attr("index").array
        idx.extend(_flat_index(t.args[0], m.offsets).tolist() if t.args[0].shape != () else [int(_flat_index(t.args[0], m.offsets)[0])] * len(k))
        data_idx.extend(k.tolist())
        width.extend(np.broadcast_to(t.attr(key).array, k.shape).tolist())
    attrs = {"index": _ints(data_idx), key: Const(np.array(width, dtype=float))}
    return [Node(op, (_gather_params(P, idx),), attrs)]


@register("fuse-modifiers")
def fuse_modifiers(module: Module) -> Module:
    P = Node(Op.PARAMS, (), {"size": module.n_params})
    terms = list(module.terms)
    out = []
    for t in terms:
        if t.op is Op.POISSON:
            out.append(Node(Op.POISSON, (_fuse_rate(t.args[0], P, module),), t.attrs))
    out += _fuse_constraints(terms, Op.GAUSS, "sigma", P, module)
    out += _fuse_constraints(terms, Op.POISSON_AUX, "tau", P, module)
    out += [t for t in terms if t.op not in (Op.POISSON, Op.GAUSS, Op.POISSON_AUX)
            or (t.op is not Op.POISSON and t.args[0].op is not Op.PARAM)]
    return module.with_terms(out)
