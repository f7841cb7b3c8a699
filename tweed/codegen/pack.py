"""Packing a module into a flat program for the generic kernels: a model is data, a kernel is code.

Every computing node becomes one instruction writing a contiguous slot of one float buffer.
Gathers, concatenations and parameter slices emit no instruction: they are *views*, lists of
buffer positions that the consuming instruction reads through (so a gather feeding a segment
product costs one indexed load, not a copy). Every instruction input is such a position list.

Interpolation instructions group their entries by the parameter they read, so within a group
alpha is one number: the region (inside the polynomial or outside) and the basis functions
(alpha^k, code4p's alpha^2(15-10alpha^2+3alpha^4), ...) are computed once per group, and the
per-entry work is a dot product with precomputed coefficients, the same loop for every code.

Per-op lowering rules live in LOWER; a missing rule raises NotImplementedError naming the op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweed.ir.interp_math import code4_coefficients
from tweed.ir.module import Module
from tweed.ir.node import Node, topo_order
from tweed.ir.ops import TERM_OPS, Op

# opcodes (shared with numba_kernels.py)
OP_PARAMS, OP_INTERP, OP_ADD, OP_MUL, OP_SEGSUM, OP_SEGPROD = range(6)
OP_POISSON, OP_GAUSS, OP_POISSON_AUX = range(6, 9)
OP_EXPR, OP_MVN, OP_UNBINNED, OP_LOGNORMAL = 9, 10, 11, 12
TERM_OPCODES = (OP_POISSON, OP_GAUSS, OP_POISSON_AUX, OP_MVN, OP_UNBINNED, OP_LOGNORMAL)

# instruction fields (F_CODE: the interpolation code; for a segment product, where the copy of
# its gathered entries sits in the value buffer; F_FLAGS: the bits below)
F_OP, F_OUT, F_SIZE, F_IP, F_FP, F_CODE, F_FLAGS = range(7)
N_FIELDS = 7
# ZERO_ADJ: a first-order reverse sweep reads this instruction's output adjoints, which must be
# zero before it (the others are never read, or are assigned before they are read);
# SOLE: a segment sum whose entries nothing else reads: its first-order reverse assigns their
# adjoints instead of adding to them
ZERO_ADJ, SOLE = 1, 2
# the minimiser (numba_minimize.py) stops after this many line searches in a row cut short by
# non-finite values (a wall)
WALL_STREAK = 6

# interpolation codes: F* multiplicative (interp_factor), S* additive (interp_shift)
F0, F1, F2, F4, S0, S2, S4, S4P = range(8)
CODES = {
    (Op.INTERP_FACTOR, "0"): F0, (Op.INTERP_FACTOR, "1"): F1, (Op.INTERP_FACTOR, "2"): F2,
    (Op.INTERP_FACTOR, "4"): F4, (Op.INTERP_SHIFT, "0"): S0, (Op.INTERP_SHIFT, "2"): S2,
    (Op.INTERP_SHIFT, "4"): S4, (Op.INTERP_SHIFT, "4p"): S4P,
}
# region kinds: value = c0 + sum_k C_k b_k(alpha)  (POLY)  or  s * exp(alpha L) + o  (EXP)
UNUSED, POLY, EXP = 0, 1, 2
# interpolation header, per region: kind, K, offset of its coefficient blocks, c0 (below)
C0_ARRAY, C0_ZERO, C0_ONE = 0, 1, 2
REGION_INTS = 4
DOWN, INSIDE, UP = 0, 1, 2


@dataclass(frozen=True)
class Program:
    ins: np.ndarray  # int64 [n_ins, N_FIELDS]
    ip: np.ndarray  # int32 pool: positions, offsets, headers (half the bytes of int64: the
    # sweeps read ~40 kB less per gradient on 1Lbb)
    fp: np.ndarray  # float64 pool: coefficients, widths
    val0: np.ndarray  # float64 value buffer template (constants filled in)
    n_params: int
    n_data: int
    params_off: int  # where the parameter vector sits in the value buffer

    @property
    def arrays(self) -> tuple:
        return (self.ins, self.ip, self.fp)

    @property
    def nbytes(self) -> int:
        return self.ins.nbytes + self.ip.nbytes + self.fp.nbytes + self.val0.nbytes


# -- interpolation coefficients per region -----------------------------------------------------

def _regions(code: int, lo, nom, hi):
    """[(kind, arrays)] for DOWN, INSIDE, UP: POLY arrays are [c0, C_1..C_K], EXP [s, o, L]."""
    n = lo.size
    one, zero = np.ones(n), np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if code == F0:
            return [(POLY, [one, 1.0 - lo]), (UNUSED, []), (POLY, [one, hi - 1.0])]
        if code == F1:
            return [(EXP, [one, zero, -np.log(lo)]), (UNUSED, []), (EXP, [one, zero, np.log(hi)])]
        if code in (F2, S2):
            base = one if code == F2 else zero
            a = 0.5 * (hi + lo) - nom
            b = 0.5 * (hi - lo)
            up_c0 = base + (hi - nom) - (b + 2 * a)
            dn_c0 = base + (lo - nom) + (b - 2 * a)
            return [(POLY, [dn_c0, b - 2 * a]), (POLY, [base, b, a]), (POLY, [up_c0, b + 2 * a])]
        if code == F4:
            return [(EXP, [one, zero, -np.log(lo)]), (POLY, [one, *code4_coefficients(lo, hi).T]),
                    (EXP, [one, zero, np.log(hi)])]
        if code == S0:
            return [(POLY, [zero, nom - lo]), (UNUSED, []), (POLY, [zero, hi - nom])]
        if code == S4P:
            dp, dm = hi - nom, nom - lo
            return [(POLY, [zero, dm]), (POLY, [zero, 0.5 * (dp + dm), 0.0625 * (dp - dm)]),
                    (POLY, [zero, dp])]
        if code == S4:
            ok = nom != 0
            safe = np.where(ok, nom, 1.0)
            u, d = hi / safe, lo / safe
            a = code4_coefficients(d, u) * nom[:, None]
            lu = np.where(ok, np.log(np.where(ok, u, 1.0)), 0.0)
            ld = np.where(ok, -np.log(np.where(ok, d, 1.0)), 0.0)
            s = np.where(ok, nom, 0.0)
            return [(EXP, [s, -s, ld]), (POLY, [zero, *np.where(ok[:, None], a, 0.0).T]),
                    (EXP, [s, -s, lu])]
    raise AssertionError(code)


class _Packer:
    def __init__(self, module: Module):
        self.m = module
        self.rows: list[list[int]] = []
        self.ip: list[np.ndarray] = []
        self.fp: list[np.ndarray] = []
        self.n_ip = 0
        self.n_fp = 0
        self.val: list[np.ndarray] = []
        self.n_val = 0
        self.loc: dict[int, np.ndarray] = {}  # node id -> buffer positions of its elements
        self.reads: list[np.ndarray] = []  # per row: the buffer positions the row reads
        self.params_off = self._slot(np.zeros(module.n_params))

    def _slot(self, init: np.ndarray) -> int:
        off = self.n_val
        self.val.append(np.asarray(init, dtype=float).ravel())
        self.n_val += self.val[-1].size
        return off

    def _ints(self, arr) -> int:
        arr = np.asarray(arr, dtype=np.int64).ravel()
        off = self.n_ip
        self.ip.append(arr)
        self.n_ip += arr.size
        return off

    def _floats(self, arr) -> int:
        arr = np.asarray(arr, dtype=float).ravel()
        off = self.n_fp
        self.fp.append(arr)
        self.n_fp += arr.size
        return off

    def positions(self, node: Node, n: int | None = None) -> np.ndarray:
        pos = self.loc[id(node)]
        if n is not None and pos.size != n:
            pos = np.broadcast_to(pos, (n,)) if pos.size == 1 else pos
        return np.ascontiguousarray(pos, dtype=np.int64)

    def emit(self, node: Node, opcode: int, ints, floats=None, code: int = 0, size: int | None = None,
             reads=()) -> int:
        size = max(node.size, 1) if size is None else size
        self.reads.append(np.concatenate([np.ravel(r) for r in reads]).astype(np.int64) if len(reads)
                          else np.zeros(0, np.int64))
        out = self._slot(np.zeros(size)) if node.op not in TERM_OPS else self._slot(np.zeros(1))
        ipo = self._ints(ints)
        fpo = self._floats(floats) if floats is not None else self.n_fp
        self.rows.append([opcode, out, size, ipo, fpo, code, 0])
        self.loc[id(node)] = out + np.arange(size if node.op not in TERM_OPS else 1)
        return out

    def flags(self) -> np.ndarray:
        """F_FLAGS of every row, from how often each buffer position is read."""
        counts = np.bincount(np.concatenate(self.reads), minlength=self.n_val)
        flags = np.zeros(len(self.rows), np.int64)
        assigned = np.zeros(self.n_val, bool)
        for k, (row, reads) in enumerate(zip(self.rows, self.reads)):
            if row[0] == OP_SEGSUM and reads.size and np.all(counts[reads] == 1):
                flags[k] |= SOLE
                assigned[reads] = True
        for k, row in enumerate(self.rows):
            op, out, size = row[0], row[1], row[2]
            if op not in TERM_OPCODES and not np.all(assigned[out : out + size]):
                flags[k] |= ZERO_ADJ
        return flags

    def program(self) -> Program:
        rows = np.array(self.rows, dtype=np.int64).reshape(-1, N_FIELDS)
        rows[:, F_FLAGS] = self.flags()
        return Program(
            ins=rows,
            ip=_int32(np.concatenate(self.ip + [np.zeros(1, np.int64)])),
            fp=np.concatenate(self.fp + [np.zeros(1)]).astype(float),
            val0=np.concatenate(self.val),
            n_params=self.m.n_params,
            n_data=self.m.data.array.size,
            params_off=self.params_off,
        )


def _int32(ip: np.ndarray) -> np.ndarray:
    info = np.iinfo(np.int32)
    if ip.size and (ip.max() > info.max or ip.min() < info.min):
        raise ValueError(f"model too large for the packed program: a position or offset of {ip.max()} "
                         "does not fit in 32 bits")
    return ip.astype(np.int32)


def _lower_const(p: _Packer, n: Node):
    arr = np.atleast_1d(n.attr("value").array)
    p.loc[id(n)] = p._slot(arr) + np.arange(arr.size)


def _lower_param(p: _Packer, n: Node):
    start = p.params_off + p.m.offsets[n.attr("name")] + (n.attr("start") or 0)
    p.loc[id(n)] = start + np.arange(max(n.size, 1))


def _lower_params(p: _Packer, n: Node):
    p.loc[id(n)] = p.params_off + np.arange(p.m.n_params)


def _lower_gather(p: _Packer, n: Node):
    p.loc[id(n)] = p.positions(n.args[0])[n.attr("index").array]


def _lower_concat(p: _Packer, n: Node):
    p.loc[id(n)] = np.concatenate([p.positions(a) for a in n.args])


def _lower_interp(p: _Packer, n: Node):
    code = CODES[(n.op, n.attr("code"))]
    size = max(n.size, 1)
    alpha = p.positions(n.args[0], size)
    keys = ("lo", "hi") if n.op is Op.INTERP_FACTOR else ("lo", "nom", "hi")
    arrs = {k: np.broadcast_to(n.attr(k).array, (size,)).astype(float) for k in keys}
    nom = arrs.get("nom", np.ones(size))
    order = np.argsort(alpha, kind="stable")  # group the entries by the parameter they read
    rank = np.empty(size, dtype=np.int64)
    rank[order] = np.arange(size)
    a_sorted = alpha[order]
    starts = np.flatnonzero(np.r_[True, a_sorted[1:] != a_sorted[:-1]])
    groups = np.r_[starts, size]
    regions = _regions(code, arrs["lo"][order], nom[order], arrs["hi"][order])
    header, blocks, fpos = [], [], 0
    for kind, arrays in regions:
        # c0 the same for every entry (0 for shifts, 1 for factors inside the polynomial):
        # the forward loop then does not load it
        c0 = C0_ARRAY
        if kind == POLY and np.all(arrays[0] == 0.0):
            c0 = C0_ZERO
        elif kind == POLY and np.all(arrays[0] == 1.0):
            c0 = C0_ONE
        header += [kind, max(len(arrays) - 1, 0) if kind == POLY else 0, fpos, c0]
        for a in arrays:
            blocks.append(a)
            fpos += size
    ints = [starts.size, *header, *a_sorted[starts], *groups]
    out = p.emit(n, OP_INTERP, ints, floats=np.concatenate(blocks) if blocks else np.zeros(0),
                 code=code, size=size, reads=[a_sorted[starts]])
    p.loc[id(n)] = out + rank  # element i of the node sits at its sorted position


def _lower_nary(opcode: int):
    def rule(p: _Packer, n: Node):
        size = max(n.size, 1)
        pos = [p.positions(a, size) for a in n.args]
        p.emit(n, opcode, [len(pos), *np.concatenate(pos)], reads=pos)

    return rule


def _lower_segment(opcode: int):
    def rule(p: _Packer, n: Node):
        off = n.attr("offsets").array
        # a product keeps a copy of its gathered entries (in segment order) in the value
        # buffer, at the offset in its code field: the reverse sweep reads them contiguously
        code = p._slot(np.zeros(max(int(off[-1]), 1))) if opcode == OP_SEGPROD else 0
        pos = p.positions(n.args[0])
        p.emit(n, opcode, [off.size - 1, *off, *pos], code=code, reads=[pos])

    return rule


def _lower_expr(p: _Packer, n: Node):
    """An expression: its sympy-derived register program (value, gradient, Hessian) and the
    positions of its inputs, broadcast to the output size."""
    from tweed.codegen.sympy_backend import compile_expression

    size = max(n.size, 1)
    prog = compile_expression(n.attr("expr"), len(n.args))
    pos = [p.positions(a, size) for a in n.args]
    ints = [prog.nargs, prog.nregs, prog.ops.shape[0], prog.value, prog.n_value_ops, prog.n_grad_ops,
            *prog.grad, *prog.hess, *prog.ops.ravel(), *np.concatenate(pos)]
    p.emit(n, OP_EXPR, ints, floats=prog.consts if prog.consts.size else np.zeros(1), reads=pos)


def _lower_mvn(p: _Packer, n: Node):
    idx = n.attr("index").array
    k = idx.size
    pos = p.positions(n.args[0], k)
    const = 0.5 * (k * np.log(2 * np.pi) + float(n.attr("logdet")))
    p.emit(n, OP_MVN, [k, *idx, *pos], floats=np.concatenate([n.attr("precision").array, [const]]), size=1,
           reads=[pos])


def _lower_unbinned(p: _Packer, n: Node):
    """ints: [n points, data indices..., density positions..., rate position]; floats: grid."""
    idx = n.attr("index").array
    grid = np.asarray(n.attr("grid").array, dtype=float)
    dens = p.positions(n.args[0], idx.size)
    rate = p.positions(n.args[1])[:1]
    p.emit(n, OP_UNBINNED, [idx.size, *idx, *dens, *rate], floats=grid if grid.size else np.zeros(1), size=1,
           reads=[dens, rate])


def _lower_term(opcode: int):
    def rule(p: _Packer, n: Node):
        idx = n.attr("index").array
        k = idx.size
        pos = p.positions(n.args[0], k)
        floats = None
        if opcode in (OP_GAUSS, OP_LOGNORMAL):
            sigma = np.broadcast_to(n.attr("sigma").array, (k,)).astype(float)
            const = float(np.sum(np.log(sigma)) + k * 0.5 * np.log(2 * np.pi))
            floats = np.concatenate([1.0 / sigma**2, [const]])
        elif opcode == OP_POISSON_AUX:
            floats = np.broadcast_to(n.attr("tau").array, (k,)).astype(float)
        p.emit(n, opcode, [k, *idx, *pos], floats=floats, size=1, reads=[pos])

    return rule


LOWER = {
    Op.CONST: _lower_const,
    Op.PARAM: _lower_param,
    Op.PARAMS: _lower_params,
    Op.GATHER: _lower_gather,
    Op.CONCAT: _lower_concat,
    Op.INTERP_FACTOR: _lower_interp,
    Op.INTERP_SHIFT: _lower_interp,
    Op.ADD: _lower_nary(OP_ADD),
    Op.MUL: _lower_nary(OP_MUL),
    Op.SEGMENT_SUM: _lower_segment(OP_SEGSUM),
    Op.SEGMENT_PROD: _lower_segment(OP_SEGPROD),
    Op.POISSON: _lower_term(OP_POISSON),
    Op.GAUSS: _lower_term(OP_GAUSS),
    Op.POISSON_AUX: _lower_term(OP_POISSON_AUX),
    Op.EXPR: _lower_expr,
    Op.MVNORMAL: _lower_mvn,
    Op.LOGNORMAL: _lower_term(OP_LOGNORMAL),
    Op.UNBINNED: _lower_unbinned,
}


def pack(module: Module) -> Program:
    """The module as a flat program; the parameter copy comes first, the terms last."""
    p = _Packer(module)
    p.rows.append([OP_PARAMS, p.params_off, module.n_params, p._ints([0]), 0, 0, 0])
    p.reads.append(np.zeros(0, np.int64))
    for node in topo_order(list(module.terms)):
        rule = LOWER.get(node.op)
        if rule is None:
            raise NotImplementedError(f"numba backend: no lowering rule for op {node.op.value}")
        if node.op not in TERM_OPS:
            rule(p, node)
    for t in module.terms:
        LOWER[t.op](p, t)
    return p.program()
