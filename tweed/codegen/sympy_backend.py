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
R_SIN, R_COS, R_TANH, R_MAX, R_MIN, R_SIGN, R_STEP, R_COPY, R_ERF = range(11, 20)

_UNARY = {"exp": R_EXP, "log": R_LOG, "sqrt": R_SQRT, "abs": R_ABS, "sin": R_SIN, "cos": R_COS,
          "tanh": R_TANH, "erf": R_ERF}


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
             "tanh": sp.tanh, "erf": sp.erf, "max": sp.Max, "min": sp.Min}[tree[1]]
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
    n_value_ops: int = 0  # ops[:n_value_ops] compute the value alone
    n_grad_ops: int = 0  # ops[:n_grad_ops] the value and the gradient (the rest: the Hessian)


class _Emitter:
    def __init__(self, nargs, symbols):
        self.nregs = nargs
        self.ops: list[tuple[int, int, int, int]] = []
        self.consts: list[float] = []
        self.cache: dict = {s: i for i, s in enumerate(symbols)}
        self.pending: dict = {}  # common subexpressions, emitted where first used

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
        if e in self.pending:
            r = self.emit(self.pending.pop(e))
            self.cache[e] = r
            return r
        if e.is_Number or e.is_number:  # numbers and constant expressions (pi, sqrt(pi), ...)
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
        elif isinstance(e, (sp.sin, sp.cos, sp.tanh, sp.erf)):
            code = {sp.sin: R_SIN, sp.cos: R_COS, sp.tanh: R_TANH, sp.erf: R_ERF}[type(e)]
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
    em.pending = dict(replacements)
    # emitted in order of need: the value's ops first, then the gradient's, then the Hessian's,
    # so that a kernel wanting only the value (or value and gradient) runs a prefix
    value = em.emit(reduced[0])
    n_value = len(em.ops)
    grad = [em.emit(e) for e in reduced[1 : 1 + nargs]]
    n_grad = len(em.ops)
    hess = [em.emit(e) for e in reduced[1 + nargs :]]
    return ExprProgram(
        nargs=nargs, nregs=em.nregs, ops=np.array(em.ops, dtype=np.int64).reshape(-1, 4),
        consts=np.array(em.consts, dtype=float), value=value,
        grad=np.array(grad, dtype=np.int64), hess=np.array(hess, dtype=np.int64),
        n_value_ops=n_value, n_grad_ops=n_grad,
    )


def numpy_function(text: str, nargs: int):
    """(value, gradient list, Hessian list) of the expression as NumPy functions of x0..xk."""
    import sympy as sp

    xs = sp.symbols(f"x0:{nargs}", real=True) if nargs > 1 else (sp.Symbol("x0", real=True),)
    f = to_sympy(expr.parse(text), {str(s): s for s in xs})
    grads = [sp.diff(f, x) for x in xs]
    return (sp.lambdify(xs, f, ["scipy", "numpy"], cse=True), [sp.lambdify(xs, g, ["scipy", "numpy"], cse=True) for g in grads])


def run_program(prog: ExprProgram, inputs: np.ndarray) -> np.ndarray:
    """Evaluate the register program in NumPy (inputs: (nargs,) or (nargs, n)); for tests."""
    from scipy.special import erf as _erf

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
                R_ERF: lambda: _erf(x),
            }[code]()
    return regs


# -- the whole NLL, symbolically ----------------------------------------------------------------

def _interp_factor_sym(code, a, lo, hi):
    import sympy as sp

    from tweed.ir.interp_math import code4_coefficients

    if code == "0":
        return sp.Piecewise((1 + a * (hi - 1), a > 0), (1 + a * (1 - lo), True))
    if code == "1":
        return sp.Piecewise((sp.Float(hi) ** a, a >= 0), (sp.Float(lo) ** (-a), True))
    if code == "2":
        return 1 + _interp_shift_sym("2", a, lo, 1.0, hi)
    c = code4_coefficients(lo, hi)
    poly = 1 + sum(float(c[i]) * a ** (i + 1) for i in range(6))
    return sp.Piecewise((sp.Float(hi) ** a, a >= 1), (sp.Float(lo) ** (-a), a <= -1), (poly, True))


def _interp_shift_sym(code, a, lo, nom, hi):
    import sympy as sp

    if code == "0":
        return sp.Piecewise((a * (hi - nom), a > 0), (a * (nom - lo), True))
    if code == "2":
        q, b = 0.5 * (hi + lo) - nom, 0.5 * (hi - lo)
        return sp.Piecewise(((b + 2 * q) * (a - 1) + (hi - nom), a > 1), ((b - 2 * q) * (a + 1) + (lo - nom), a < -1),
                            (q * a**2 + b * a, True))
    dp, dm = hi - nom, nom - lo
    s, q = 0.5 * (dp + dm), 0.0625 * (dp - dm)
    return sp.Piecewise((a * dp, a > 1), (a * dm, a < -1), (a * s + a**2 * q * (15 + a**2 * (-10 + 3 * a**2)), True))


