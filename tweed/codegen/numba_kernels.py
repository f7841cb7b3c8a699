"""Generic numba kernels over a packed program (pack.py). They compile once per machine
(cache=True) and serve every model: a new workspace or signal patch costs no compile.

_fwd runs the instructions forward and sums the terms (the NLL); _rev propagates adjoints
backwards (reverse mode written per op) for the exact gradient, and, with second=True, the
adjoint tangents of forward-over-reverse for an exact Hessian-vector product. _jvp pushes a
tangent forward. The Hessian is built column by column from exact Hessian-vector products,
in parallel over columns.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tweed.codegen.pack import (
    F_ARG,
    F_CODE,
    F_FP,
    F_IP,
    F_NARG,
    F_NIP,
    F_OP,
    F_OUT,
    F_SIZE,
    OP_ADD,
    OP_CONCAT,
    OP_CONST,
    OP_FACTOR,
    OP_GATHER,
    OP_GAUSS,
    OP_MUL,
    OP_PARAM,
    OP_POISSON,
    OP_POISSON_AUX,
    OP_SEGPROD,
    OP_SEGSUM,
    OP_SHIFT,
)

OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)
INLINE = dict(OPTS, inline="always")


@njit(**INLINE)
def _poly6(c, o, a):
    """1 + sum a_i alpha^i and its first two derivatives (coefficients c[o:o+6])."""
    a1, a2, a3, a4, a5, a6 = c[o], c[o + 1], c[o + 2], c[o + 3], c[o + 4], c[o + 5]
    v = 1.0 + a * (a1 + a * (a2 + a * (a3 + a * (a4 + a * (a5 + a * a6)))))
    d1 = a1 + a * (2.0 * a2 + a * (3.0 * a3 + a * (4.0 * a4 + a * (5.0 * a5 + a * 6.0 * a6))))
    d2 = 2.0 * a2 + a * (6.0 * a3 + a * (12.0 * a4 + a * (20.0 * a5 + a * 30.0 * a6)))
    return v, d1, d2


@njit(**INLINE)
def _code4(c, o, a):
    """pyhf code4 factor: exponential outside |alpha| >= 1, 6th-order polynomial inside."""
    if a >= 1.0:
        ln = c[o + 6]
        v = math.exp(a * ln)
        return v, ln * v, ln * ln * v
    if a <= -1.0:
        ln = c[o + 7]
        v = math.exp(-a * ln)
        return v, -ln * v, ln * ln * v
    return _poly6(c, o, a)


@njit(**INLINE)
def _f0(c, o, a):
    if a > 0.0:
        return 1.0 + a * c[o], c[o], 0.0
    return 1.0 + a * c[o + 1], c[o + 1], 0.0


@njit(**INLINE)
def _f1(c, o, a):
    if a >= 0.0:
        ln = c[o]
        v = math.exp(a * ln)
        return v, ln * v, ln * ln * v
    ln = c[o + 1]
    v = math.exp(-a * ln)
    return v, -ln * v, ln * ln * v


@njit(**INLINE)
def _f2(c, o, a):
    """ROOT's code 2 (continuous at |alpha| = 1), factor form."""
    v, d1, d2 = _s2(c, o, a)
    return 1.0 + v, d1, d2


@njit(**INLINE)
def _f4(c, o, a):
    return _code4(c, o, a)


@njit(**INLINE)
def _s0(c, o, a):
    if a > 0.0:
        return a * c[o], c[o], 0.0
    return a * c[o + 1], c[o + 1], 0.0


@njit(**INLINE)
def _s2(c, o, a):
    qa, qb = c[o], c[o + 1]
    if a > 1.0:
        return (qb + 2.0 * qa) * (a - 1.0) + c[o + 2], qb + 2.0 * qa, 0.0
    if a < -1.0:
        return (qb - 2.0 * qa) * (a + 1.0) + c[o + 3], qb - 2.0 * qa, 0.0
    return qa * a * a + qb * a, 2.0 * qa * a + qb, 2.0 * qa


@njit(**INLINE)
def _s4(c, o, a):
    """Bin-wise code 4 on ratios: nom * (f - 1); a zero nominal shifts nothing."""
    nom = c[o]
    if nom == 0.0:
        return 0.0, 0.0, 0.0
    v, d1, d2 = _code4(c, o + 1, a)
    return nom * (v - 1.0), nom * d1, nom * d2


