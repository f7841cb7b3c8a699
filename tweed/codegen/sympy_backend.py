"""The sympy backend: expressions of the IR (`expr` nodes) made symbolic, differentiated, and
emitted as code.

compile_expression() turns an expression of x0..x{k-1} into sympy, derives its gradient and
Hessian symbolically, eliminates common subexpressions across all of them (sympy.cse), and
emits a register program: a flat list of (opcode, destination, a, b) that the generic numba
kernels run per element (so a new expression needs no compilation either). numpy_function()
emits the same value and derivatives as NumPy code (sympy.lambdify), for the IR interpreter's
cross-check and for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tweed.ir import expr

# register-program opcodes (shared with numba_kernels.py)
R_CONST, R_ADD, R_SUB, R_MUL, R_DIV, R_POW, R_NEG, R_EXP, R_LOG, R_SQRT, R_ABS = range(11)
R_SIN, R_COS, R_TANH, R_MAX, R_MIN, R_SIGN, R_STEP, R_COPY = range(11, 19)

_UNARY = {"exp": R_EXP, "log": R_LOG, "sqrt": R_SQRT, "abs": R_ABS, "sin": R_SIN, "cos": R_COS,
          "tanh": R_TANH}


def to_sympy(tree, symbols):
    import sympy as sp

    tag = tree[0]
    if tag == "num":
        return sp.Float(tree[1]) if tree[1] != int(tree[1]) else sp.Integer(int(tree[1]))
    if tag == "var":
        return symbols[tree[1]]
    if tag == "neg":
        return -to_sympy(tree[1], symbols)
    if tag == "call":
        a = [to_sympy(x, symbols) for x in tree[2:]]
        f = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "sin": sp.sin, "cos": sp.cos,
             "tanh": sp.tanh, "max": sp.Max, "min": sp.Min}[tree[1]]
        return f(*a)
    a, b = to_sympy(tree[1], symbols), to_sympy(tree[2], symbols)
    return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "pow": a**b}[tag]


@dataclass(frozen=True)
class ExprProgram:
    nargs: int
    nregs: int
    ops: np.ndarray  # int64 [n_ops, 4]: opcode, dst, a, b (registers 0..nargs-1 hold the inputs)
    consts: np.ndarray  # float64, read by R_CONST (a = index)
    value: int  # register of the value
    grad: np.ndarray  # registers of d/dx_k
    hess: np.ndarray  # registers of d2/dx_i dx_j, i <= j, row by row


class _Emitter:
    def __init__(self, nargs, symbols):
        self.nregs = nargs
        self.ops: list[tuple[int, int, int, int]] = []
        self.consts: list[float] = []
        self.cache: dict = {s: i for i, s in enumerate(symbols)}

    def reg(self):
        self.nregs += 1
        return self.nregs - 1

    def op(self, code, a=0, b=0):
        r = self.reg()
        self.ops.append((code, r, a, b))
        return r

    def const(self, value: float):
        key = ("const", float(value))
        if key not in self.cache:
            self.consts.append(float(value))
            self.cache[key] = self.op(R_CONST, len(self.consts) - 1)
        return self.cache[key]

    def emit(self, e):
        import sympy as sp

        if e in self.cache:
            return self.cache[e]
        if e.is_Number:
            r = self.const(float(e))
        elif isinstance(e, sp.Add):
            args = [self.emit(a) for a in e.args]
            r = args[0]
            for a in args[1:]:
                r = self.op(R_ADD, r, a)
        elif isinstance(e, sp.Mul):
            args = list(e.args)
            if args[0] == -1:
                r = self.op(R_NEG, self.emit(sp.Mul(*args[1:])))
            else:
                regs = [self.emit(a) for a in args]
                r = regs[0]
                for a in regs[1:]:
                    r = self.op(R_MUL, r, a)
        elif isinstance(e, sp.Pow):
            base, ex = e.args
            if ex == -1:
                r = self.op(R_DIV, self.const(1.0), self.emit(base))
            elif ex == 2:
                b = self.emit(base)
                r = self.op(R_MUL, b, b)
            elif ex == sp.Rational(1, 2):
                r = self.op(R_SQRT, self.emit(base))
            elif ex == -sp.Rational(1, 2):
                r = self.op(R_DIV, self.const(1.0), self.op(R_SQRT, self.emit(base)))
            else:
                r = self.op(R_POW, self.emit(base), self.emit(ex))
        elif isinstance(e, sp.exp):
            r = self.op(R_EXP, self.emit(e.args[0]))
        elif isinstance(e, sp.log):
            r = self.op(R_LOG, self.emit(e.args[0]))
        elif isinstance(e, sp.Abs):
            r = self.op(R_ABS, self.emit(e.args[0]))
        elif isinstance(e, sp.sign):
            r = self.op(R_SIGN, self.emit(e.args[0]))
        elif isinstance(e, sp.Heaviside):
            r = self.op(R_STEP, self.emit(e.args[0]))
        elif isinstance(e, (sp.Max, sp.Min)):
            regs = [self.emit(a) for a in e.args]
            r = regs[0]
            for a in regs[1:]:
                r = self.op(R_MAX if isinstance(e, sp.Max) else R_MIN, r, a)
        elif isinstance(e, (sp.sin, sp.cos, sp.tanh)):
            code = {sp.sin: R_SIN, sp.cos: R_COS, sp.tanh: R_TANH}[type(e)]
            r = self.op(code, self.emit(e.args[0]))
        elif isinstance(e, sp.DiracDelta):
            r = self.const(0.0)  # derivative of a step: zero almost everywhere
        else:
            raise NotImplementedError(f"sympy backend: cannot emit {type(e).__name__} ({e})")
        self.cache[e] = r
        return r


@lru_cache(maxsize=1024)
def compile_expression(text: str, nargs: int) -> ExprProgram:
    """Value, gradient and Hessian of an expression of x0..x{nargs-1} as one register program."""
    import sympy as sp

    xs = sp.symbols(f"x0:{nargs}", real=True) if nargs > 1 else (sp.Symbol("x0", real=True),)
    f = to_sympy(expr.parse(text), {str(s): s for s in xs})
    grads = [sp.diff(f, x) for x in xs]
    hess = [sp.diff(grads[i], xs[j]) for i in range(nargs) for j in range(i, nargs)]
    replacements, reduced = sp.cse([f, *grads, *hess])
    em = _Emitter(nargs, xs)
    for sym, sub in replacements:
        em.cache[sym] = em.emit(sub)
    outs = [em.emit(e) for e in reduced]
    return ExprProgram(
        nargs=nargs, nregs=em.nregs, ops=np.array(em.ops, dtype=np.int64).reshape(-1, 4),
        consts=np.array(em.consts, dtype=float), value=outs[0],
        grad=np.array(outs[1 : 1 + nargs], dtype=np.int64),
        hess=np.array(outs[1 + nargs :], dtype=np.int64),
    )


def numpy_function(text: str, nargs: int):
    """(value, gradient list, Hessian list) of the expression as NumPy functions of x0..xk."""
    import sympy as sp

    xs = sp.symbols(f"x0:{nargs}", real=True) if nargs > 1 else (sp.Symbol("x0", real=True),)
    f = to_sympy(expr.parse(text), {str(s): s for s in xs})
    grads = [sp.diff(f, x) for x in xs]
    return (sp.lambdify(xs, f, "numpy", cse=True), [sp.lambdify(xs, g, "numpy", cse=True) for g in grads])


def run_program(prog: ExprProgram, inputs: np.ndarray) -> np.ndarray:
    """Evaluate the register program in NumPy (inputs: (nargs,) or (nargs, n)); for tests."""
    regs = [None] * prog.nregs
    for k in range(prog.nargs):
        regs[k] = np.asarray(inputs[k], dtype=float)
    with np.errstate(all="ignore"):
        for code, d, a, b in prog.ops:
            x, y = regs[a] if code != R_CONST else None, regs[b]
            regs[d] = {
                R_CONST: lambda: prog.consts[a], R_ADD: lambda: x + y, R_SUB: lambda: x - y,
                R_MUL: lambda: x * y, R_DIV: lambda: x / y, R_POW: lambda: np.power(x, y),
                R_NEG: lambda: -x, R_EXP: lambda: np.exp(x), R_LOG: lambda: np.log(x),
                R_SQRT: lambda: np.sqrt(x), R_ABS: lambda: np.abs(x), R_SIN: lambda: np.sin(x),
                R_COS: lambda: np.cos(x), R_TANH: lambda: np.tanh(x), R_MAX: lambda: np.maximum(x, y),
                R_MIN: lambda: np.minimum(x, y), R_SIGN: lambda: np.sign(x),
                R_STEP: lambda: np.where(x > 0, 1.0, np.where(x < 0, 0.0, 0.5)), R_COPY: lambda: x,
            }[code]()
    return regs