def symbolic_nll(module):
    """The module's NLL as one sympy expression of the parameter symbols p0..p{n-1} (the data
    are numbers), built node by node from the IR with the interpreter's semantics. For small
    models: every bin is its own expression. Returns (expression, symbols)."""
    import sympy as sp

    from tweed.ir.node import topo_order
    from tweed.ir.ops import Op

    n = module.n_params
    ps = sp.symbols(f"p0:{n}", real=True) if n > 1 else (sp.Symbol("p0", real=True),)
    data = module.data.array
    off = module.offsets
    val: dict[int, list] = {}

    def vec(node, size=None):
        v = val[id(node)]
        return v * size if size is not None and len(v) == 1 else v

    for node in topo_order(list(module.terms)):
        op, at = node.op, dict(node.attrs)
        args = [val[id(a)] for a in node.args]
        if op is Op.CONST:
            out = [sp.Float(x) for x in np.atleast_1d(at["value"].array)]
        elif op is Op.PARAM:
            base = off[at["name"]]
            out = [ps[base + k] for k in range(at.get("start", 0), at.get("stop", 1))]
        elif op is Op.PARAMS:
            out = list(ps)
        elif op is Op.GATHER:
            out = [args[0][i] for i in at["index"].array]
        elif op in (Op.ADD, Op.MUL):
            size = max(len(a) for a in args)
            cols = [a * size if len(a) == 1 else a for a in args]
            out = [sp.Add(*c) if op is Op.ADD else sp.Mul(*c) for c in zip(*cols)]
        elif op is Op.CONCAT:
            out = [x for a in args for x in a]
        elif op in (Op.SEGMENT_SUM, Op.SEGMENT_PROD):
            o = at["offsets"].array
            red = sp.Add if op is Op.SEGMENT_SUM else sp.Mul
            out = [red(*args[0][o[s]:o[s + 1]]) for s in range(len(o) - 1)]
        elif op is Op.EXPR:
            size = max(len(a) for a in args)
            tree = expr.parse(at["expr"])
            out = [to_sympy(tree, {f"x{k}": (a[i] if len(a) > 1 else a[0]) for k, a in enumerate(args)})
                   for i in range(size)]
        elif op is Op.INTERP_FACTOR:
            lo, hi = np.atleast_1d(at["lo"].array), np.atleast_1d(at["hi"].array)
            size = max(len(args[0]), lo.size)
            a = args[0] * size if len(args[0]) == 1 else args[0]
            lo, hi = np.broadcast_to(lo, (size,)), np.broadcast_to(hi, (size,))
            out = [_interp_factor_sym(at["code"], a[i], float(lo[i]), float(hi[i])) for i in range(size)]
        elif op is Op.INTERP_SHIFT:
            lo, nom, hi = (np.atleast_1d(at[k].array) for k in ("lo", "nom", "hi"))
            size = max(len(args[0]), nom.size)
            a = args[0] * size if len(args[0]) == 1 else args[0]
            lo, nom, hi = (np.broadcast_to(x, (size,)) for x in (lo, nom, hi))
            out = [_interp_shift_sym(at["code"], a[i], float(lo[i]), float(nom[i]), float(hi[i]))
                   for i in range(size)]
        elif op is Op.UNBINNED:
            w = data[at["index"].array]
            out = [args[1][0] - sp.Add(*[float(w[i]) * sp.log(d) for i, d in enumerate(args[0]) if w[i] != 0])]
        elif op is Op.LOGNORMAL:
            idx, sig = at["index"].array, np.broadcast_to(at["sigma"].array, at["index"].shape)
            x = args[0] * idx.size if len(args[0]) == 1 else args[0]
            out = [sp.Add(*[((float(np.log(data[d])) - x[i]) / float(sig[i])) ** 2 / 2
                            + float(np.log(sig[i]) + 0.5 * np.log(2 * np.pi) + np.log(data[d]))
                            for i, d in enumerate(idx)])]
        elif op in (Op.POISSON, Op.POISSON_AUX, Op.GAUSS, Op.MVNORMAL):
            idx = at["index"].array
            x = args[0] * idx.size if len(args[0]) == 1 else args[0]
            terms = []
            if op is Op.MVNORMAL:
                P = at["precision"].array.reshape(idx.size, idx.size)
                r = [sp.Float(data[d]) - x[i] for i, d in enumerate(idx)]
                quad = sp.Add(*[float(P[i, j]) * r[i] * r[j] for i in range(idx.size) for j in range(idx.size)])
                terms.append(quad / 2 + 0.5 * idx.size * float(np.log(2 * np.pi)) + 0.5 * float(at["logdet"]))
            for i, d in enumerate(idx if op is not Op.MVNORMAL else ()):
                obs = float(data[d])
                if op is Op.GAUSS:
                    sig = float(np.broadcast_to(at["sigma"].array, idx.shape)[i])
                    terms.append(((obs - x[i]) / sig) ** 2 / 2 + float(np.log(sig) + 0.5 * np.log(2 * np.pi)))
                else:
                    lam = x[i] * float(np.broadcast_to(at["tau"].array, idx.shape)[i]) if op is Op.POISSON_AUX else x[i]
                    from math import lgamma

                    terms.append(lam - obs * sp.log(lam) + lgamma(obs + 1.0) if obs != 0 else lam)
            out = [sp.Add(*terms)]
        else:
            raise NotImplementedError(f"symbolic_nll: no rule for op {op.value}")
        val[id(node)] = out
    return sp.Add(*[val[id(t)][0] for t in module.terms]), ps


def nll_functions(module):
    """NumPy functions (nll(p), grad(p)) of the module, from symbolic_nll: the gradient is
    differentiated symbolically and both are emitted with shared subexpressions (cse)."""
    import sympy as sp

    f, ps = symbolic_nll(module)
    grads = [sp.diff(f, p) for p in ps]
    fn = sp.lambdify([ps], f, ["scipy", "numpy"], cse=True)
    gn = sp.lambdify([ps], grads, ["scipy", "numpy"], cse=True)
    return (lambda p: float(fn(np.asarray(p, float)))), (lambda p: np.array(gn(np.asarray(p, float)), float))
