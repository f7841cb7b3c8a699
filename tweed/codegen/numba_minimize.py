"""The bounded quasi-Newton minimiser of runtime/minimize.py, compiled with numba so that a fit
never returns to Python between evaluations; a batch of fits (toys) runs row range by row range,
the ranges in parallel threads (the kernels release the GIL).

Same algorithm: projected BFGS with an Armijo line search that backs off from non-finite
values, the Schur-complement reduced inverse Hessian when bounds are active, snapping to
bounds, stall detection. Status codes: 0 ok, 1 max iterations, 2 not finite, 3 stalled.
"""

from __future__ import annotations

import math

import numpy as np

from tweed.codegen import kernel_cache  # noqa: F401  (first: sets the cache directory)
from numba import njit

from tweed.codegen.numba_kernels import _bool, _fwd, _rev, _scratch, _zero_adj

OPTS = dict(cache=True, nogil=True, error_model="numpy")
OK, MAXITER, NAN, STALLED = 0, 1, 2, 3


@njit(**OPTS)
def _eval(ins, ip, fp, val, adj, full, free, y, data, sat, scratch, work, gfull, g):
    for i in range(free.shape[0]):
        full[free[i]] = y[i]
    f = _fwd(ins, ip, fp, val, full, data, sat, _bool(1), scratch, work)
    _zero_adj(ins, adj)
    _rev(ins, ip, fp, val, adj, adj, adj, data, gfull, gfull, _bool(0), _bool(1), scratch, work)
    for i in range(free.shape[0]):
        g[i] = gfull[free[i]]
    return f


@njit(**OPTS)
def _snap(x, lo, hi, width):
    for i in range(x.shape[0]):
        if x[i] < lo[i]:
            x[i] = lo[i]
        if x[i] > hi[i]:
            x[i] = hi[i]
        hair = 1e-9 * width[i]
        if x[i] - lo[i] <= hair:
            x[i] = lo[i]
        if hi[i] - x[i] <= hair:
            x[i] = hi[i]


@njit(**OPTS)
def _pgnorm(x, g, lo, hi, width):
    m = 0.0
    for i in range(x.shape[0]):
        gi = g[i]
        if (x[i] <= lo[i] and gi > 0.0) or (x[i] >= hi[i] and gi < 0.0):
            gi = 0.0
        m = max(m, abs(gi) * width[i])
    return m


@njit(**OPTS)
def _direction(B, g, x, lo, hi, d):
    """d = -(reduced inverse Hessian) g on the variables not held at a bound; 0 on the others."""
    n = x.shape[0]
    act = np.zeros(n, dtype=np.bool_)
    na = 0
    for i in range(n):
        if (x[i] <= lo[i] and g[i] > 0.0) or (x[i] >= hi[i] and g[i] < 0.0):
            act[i] = True
            na += 1
    if na == 0:  # the common case: one dense matrix-vector product (BLAS)
        d[:] = np.dot(B, g)
        for i in range(n):
            d[i] = -d[i]
        return
    gF = g.copy()
    for i in range(n):
        if act[i]:
            gF[i] = 0.0
    d[:] = np.dot(B, gF)
    for i in range(n):
        d[i] = 0.0 if act[i] else -d[i]
    A = np.empty(na, dtype=np.int64)
    k = 0
    for i in range(n):
        if act[i]:
            A[k] = i
            k += 1
    # Schur complement: d_F += B_FA (B_AA^-1 (B_AF g_F))
    u = np.zeros(na)
    for a in range(na):
        u[a] = np.dot(B[A[a]], gF)
    Baa = np.empty((na, na))
    for a in range(na):
        for b in range(na):
            Baa[a, b] = B[A[a], A[b]]
    v = np.linalg.solve(Baa, u)
    for i in range(n):
        if not act[i]:
            s = 0.0
            for a in range(na):
                s += B[i, A[a]] * v[a]
            d[i] += s