@njit(**INLINE)
def _s4p(c, o, a):
    """pyhf code4p: 6th-order polynomial inside |alpha| <= 1, linear outside."""
    if a > 1.0:
        return a * c[o], c[o], 0.0
    if a < -1.0:
        return a * c[o + 1], c[o + 1], 0.0
    s, q = c[o + 2], c[o + 3]
    a2 = a * a
    v = a * s + a2 * q * (15.0 + a2 * (-10.0 + 3.0 * a2))
    d1 = s + q * a * (30.0 + a2 * (-40.0 + 18.0 * a2))
    d2 = q * (30.0 + a2 * (-120.0 + 90.0 * a2))
    return v, d1, d2


@njit(**INLINE)
def _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second):
    """What an interp instruction does with f, f', f'' at element i. mode: 0 fwd, 1 jvp, 2 rev."""
    if mode == 0:
        val[out + i] = v
    elif mode == 1:
        tv[out + i] = d1 * tv[src + i * step]
    else:
        ay = adj[out + i]
        adj[src + i * step] += d1 * ay
        if second:
            tadj[src + i * step] += d1 * tadj[out + i] + d2 * tv[src + i * step] * ay


@njit(**OPTS)
def _interp(mode, is_shift, code, c, b, val, tv, adj, tadj, src, step, out, n, second):
    """One interp instruction: a tight loop per code (the evaluators are inlined)."""
    if is_shift:
        if code == 5:
            for i in range(n):
                v, d1, d2 = _s4p(c, b + 4 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        elif code == 0:
            for i in range(n):
                v, d1, d2 = _s0(c, b + 2 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        elif code == 2:
            for i in range(n):
                v, d1, d2 = _s2(c, b + 4 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        else:
            for i in range(n):
                v, d1, d2 = _s4(c, b + 9 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
    else:
        if code == 4:
            for i in range(n):
                v, d1, d2 = _f4(c, b + 8 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        elif code == 1:
            for i in range(n):
                v, d1, d2 = _f1(c, b + 2 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        elif code == 0:
            for i in range(n):
                v, d1, d2 = _f0(c, b + 2 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)
        else:
            for i in range(n):
                v, d1, d2 = _f2(c, b + 4 * i, val[src + i * step])
                _store(mode, i, v, d1, d2, val, tv, adj, tadj, src, step, out, second)


@njit(**OPTS)
def _arg(argv, a0, j):
    """(offset, step) of argument j: step 0 broadcasts a scalar."""
    return argv[2 * (a0 + j)], 1 if argv[2 * (a0 + j) + 1] > 1 else 0


@njit(**OPTS)
def _term_fwd(op, ip, fp, b, m, f, val, src, step, data, lgam):
    t = 0.0
    if op == OP_GAUSS:
        for i in range(m):
            r = data[ip[b + i]] - val[src + i * step]
            t += 0.5 * r * r * fp[f + i]
        return t + fp[f + m]
    for i in range(m):
        d = ip[b + i]
        lam = val[src + i * step]
        if op == OP_POISSON_AUX:
            lam = lam * fp[f + i]
        nobs = data[d]
        if nobs == 0.0:
            t += lam
        else:
            t += lam - nobs * math.log(lam) + lgam[d]
    return t


@njit(**OPTS)
def _fwd(ins, argv, ip, fp, val, pars, data, lgam, terms):
    """Forward pass over every instruction; returns the NLL (sum of the term values).

    With terms=False only the expected rates are computed (data and lgam are not read).
    """
    total = 0.0
    for k in range(ins.shape[0]):
        op = ins[k, F_OP]
        out = ins[k, F_OUT]
        n = ins[k, F_SIZE]
        a0 = ins[k, F_ARG]
        na = ins[k, F_NARG]
        b = ins[k, F_IP]
        if op == OP_CONST:
            continue
        if op == OP_PARAM:
            s = ip[b]
            for i in range(n):
                val[out + i] = pars[s + i]
        elif op == OP_GATHER:
            src = argv[2 * a0]
            for i in range(n):
                val[out + i] = val[src + ip[b + i]]
        elif op == OP_FACTOR or op == OP_SHIFT:
            src, step = _arg(argv, a0, 0)
            _interp(0, op == OP_SHIFT, ins[k, F_CODE], fp, ins[k, F_FP], val, val, val, val,
                    src, step, out, n, False)
        elif op == OP_ADD or op == OP_MUL:
            src, step = _arg(argv, a0, 0)
            for i in range(n):
                val[out + i] = val[src + i * step]
            for j in range(1, na):
                src, step = _arg(argv, a0, j)
                if op == OP_ADD:
                    for i in range(n):
                        val[out + i] += val[src + i * step]
                else:
                    for i in range(n):
                        val[out + i] *= val[src + i * step]
        elif op == OP_CONCAT:
            pos = out
            for j in range(na):
                src = argv[2 * (a0 + j)]
                m = argv[2 * (a0 + j) + 1]
                for i in range(m):
                    val[pos + i] = val[src + i]
                pos += m
        elif op == OP_SEGSUM:
            src = argv[2 * a0]
            for s in range(n):
                acc = 0.0
                for i in range(ip[b + s], ip[b + s + 1]):
                    acc += val[src + i]
                val[out + s] = acc
        elif op == OP_SEGPROD:
            src = argv[2 * a0]
            for s in range(n):
                acc = 1.0
                for i in range(ip[b + s], ip[b + s + 1]):
                    acc *= val[src + i]
                val[out + s] = acc
        elif terms:
            src, step = _arg(argv, a0, 0)
            t = _term_fwd(op, ip, fp, b, ins[k, F_NIP], ins[k, F_FP], val, src, step, data, lgam)
            val[out] = t
            total += t
    return total


@njit(**OPTS)
def _jvp(ins, argv, ip, fp, val, tv, vec):
    """Tangents of every instruction's output along the parameter direction vec."""
    for k in range(ins.shape[0]):
        op = ins[k, F_OP]
        out = ins[k, F_OUT]
        n = ins[k, F_SIZE]
        a0 = ins[k, F_ARG]
        na = ins[k, F_NARG]
        b = ins[k, F_IP]
        if op == OP_CONST:
            for i in range(n):
                tv[out + i] = 0.0
        elif op == OP_PARAM:
            s = ip[b]
            for i in range(n):
                tv[out + i] = vec[s + i]
        elif op == OP_GATHER:
            src = argv[2 * a0]
            for i in range(n):
                tv[out + i] = tv[src + ip[b + i]]
        elif op == OP_FACTOR or op == OP_SHIFT:
            src, step = _arg(argv, a0, 0)
            _interp(1, op == OP_SHIFT, ins[k, F_CODE], fp, ins[k, F_FP], val, tv, tv, tv,
                    src, step, out, n, False)
        elif op == OP_ADD:
            for i in range(n):
                tv[out + i] = 0.0
            for j in range(na):
                src, step = _arg(argv, a0, j)
                for i in range(n):
                    tv[out + i] += tv[src + i * step]
        elif op == OP_MUL:
            for i in range(n):
                acc = 0.0
                for j in range(na):
                    srcj, stepj = _arg(argv, a0, j)
                    tj = tv[srcj + i * stepj]
                    if tj != 0.0:
                        acc += tj * _others(val, argv, a0, na, j, -1, i)
                tv[out + i] = acc
        elif op == OP_CONCAT:
            pos = out
            for j in range(na):
                src = argv[2 * (a0 + j)]
                m = argv[2 * (a0 + j) + 1]
                for i in range(m):
                    tv[pos + i] = tv[src + i]
                pos += m
        elif op == OP_SEGSUM:
            src = argv[2 * a0]
            for s in range(n):
                acc = 0.0
                for i in range(ip[b + s], ip[b + s + 1]):
                    acc += tv[src + i]
                tv[out + s] = acc
        elif op == OP_SEGPROD:
            src = argv[2 * a0]
            for s in range(n):
                # d(prod) = sum_i t_i prod_{j != i} x_j, via running prefix products
                pre = 1.0
                dpre = 0.0
                for i in range(ip[b + s], ip[b + s + 1]):
                    x = val[src + i]
                    dpre = dpre * x + pre * tv[src + i]
                    pre = pre * x
                tv[out + s] = dpre


@njit(**OPTS)
def _others(val, argv, a0, na, skip1, skip2, i):
    """Product of the i-th elements of all mul args except args skip1 and skip2 (zero-safe)."""
    prod = 1.0
    for l in range(na):
        if l != skip1 and l != skip2:
            src, step = _arg(argv, a0, l)
            prod *= val[src + i * step]
    return prod


@njit(**OPTS)
def _term_rev(op, ip, fp, b, m, f, val, adj, tv, tadj, src, step, data, second):
    for i in range(m):
        x = val[src + i * step]
        nobs = data[ip[b + i]]
        if op == OP_POISSON:
            g = 1.0 - nobs / x if nobs != 0.0 else 1.0
            h = nobs / (x * x) if nobs != 0.0 else 0.0
        elif op == OP_POISSON_AUX:
            tau = fp[f + i]
            g = tau - nobs / x if nobs != 0.0 else tau
            h = nobs / (x * x) if nobs != 0.0 else 0.0
        else:
            w = fp[f + i]
            g = (x - nobs) * w
            h = w
        adj[src + i * step] += g
        if second:
            tadj[src + i * step] += h * tv[src + i * step]


@njit(**OPTS)
def _segprod_rev(ip, b, n, val, adj, tv, tadj, src, out, second):
    longest = 0
    for s in range(n):
        longest = max(longest, ip[b + s + 1] - ip[b + s])
    suf = np.empty(longest + 1)
    dsuf = np.empty(longest + 1)
    for s in range(n):
        ay = adj[out + s]
        ty = tadj[out + s] if second else 0.0
        if ay == 0.0 and ty == 0.0:
            continue
        lo = ip[b + s]
        L = ip[b + s + 1] - lo
        # suffix products (and tangents) of x[lo+i+1:], so others_i = pre_i * suf[i+1]
        suf[L] = 1.0
        dsuf[L] = 0.0
        for i in range(L - 1, -1, -1):
            x = val[src + lo + i]
            suf[i] = suf[i + 1] * x
            if second:
                dsuf[i] = dsuf[i + 1] * x + suf[i + 1] * tv[src + lo + i]
        pre = 1.0
        dpre = 0.0
        for i in range(L):
            o = pre * suf[i + 1]
            adj[src + lo + i] += ay * o
            x = val[src + lo + i]
            if second:
                do = dpre * suf[i + 1] + pre * dsuf[i + 1]
                tadj[src + lo + i] += ty * o + ay * do
                dpre = dpre * x + pre * tv[src + lo + i]
            pre = pre * x


@njit(**OPTS)
def _mul_rev(argv, a0, na, n, val, adj, tv, tadj, out, second):
    for j in range(na):
        srcj, stepj = _arg(argv, a0, j)
        for i in range(n):
            ay = adj[out + i]
            ty = tadj[out + i] if second else 0.0
            if ay == 0.0 and ty == 0.0:
                continue
            o = _others(val, argv, a0, na, j, -1, i)
            tgt = srcj + i * stepj
            adj[tgt] += ay * o
            if second:
                # d(others)/d eps = sum_{m != j} t_m prod_{l != j, m} x_l
                do = 0.0
                for mm in range(na):
                    if mm != j:
                        srcm, stepm = _arg(argv, a0, mm)
                        tm = tv[srcm + i * stepm]
                        if tm != 0.0:
                            do += tm * _others(val, argv, a0, na, j, mm, i)
                tadj[tgt] += ty * o + ay * do


@njit(**OPTS)
def _rev(ins, argv, ip, fp, val, adj, tv, tadj, data, grad, hv, second):
    """Reverse sweep: adjoints (gradient into grad); with second, adjoint tangents (H.v into hv).

    adj and tadj must be zero on entry; val (and tv when second) hold the forward pass.
    """
    for k in range(ins.shape[0] - 1, -1, -1):
        op = ins[k, F_OP]
        out = ins[k, F_OUT]
        n = ins[k, F_SIZE]
        a0 = ins[k, F_ARG]
        na = ins[k, F_NARG]
        b = ins[k, F_IP]
        if op == OP_CONST:
            continue
        if op == OP_POISSON or op == OP_POISSON_AUX or op == OP_GAUSS:
            src, step = _arg(argv, a0, 0)
            _term_rev(op, ip, fp, b, ins[k, F_NIP], ins[k, F_FP], val, adj, tv, tadj, src, step,
                      data, second)
        elif op == OP_PARAM:
            s = ip[b]
            for i in range(n):
                grad[s + i] += adj[out + i]
                if second:
                    hv[s + i] += tadj[out + i]
        elif op == OP_GATHER:
            src = argv[2 * a0]
            for i in range(n):
                adj[src + ip[b + i]] += adj[out + i]
                if second:
                    tadj[src + ip[b + i]] += tadj[out + i]
        elif op == OP_FACTOR or op == OP_SHIFT:
            src, step = _arg(argv, a0, 0)
            _interp(2, op == OP_SHIFT, ins[k, F_CODE], fp, ins[k, F_FP], val, tv, adj, tadj,
                    src, step, out, n, second)
        elif op == OP_ADD:
            for j in range(na):
                src, step = _arg(argv, a0, j)
                for i in range(n):
                    adj[src + i * step] += adj[out + i]
                    if second:
                        tadj[src + i * step] += tadj[out + i]
        elif op == OP_MUL:
            _mul_rev(argv, a0, na, n, val, adj, tv, tadj, out, second)
        elif op == OP_CONCAT:
            pos = out
            for j in range(na):
                src = argv[2 * (a0 + j)]
                m = argv[2 * (a0 + j) + 1]
                for i in range(m):
                    adj[src + i] += adj[pos + i]
                    if second:
                        tadj[src + i] += tadj[pos + i]
                pos += m
        elif op == OP_SEGSUM:
            src = argv[2 * a0]
            for s in range(n):
                ay = adj[out + s]
                ty = tadj[out + s] if second else 0.0
                for i in range(ip[b + s], ip[b + s + 1]):
                    adj[src + i] += ay
                    if second:
                        tadj[src + i] += ty
        elif op == OP_SEGPROD:
            _segprod_rev(ip, b, n, val, adj, tv, tadj, argv[2 * a0], out, second)


@njit(**OPTS)
def nll(ins, argv, ip, fp, val, pars, data, lgam):
    return _fwd(ins, argv, ip, fp, val, pars, data, lgam, True)


@njit(**OPTS)
def nll_grad(ins, argv, ip, fp, val, adj, pars, data, lgam, grad):
    total = _fwd(ins, argv, ip, fp, val, pars, data, lgam, True)
    adj[:] = 0.0
    grad[:] = 0.0
    _rev(ins, argv, ip, fp, val, adj, adj, adj, data, grad, grad, False)
    return total


@njit(**OPTS)
def hvp(ins, argv, ip, fp, val, adj, tv, tadj, pars, vec, data, lgam, grad, hv):
    """NLL, gradient and the exact Hessian-vector product H.vec."""
    total = _fwd(ins, argv, ip, fp, val, pars, data, lgam, True)
    _jvp(ins, argv, ip, fp, val, tv, vec)
    adj[:] = 0.0
    tadj[:] = 0.0
    grad[:] = 0.0
    hv[:] = 0.0
    _rev(ins, argv, ip, fp, val, adj, tv, tadj, data, grad, hv, True)
    return total


@njit(parallel=True, **OPTS)
def hessian(ins, argv, ip, fp, val0, pars, data, lgam, columns, H):
    """Exact Hessian columns for the parameter indices in `columns` (H[:, j]), in parallel."""
    npar = pars.shape[0]
    nval = val0.shape[0]
    val = val0.copy()
    _fwd(ins, argv, ip, fp, val, pars, data, lgam, True)
    for c in prange(columns.shape[0]):
        j = columns[c]
        vec = np.zeros(npar)
        vec[j] = 1.0
        tv = np.zeros(nval)
        adj = np.zeros(nval)
        tadj = np.zeros(nval)
        grad = np.zeros(npar)
        hv = np.zeros(npar)
        _jvp(ins, argv, ip, fp, val, tv, vec)
        _rev(ins, argv, ip, fp, val, adj, tv, tadj, data, grad, hv, True)
        for i in range(npar):
            H[i, j] = hv[i]


@njit(**OPTS)
def expected(ins, argv, ip, fp, val, pars, out):
    """Expected value of every data entry a term reads (main rates, constraint means)."""
    _fwd(ins, argv, ip, fp, val, pars, out, out, False)
    for k in range(ins.shape[0]):
        op = ins[k, F_OP]
        if op != OP_POISSON and op != OP_POISSON_AUX and op != OP_GAUSS:
            continue
        src, step = _arg(argv, ins[k, F_ARG], 0)
        b = ins[k, F_IP]
        f = ins[k, F_FP]
        for i in range(ins[k, F_NIP]):
            x = val[src + i * step]
            if op == OP_POISSON_AUX:
                x = x * fp[f + i]
            out[ip[b + i]] = x
