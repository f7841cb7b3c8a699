"""Packing a module into a flat program for the generic kernels: a model is data, a kernel is code.

Every node becomes one instruction writing into a slice of one float buffer. An instruction is
a row of `ins` (opcode, output slice, argument list, int and float payload slices, sub-code).
Per-op lowering rules live in LOWER; a missing rule raises NotImplementedError naming the op.
Interpolation coefficients are precomputed here, so kernels only evaluate polynomials and exps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweed.ir.interp_math import code4_coefficients
from tweed.ir.module import Module
from tweed.ir.node import Node, topo_order
from tweed.ir.ops import TERM_OPS, Op

# opcodes shared with numba_kernels.py
OP_CONST, OP_PARAM, OP_GATHER, OP_FACTOR, OP_SHIFT, OP_ADD, OP_MUL, OP_CONCAT = range(8)
OP_SEGSUM, OP_SEGPROD, OP_POISSON, OP_GAUSS, OP_POISSON_AUX = range(8, 13)

# instruction fields
F_OP, F_OUT, F_SIZE, F_ARG, F_NARG, F_IP, F_NIP, F_FP, F_NFP, F_CODE = range(10)
N_FIELDS = 10

# interpolation sub-codes
CODES = {"0": 0, "1": 1, "2": 2, "4": 4, "4p": 5}
FACTOR_WIDTH = {0: 2, 1: 2, 2: 4, 4: 8}  # floats per entry
SHIFT_WIDTH = {0: 2, 2: 4, 4: 9, 5: 4}


@dataclass(frozen=True)
class Program:
    ins: np.ndarray  # int64 [n_ins, N_FIELDS]
    argv: np.ndarray  # int64 [2 * n_args]: (offset, size) of every argument value
    ip: np.ndarray  # int64 pool
    fp: np.ndarray  # float64 pool
    val0: np.ndarray  # float64 buffer template (constants filled in)
    n_params: int
    n_data: int

    @property
    def arrays(self) -> tuple:
        return (self.ins, self.argv, self.ip, self.fp, self.val0)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


def _factor_coeffs(code: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if code == 0:
            c = np.stack([hi - 1.0, 1.0 - lo], axis=-1)
        elif code == 1:
            c = np.stack([np.log(hi), np.log(lo)], axis=-1)
        elif code == 2:
            a = 0.5 * (hi + lo) - 1.0
            b = 0.5 * (hi - lo)
            c = np.stack([a, b, hi - 1.0, lo - 1.0], axis=-1)
        else:
            c = np.concatenate(
                [code4_coefficients(lo, hi), np.stack([np.log(hi), np.log(lo)], axis=-1)], axis=-1
            )
    return c


def _shift_coeffs(code: int, lo, nom, hi) -> np.ndarray:
    if code == 0:
        return np.stack([hi - nom, nom - lo], axis=-1)
    if code == 2:
        a = 0.5 * (hi + lo) - nom
        b = 0.5 * (hi - lo)
        return np.stack([a, b, hi - nom, lo - nom], axis=-1)
    if code == 5:
        dp, dm = hi - nom, nom - lo
        return np.stack([dp, dm, 0.5 * (dp + dm), 0.0625 * (dp - dm)], axis=-1)
    # code 4 on ratios; a zero nominal shifts nothing (all coefficients zero)
    ok = nom != 0
    safe = np.where(ok, nom, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u, d = hi / safe, lo / safe
        c = np.concatenate(
            [nom[:, None], code4_coefficients(d, u), np.stack([np.log(u), np.log(d)], axis=-1)], axis=-1
        )
    c[~ok] = 0.0
    return c


class _Packer:
    def __init__(self, module: Module):
        self.m = module
        self.rows: list[list[int]] = []
        self.argv: list[int] = []
        self.ip: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        self.fp: list[np.ndarray] = [np.zeros(0)]
        self.n_ip = 0
        self.n_fp = 0
        self.val: list[np.ndarray] = []
        self.n_val = 0
        self.where: dict[int, tuple[int, int]] = {}

    def _slot(self, node: Node, init: np.ndarray | None = None) -> int:
        size = max(node.size, 1)
        off = self.n_val
        self.val.append(np.zeros(size) if init is None else np.broadcast_to(init, (size,)).astype(float))
        self.n_val += size
        self.where[id(node)] = (off, size)
        return off

    def _ints(self, arr) -> tuple[int, int]:
        arr = np.asarray(arr, dtype=np.int64).ravel()
        off = self.n_ip
        self.ip.append(arr)
        self.n_ip += arr.size
        return off, arr.size

    def _floats(self, arr) -> tuple[int, int]:
        arr = np.asarray(arr, dtype=float).ravel()
        off = self.n_fp
        self.fp.append(arr)
        self.n_fp += arr.size
        return off, arr.size

    def emit(self, node: Node, opcode: int, *, ints=None, floats=None, code: int = 0, init=None):
        out = self._slot(node, init)
        arg0 = len(self.argv) // 2
        for a in node.args:
            self.argv.extend(self.where[id(a)])
        ipo, nip = self._ints(ints) if ints is not None else (0, 0)
        fpo, nfp = self._floats(floats) if floats is not None else (0, 0)
        self.rows.append([opcode, out, max(node.size, 1), arg0, len(node.args), ipo, nip, fpo, nfp, code])

    def program(self) -> Program:
        ins = np.array(self.rows, dtype=np.int64).reshape(-1, N_FIELDS)
        return Program(
            ins=ins,
            argv=np.array(self.argv, dtype=np.int64),
            ip=np.concatenate(self.ip).astype(np.int64),
            fp=np.concatenate(self.fp).astype(float),
            val0=np.concatenate(self.val) if self.val else np.zeros(0),
            n_params=self.m.n_params,
            n_data=self.m.data.array.size,
        )


def _lower_const(p: _Packer, n: Node):
    p.emit(n, OP_CONST, init=n.attr("value").array)


def _lower_param(p: _Packer, n: Node):
    start = p.m.offsets[n.attr("name")] + (n.attr("start") or 0)
    p.emit(n, OP_PARAM, ints=[start])


def _lower_params(p: _Packer, n: Node):
    p.emit(n, OP_PARAM, ints=[0])


def _lower_gather(p: _Packer, n: Node):
    p.emit(n, OP_GATHER, ints=n.attr("index").array)


def _lower_factor(p: _Packer, n: Node):
    code = CODES[n.attr("code")]
    size = max(n.size, 1)
    lo = np.broadcast_to(n.attr("lo").array, (size,)).astype(float)
    hi = np.broadcast_to(n.attr("hi").array, (size,)).astype(float)
    p.emit(n, OP_FACTOR, floats=_factor_coeffs(code, lo, hi), code=code)


def _lower_shift(p: _Packer, n: Node):
    code = CODES[n.attr("code")]
    size = max(n.size, 1)
    lo, nom, hi = (np.broadcast_to(n.attr(k).array, (size,)).astype(float) for k in ("lo", "nom", "hi"))
    p.emit(n, OP_SHIFT, floats=_shift_coeffs(code, lo, nom, hi), code=code)


def _lower_simple(opcode: int):
    def rule(p: _Packer, n: Node):
        p.emit(n, opcode)

    return rule


def _lower_segment(opcode: int):
    def rule(p: _Packer, n: Node):
        p.emit(n, opcode, ints=n.attr("offsets").array)

    return rule


def _lower_poisson(p: _Packer, n: Node):
    p.emit(n, OP_POISSON, ints=n.attr("index").array)


def _lower_gauss(p: _Packer, n: Node):
    k = n.attr("index").shape[0]
    sigma = np.broadcast_to(n.attr("sigma").array, (k,)).astype(float)
    const = float(np.sum(np.log(sigma)) + k * 0.5 * np.log(2 * np.pi))
    p.emit(n, OP_GAUSS, ints=n.attr("index").array, floats=np.concatenate([1.0 / sigma**2, [const]]))


def _lower_poisson_aux(p: _Packer, n: Node):
    k = n.attr("index").shape[0]
    tau = np.broadcast_to(n.attr("tau").array, (k,)).astype(float)
    p.emit(n, OP_POISSON_AUX, ints=n.attr("index").array, floats=tau)


LOWER = {
    Op.CONST: _lower_const,
    Op.PARAM: _lower_param,
    Op.PARAMS: _lower_params,
    Op.GATHER: _lower_gather,
    Op.INTERP_FACTOR: _lower_factor,
    Op.INTERP_SHIFT: _lower_shift,
    Op.ADD: _lower_simple(OP_ADD),
    Op.MUL: _lower_simple(OP_MUL),
    Op.CONCAT: _lower_simple(OP_CONCAT),
    Op.SEGMENT_SUM: _lower_segment(OP_SEGSUM),
    Op.SEGMENT_PROD: _lower_segment(OP_SEGPROD),
    Op.POISSON: _lower_poisson,
    Op.GAUSS: _lower_gauss,
    Op.POISSON_AUX: _lower_poisson_aux,
}


def pack(module: Module) -> Program:
    """The module as a flat program; terms come last, in module order."""
    p = _Packer(module)
    for node in topo_order(list(module.terms)):
        rule = LOWER.get(node.op)
        if rule is None:
            raise NotImplementedError(f"numba backend: no lowering rule for op {node.op.value}")
        if node.op in TERM_OPS:
            continue
        rule(p, node)
    for t in module.terms:
        LOWER[t.op](p, t)
    return p.program()