@njit(**OPTS)
def minimize(ins, ip, fp, val, adj, full, free, y0, lo, hi, B0, data, sat, gtol, maxiter, y_out, wall_streak):
    """Minimise the NLL over the parameters `free` (indices into `full`, whose other entries
    stay fixed). Returns (f, status, iterations, evaluations, projected-gradient norm)."""
    n = free.shape[0]
    scratch, work = _scratch(ins, ip)
    gfull = np.zeros(full.shape[0])
    width = np.empty(n)
    for i in range(n):
        width[i] = math.sqrt(max(B0[i, i], 1e-300))
    x = y0.copy()
    _snap(x, lo, hi, width)
    g = np.empty(n)
    f = _eval(ins, ip, fp, val, adj, full, free, x, data, sat, scratch, work, gfull, g)
    nfev = 1
    finite = math.isfinite(f)
    for i in range(n):
        finite = finite and math.isfinite(g[i])
    if not finite:
        y_out[:] = x
        return f, NAN, 0, nfev, np.inf
    B = B0.copy()
    d = np.empty(n)
    xn = np.empty(n)
    gn = np.empty(n)
    s = np.empty(n)
    yv = np.empty(n)
    By = np.empty(n)
    status = MAXITER
    stalls = 0
    walled = 0  # consecutive line searches that met non-finite values (a wall)
    it = 0
    pgn = _pgnorm(x, g, lo, hi, width)
    for it in range(1, maxiter + 1):
        pgn = _pgnorm(x, g, lo, hi, width)
        if pgn <= gtol:
            status = OK
            break
        _direction(B, g, x, lo, hi, d)
        slope = 0.0
        for i in range(n):
            slope += g[i] * d[i]
        if not slope < 0.0:
            B[:, :] = B0
            _direction(B, g, x, lo, hi, d)
            slope = 0.0
            for i in range(n):
                slope += g[i] * d[i]
            if not slope < 0.0:
                for i in range(n):
                    gi = g[i]
                    if (x[i] <= lo[i] and gi > 0.0) or (x[i] >= hi[i] and gi < 0.0):
                        gi = 0.0
                    d[i] = -gi * width[i] * width[i]
                slope = 0.0
                for i in range(n):
                    slope += g[i] * d[i]
        t = 1.0
        accepted = False
        hit = False
        fn = np.inf
        for _ in range(60):
            for i in range(n):
                xn[i] = x[i] + t * d[i]
            _snap(xn, lo, hi, width)
            fn = _eval(ins, ip, fp, val, adj, full, free, xn, data, sat, scratch, work, gfull, gn)
            nfev += 1
            ok = math.isfinite(fn)
            dec = 0.0
            for i in range(n):
                ok = ok and math.isfinite(gn[i])
                dec += g[i] * (xn[i] - x[i])
            if ok and fn <= f + 1e-4 * dec:
                accepted = True
                break
            if not math.isfinite(fn):
                hit = True
                t *= 0.5
            else:
                denom = 2.0 * (fn - f - slope * t)
                q = -slope * t / denom if denom > 0 else 0.5
                t *= max(0.1, min(0.5, q))
        if not accepted:
            status = OK if pgn <= 100 * gtol else STALLED
            break
        walled = walled + 1 if hit else 0
        if walled >= wall_streak and pgn > 100 * gtol:
            # pressing on a wall where the NLL stops being finite (an empty bin's rate at 0):
            # the steps only shrink; stop, the caller finishes it (fit.minimize_on_rate_boundary)
            x[:] = xn
            f = fn
            g[:] = gn
            status = STALLED
            break
        sy = 0.0
        ss = 0.0
        yy = 0.0
        for i in range(n):
            s[i] = xn[i] - x[i]
            yv[i] = gn[i] - g[i]
            sy += s[i] * yv[i]
            ss += s[i] * s[i]
            yy += yv[i] * yv[i]
        df = f - fn
        x[:] = xn
        g[:] = gn
        f = fn
        if sy > 0 and sy > 1e-12 * math.sqrt(ss * yy):
            By[:] = np.dot(B, yv)
            yBy = np.dot(yv, By)
            c1 = (sy + yBy) / (sy * sy)
            for i in range(n):
                a = c1 * s[i] - By[i] / sy
                b = s[i] / sy
                for j in range(n):
                    B[i, j] += a * s[j] - b * By[j]
        if df <= 1e-14 * max(1.0, abs(f)):
            stalls += 1
            if stalls >= 5:
                pgn = _pgnorm(x, g, lo, hi, width)
                status = OK if pgn <= 1000 * gtol else STALLED
                break
        else:
            stalls = 0
    pgn = _pgnorm(x, g, lo, hi, width)
    y_out[:] = x
    return f, status, it, nfev, pgn


@njit(**OPTS)
def minimize_rows(ins, ip, fp, val0, fulls, free, Y0, lo, hi, B0, datas, sats, gtol, maxiter,
                  Y_out, f_out, status_out, nfev_out, wall_streak, t0, t1):
    """minimize() for rows t0..t1-1 of fulls/Y0/datas/sats (a batch of toys), one after the
    other. It releases the GIL, so threads run several row ranges at once
    (NumbaKernels.minimize_batch)."""
    val = val0.copy()
    adj = np.zeros_like(val0)
    y = np.empty(Y0.shape[1])
    for t in range(t0, t1):
        val[:] = val0
        full = fulls[t].copy()
        f, st, it, nf, pg = minimize(ins, ip, fp, val, adj, full, free, Y0[t], lo, hi, B0,
                                     datas[t], sats[t], gtol, maxiter, y, wall_streak)
        Y_out[t, :] = y
        f_out[t] = f
        status_out[t] = st
        nfev_out[t] = nf


# -- the initial inverse Hessian: runtime/minimize.inverse_hessian_guess's elementwise steps --
# (compiled so that a fresh fit does not spend ~100 us in small numpy operations around its two
# LAPACK calls; inverse_hessian_guess calls them around potrf/potri, and the results are those
# of its numpy route, rounding for rounding)

@njit(**OPTS)
def scaled_metric(H, free, out, scale):
    """For H[free][:, free]: S = (H + H^T) / 2, scale = |diag S|^-1/2 (1 where the diagonal is
    0), and D S D (D = diag(scale)) written transposed: out[b, a] = S[a, b] scale[a] scale[b],
    so that out.T is D S D in the column-major order LAPACK reads. False if an entry of S is not
    finite (out is then incomplete)."""
    n = free.shape[0]
    for a in range(n):
        d = abs(H[free[a], free[a]])
        scale[a] = 1.0 / math.sqrt(d) if d > 0 else 1.0
    for a in range(n):
        i = free[a]
        for b in range(n):
            j = free[b]
            s = 0.5 * (H[i, j] + H[j, i])
            if not math.isfinite(s):
                return False
            out[b, a] = s * scale[a] * scale[b]
    return True


@njit(**OPTS)
def unscaled_inverse(U, scale, B):
    """B = D S^-1 D from LAPACK's potri result: U is its transpose (row-major view of the
    column-major array), whose upper triangle holds the lower triangle of S^-1."""
    n = scale.shape[0]
    for a in range(n):
        for b in range(a + 1):
            v = U[b, a]
            B[a, b] = v * scale[a] * scale[b]
            B[b, a] = v * scale[b] * scale[a]
