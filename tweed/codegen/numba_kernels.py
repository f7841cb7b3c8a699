"""Generic numba kernels over a packed program (pack.py). They compile once per machine
(cache=True) and serve every model: a new workspace or signal patch costs no compile.

_fwd runs the instructions forward and sums the terms (the NLL); _rev propagates adjoints
backwards (reverse mode written per op) for the exact gradient and, with second=True, the
adjoint tangents of forward-over-reverse for an exact Hessian-vector product; _jvp pushes a
tangent forward. Loops run over slices (numba then vectorises them); the few reductions are
compiled with reassociation allowed (fastmath "reassoc" only: NaN and inf keep their meaning).
"""

from __future__ import annotations

import math

import numpy as np

from tweed.codegen import kernel_cache  # noqa: F401  (first: sets the cache directory)
from numba import njit

from tweed.codegen.pack import (
    OP_EXPR,
    OP_MVN,
    OP_UNBINNED,
    OP_LOGNORMAL,
    DOWN,
    EXP,
    F0,
    F1,
    F2,
    F4,
    F_CODE,
    F_FLAGS,
    F_FP,
    F_IP,
    F_OP,
    F_OUT,
    F_SIZE,
    INSIDE,
    OP_ADD,
    OP_GAUSS,
    OP_INTERP,
    OP_MUL,
    OP_PARAMS,
    OP_POISSON,
    OP_POISSON_AUX,
    OP_SEGPROD,
    OP_SEGSUM,
    POLY,
    C0_ARRAY,
    C0_ONE,
    REGION_INTS,
    S0,
    S2,
    S4,
    SOLE,
    UP,
    ZERO_ADJ,
)

OPTS = dict(cache=True, nogil=True, error_model="numpy")
SUMS = dict(OPTS, fastmath={"reassoc", "contract"})
INLINE = dict(OPTS, inline="always")


# Constant arguments would make numba compile one specialisation per literal value (mode 0,
# 1, 2; True/False): passing them through these identities types them as plain int/bool.
@njit(**OPTS)
def _int(x):
    return np.int64(x)


@njit(**OPTS)
def _bool(x):
    return x != 0


# -- interpolation: region and basis functions of alpha, once per parameter group ----------------

@njit(**INLINE)
def _region(code, a):
    if code == F0 or code == S0:
        return UP if a > 0.0 else DOWN
    if code == F1:
        return UP if a >= 0.0 else DOWN
    if code == F4 or code == S4:
        if a >= 1.0:
            return UP
        return DOWN if a <= -1.0 else INSIDE
    if a > 1.0:  # codes 2 and 4p
        return UP
    return DOWN if a < -1.0 else INSIDE


@njit(**INLINE)
def _basis(code, region, a, s):
    """Fill b_k(a) into s[0:6], b_k' into s[6:12], b_k'' into s[12:18] for the polynomial
    region; return K."""
    if region != INSIDE:
        s[0], s[6], s[12] = a, 1.0, 0.0
        return 1
    if code == F4 or code == S4:
        # b_k = a^(k+1), b_k' = (k+1) a^k, b_k'' = (k+1) k a^(k-1), k = 0..5
        pkm1 = 0.0
        pk = 1.0
        for k in range(6):
            s[12 + k] = (k + 1) * k * pkm1
            s[6 + k] = (k + 1) * pk
            s[k] = pk * a
            pkm1 = pk
            pk = pk * a
        return 6
    if code == F2 or code == S2:
        s[0], s[6], s[12] = a, 1.0, 0.0
        s[1], s[7], s[13] = a * a, 2.0 * a, 2.0
        return 2
    # code 4p: b_1 = a, b_2 = a^2 (15 - 10 a^2 + 3 a^4)
    a2 = a * a
    s[0], s[6], s[12] = a, 1.0, 0.0
    s[1] = a2 * (15.0 + a2 * (-10.0 + 3.0 * a2))
    s[7] = a * (30.0 + a2 * (-40.0 + 18.0 * a2))
    s[13] = 30.0 + a2 * (-120.0 + 90.0 * a2)
    return 2


# The hot loops index with unsigned offsets, never through slices: a slice taken in a loop
# costs two atomic reference-count updates (numba's NRT), ~20 ns per group and loop, which
# was half the time of 1Lbb's interpolations; a signed index costs a negative-index check that
# stops LLVM from vectorising. U() makes an offset unsigned (uint64 + uint64 stays uint64;
# mixing it with int64 would give float64, which numba rejects as an index).

@njit(**INLINE)
def U(x):
    return np.uint64(x)


# The polynomial loops are inlined where they are called with the number of basis terms K as a
# literal (_interp branches on K): numba then prunes the other branches and LLVM sees one loop.
# o: output offset, p: offset of the group's c0 entries, n: stride between coefficient blocks,
# m: entries in the group (all unsigned).

@njit(**INLINE)
def _poly_fwd_k(y, o, c, p, n, m, K, bs, so, c0):
    """y[o + i] = c0 + sum_k C_k b_k for the m entries of a group; c0 < 0: c0 is the array at
    c[p], else that number for every entry (not loaded)."""
    p1 = p + n
    if K == 1:
        b0 = bs[so]
        if c0 >= 0.0:
            for i in range(m):
                y[o + i] = c0 + c[p1 + i] * b0
        else:
            for i in range(m):
                y[o + i] = c[p + i] + c[p1 + i] * b0
        return
    p2 = p1 + n
    if K == 2:
        b0, b1 = bs[so], bs[so + 1]
        if c0 >= 0.0:
            for i in range(m):
                y[o + i] = c0 + c[p1 + i] * b0 + c[p2 + i] * b1
        else:
            for i in range(m):
                y[o + i] = c[p + i] + c[p1 + i] * b0 + c[p2 + i] * b1
        return
    p3 = p2 + n
    p4 = p3 + n
    p5 = p4 + n
    p6 = p5 + n
    b0, b1, b2, b3, b4, b5 = bs[so], bs[so + 1], bs[so + 2], bs[so + 3], bs[so + 4], bs[so + 5]
    if c0 >= 0.0:
        for i in range(m):
            y[o + i] = (c0 + c[p1 + i] * b0 + c[p2 + i] * b1 + c[p3 + i] * b2 + c[p4 + i] * b3
                        + c[p5 + i] * b4 + c[p6 + i] * b5)
    else:
        for i in range(m):
            y[o + i] = (c[p + i] + c[p1 + i] * b0 + c[p2 + i] * b1 + c[p3 + i] * b2 + c[p4 + i] * b3
                        + c[p5 + i] * b4 + c[p6 + i] * b5)


@njit(**dict(SUMS, inline="always"))
def _poly_dot_k(w, o, c, p, n, m, K, d, so):
    """sum_i w[o + i] * (sum_k C_k[i] d_k): the reverse of _poly_fwd_k against weights w."""
    s = 0.0
    p1 = p + n
    if K == 1:
        for i in range(m):
            s += w[o + i] * c[p1 + i]
        return s * d[so]
    p2 = p1 + n
    if K == 2:
        d0, d1 = d[so], d[so + 1]
        for i in range(m):
            s += w[o + i] * (c[p1 + i] * d0 + c[p2 + i] * d1)
        return s
    p3 = p2 + n
    p4 = p3 + n
    p5 = p4 + n
    p6 = p5 + n
    d0, d1, d2, d3, d4, d5 = d[so], d[so + 1], d[so + 2], d[so + 3], d[so + 4], d[so + 5]
    for i in range(m):
        s += w[o + i] * (c[p1 + i] * d0 + c[p2 + i] * d1 + c[p3 + i] * d2 + c[p4 + i] * d3
                         + c[p5 + i] * d4 + c[p6 + i] * d5)
    return s


# The reductions keep their own compiled functions (fastmath reassociation, so they vectorise):
# inlined into _interp they would inherit its strict floating-point order and run serially.
@njit(**SUMS)
def _poly_dot6(w, o, c, p, n, m, d, so):
    return _poly_dot_k(w, o, c, p, n, m, 6, d, so)


@njit(**SUMS)
def _poly_dot2(w, o, c, p, n, m, d, so):
    return _poly_dot_k(w, o, c, p, n, m, 2, d, so)


@njit(**SUMS)
def _poly_dot1(w, o, c, p, n, m, d, so):
    return _poly_dot_k(w, o, c, p, n, m, 1, d, so)


@njit(**INLINE)
def _poly_dot(w, o, c, p, n, m, K, d, so):
    """_poly_dot_k for the K of a group (one of 6, 2, 1)."""
    if K == 6:
        return _poly_dot6(w, o, c, p, n, m, d, so)
    if K == 2:
        return _poly_dot2(w, o, c, p, n, m, d, so)
    return _poly_dot1(w, o, c, p, n, m, d, so)


@njit(**INLINE)
def _poly_lin_k(y, o, c, p, n, m, K, d, so, t):
    """y[o + i] = t * sum_k C_k[i] d_k (tangents)."""
    p1 = p + n
    if K == 1:
        d0 = d[so] * t
        for i in range(m):
            y[o + i] = c[p1 + i] * d0
        return
    p2 = p1 + n
    if K == 2:
        d0, d1 = d[so] * t, d[so + 1] * t
        for i in range(m):
            y[o + i] = c[p1 + i] * d0 + c[p2 + i] * d1
        return
    p3 = p2 + n
    p4 = p3 + n
    p5 = p4 + n
    p6 = p5 + n
    d0, d1, d2, d3, d4, d5 = d[so] * t, d[so + 1] * t, d[so + 2] * t, d[so + 3] * t, d[so + 4] * t, d[so + 5] * t
    for i in range(m):
        y[o + i] = (c[p1 + i] * d0 + c[p2 + i] * d1 + c[p3 + i] * d2 + c[p4 + i] * d3
                    + c[p5 + i] * d4 + c[p6 + i] * d5)


@njit(**OPTS)
def _interp(mode, ins_k, ip, fp, val, tv, adj, tadj, second, scratch):
    """One interpolation instruction. mode 0: forward, 1: tangent, 2: reverse."""
    out, n, b, f, code = ins_k[F_OUT], ins_k[F_SIZE], ins_k[F_IP], ins_k[F_FP], ins_k[F_CODE]
    ng = ip[b]
    hdr = b + 1
    apos = b + 1 + 3 * REGION_INTS
    goff = apos + ng
    nu = U(n)
    for g in range(ng):
        pa = ip[apos + g]
        a = val[pa]
        e0 = ip[goff + g]
        m = U(ip[goff + g + 1] - e0)
        o = U(out + e0)
        r = _region(code, a)
        h = hdr + REGION_INTS * r
        kind = ip[h]
        p = U(f + ip[h + 2] + e0)
        if kind == POLY:
            K = _basis(code, r, a, scratch)
            if mode == 0:
                c0m = ip[h + 3]
                c0 = -1.0 if c0m == C0_ARRAY else (1.0 if c0m == C0_ONE else 0.0)
                if K == 6:
                    _poly_fwd_k(val, o, fp, p, nu, m, 6, scratch, 0, c0)
                elif K == 2:
                    _poly_fwd_k(val, o, fp, p, nu, m, 2, scratch, 0, c0)
                else:
                    _poly_fwd_k(val, o, fp, p, nu, m, 1, scratch, 0, c0)
            elif mode == 1:
                if K == 6:
                    _poly_lin_k(tv, o, fp, p, nu, m, 6, scratch, 6, tv[pa])
                elif K == 2:
                    _poly_lin_k(tv, o, fp, p, nu, m, 2, scratch, 6, tv[pa])
                else:
                    _poly_lin_k(tv, o, fp, p, nu, m, 1, scratch, 6, tv[pa])
            else:
                adj[pa] += _poly_dot(adj, o, fp, p, nu, m, K, scratch, 6)
                if second:
                    tadj[pa] += (_poly_dot(tadj, o, fp, p, nu, m, K, scratch, 6)
                                 + tv[pa] * _poly_dot(adj, o, fp, p, nu, m, K, scratch, 12))
        elif kind == EXP:
            p1 = p + nu
            p2 = p1 + nu
            if mode == 0:
                for i in range(m):
                    val[o + i] = fp[p + i] * math.exp(a * fp[p2 + i]) + fp[p1 + i]
            elif mode == 1:
                t = tv[pa]
                for i in range(m):
                    L = fp[p2 + i]
                    tv[o + i] = fp[p + i] * L * math.exp(a * L) * t
            else:
                ga = 0.0
                gt = 0.0
                for i in range(m):
                    L = fp[p2 + i]
                    d1 = fp[p + i] * L * math.exp(a * L)
                    ga += adj[o + i] * d1
                    if second:
                        gt += tadj[o + i] * d1 + adj[o + i] * d1 * L * tv[pa]
                adj[pa] += ga
                if second:
                    tadj[pa] += gt


# -- n-ary elementwise, segments, terms ------------------------------------------------------------

@njit(**INLINE)
def _others(val, pos, na, n, i, skip1, skip2):
    """Product of element i of every mul argument except skip1 and skip2 (no division)."""
    p = 1.0
    for j in range(na):
        if j != skip1 and j != skip2:
            p *= val[pos[j * n + i]]
    return p


@njit(**OPTS)
def _nary(mode, ins_k, ip, val, tv, adj, tadj, second):
    op, out, n, b = ins_k[F_OP], ins_k[F_OUT], ins_k[F_SIZE], ins_k[F_IP]
    na = ip[b]
    pos = ip[b + 1 : b + 1 + na * n]
    nu = U(n)
    if mode == 0:
        for i in range(nu):
            acc = val[U(pos[i])]
            for j in range(1, na):
                if op == OP_ADD:
                    acc += val[U(pos[U(j) * nu + i])]
                else:
                    acc *= val[U(pos[U(j) * nu + i])]
            val[out + i] = acc
    elif mode == 1:
        for i in range(n):
            acc = 0.0
            for j in range(na):
                t = tv[pos[j * n + i]]
                if t != 0.0:
                    acc += t if op == OP_ADD else t * _others(val, pos, na, n, i, j, -1)
            tv[out + i] = acc
    elif not second and (op == OP_ADD or na == 2 or na == 3):
        # first order, the common shapes (sums; products of two or three factors) unrolled
        for i in range(nu):
            ay = adj[out + i]
            if ay == 0.0:
                continue
            if op == OP_ADD:
                for j in range(na):
                    adj[U(pos[U(j) * nu + i])] += ay
                continue
            q0 = U(pos[i])
            q1 = U(pos[nu + i])
            if na == 2:
                x0, x1 = val[q0], val[q1]
                adj[q0] += ay * x1
                adj[q1] += ay * x0
            else:
                q2 = U(pos[U(2) * nu + i])
                x0, x1, x2 = val[q0], val[q1], val[q2]
                adj[q0] += ay * (x1 * x2)
                adj[q1] += ay * (x0 * x2)
                adj[q2] += ay * (x0 * x1)
    else:
        for i in range(n):
            ay = adj[out + i]
            ty = tadj[out + i] if second else 0.0
            if ay == 0.0 and ty == 0.0:
                continue
            for j in range(na):
                pj = pos[j * n + i]
                if op == OP_ADD:
                    adj[pj] += ay
                    if second:
                        tadj[pj] += ty
                    continue
                o = _others(val, pos, na, n, i, j, -1)
                adj[pj] += ay * o
                if second:
                    do = 0.0
                    for mm in range(na):
                        if mm != j:
                            t = tv[pos[mm * n + i]]
                            if t != 0.0:
                                do += t * _others(val, pos, na, n, i, j, mm)
                    tadj[pj] += ty * o + ay * do


# Sums and products over gathered entries: four independent accumulators, so the loads of
# the next entries overlap the latency of the last addition or multiplication (a single
# accumulator waits on it at every entry; ~25% faster on 1Lbb's ~4,400-entry segments).

@njit(**INLINE)
def _segsum_fwd(vals, pos, start, stop):
    a0 = a1 = a2 = a3 = 0.0
    j = U(start)
    end = U(stop)
    while j + U(4) <= end:
        a0 += vals[U(pos[j])]
        a1 += vals[U(pos[j + U(1)])]
        a2 += vals[U(pos[j + U(2)])]
        a3 += vals[U(pos[j + U(3)])]
        j += U(4)
    while j < end:
        a0 += vals[U(pos[j])]
        j += U(1)
    return (a0 + a1) + (a2 + a3)


@njit(**INLINE)
def _segprod_fwd(vals, pos, start, stop, cpy):
    """Product of the gathered entries; each is also copied to vals[cpy + j] for the reverse."""
    a0 = a1 = a2 = a3 = 1.0
    j = U(start)
    end = U(stop)
    while j + U(4) <= end:
        x0 = vals[U(pos[j])]
        x1 = vals[U(pos[j + U(1)])]
        x2 = vals[U(pos[j + U(2)])]
        x3 = vals[U(pos[j + U(3)])]
        vals[cpy + j] = x0
        vals[cpy + j + U(1)] = x1
        vals[cpy + j + U(2)] = x2
        vals[cpy + j + U(3)] = x3
        a0 *= x0
        a1 *= x1
        a2 *= x2
        a3 *= x3
        j += U(4)
    while j < end:
        x0 = vals[U(pos[j])]
        vals[cpy + j] = x0
        a0 *= x0
        j += U(1)
    return (a0 * a1) * (a2 * a3)


@njit(**OPTS)
def _others_rev(j0, j1, pos, val, tv, adj, tadj, ay, ty, second, work):
    """Reverse of one segment product without division: others_j = prefix_j * suffix_j (zero
    entries safe), with the tangents of forward-over-reverse when second."""
    L = np.int64(j1 - j0)
    k0 = np.int64(j0)
    suf = work[0 : L + 1]
    dsuf = work[L + 1 : 2 * L + 2]
    suf[L] = 1.0
    dsuf[L] = 0.0
    for i in range(L - 1, -1, -1):
        x = val[pos[k0 + i]]
        suf[i] = suf[i + 1] * x
        dsuf[i] = (dsuf[i + 1] * x + suf[i + 1] * tv[pos[k0 + i]]) if second else 0.0
    pre, dpre = 1.0, 0.0
    for i in range(L):
        pj = pos[k0 + i]
        o = pre * suf[i + 1]
        adj[pj] += ay * o
        x = val[pj]
        if second:
            tadj[pj] += ty * o + ay * (dpre * suf[i + 1] + pre * dsuf[i + 1])
            dpre = dpre * x + pre * tv[pj]
        pre *= x


@njit(**INLINE)
def _lane_rev(adj, pos, j, suf, val, cpy, pre, others, ay):
    """Entry j's adjoint; the lane's prefix product after it (the entries' copy at cpy)."""
    adj[U(pos[j])] += ay * (pre * suf[j] * others)
    return pre * val[cpy + j]


@njit(**OPTS)
def _segprod_rev(out, nseg, offs, pos, val, adj, work, cpy):
    """First-order reverse of the segment products, adj_j += ay * prod_{i != j} x_i, without
    division (a division per entry took 6 of 1Lbb's ~30 us, vectorised or not; zero entries are
    safe). The entries of a segment are dealt to four lanes (j mod 4) so that four product
    chains run at once: others_j = (prefix in its lane) * (suffix in its lane) * (totals of
    the other three lanes). The entries are read from the copy the forward pass left at cpy."""
    suf = work[0 : U(offs[nseg])]
    for s in range(nseg):
        ay = adj[out + s]
        if ay == 0.0:
            continue
        j0, j1 = U(offs[s]), U(offs[s + 1])
        nq = (j1 - j0) // U(4)
        t = j0 + U(4) * nq
        # suffixes within each lane, from the end (the tail entries end lanes 0, 1, 2)
        s0 = s1 = s2 = s3 = 1.0
        if t < j1:
            suf[t] = 1.0
            s0 = val[cpy + t]
        if t + U(1) < j1:
            suf[t + U(1)] = 1.0
            s1 = val[cpy + t + U(1)]
        if t + U(2) < j1:
            suf[t + U(2)] = 1.0
            s2 = val[cpy + t + U(2)]
        q = nq
        while q > U(0):
            q -= U(1)
            j = j0 + U(4) * q
            suf[j] = s0
            s0 *= val[cpy + j]
            suf[j + U(1)] = s1
            s1 *= val[cpy + j + U(1)]
            suf[j + U(2)] = s2
            s2 *= val[cpy + j + U(2)]
            suf[j + U(3)] = s3
            s3 *= val[cpy + j + U(3)]
        # lane totals are s0..s3 now; each lane's entries need the other three
        s01 = s0 * s1
        s23 = s2 * s3
        o0, o1, o2, o3 = s1 * s23, s0 * s23, s01 * s3, s01 * s2
        p0 = p1 = p2 = p3 = 1.0
        for q in range(nq):
            j = j0 + U(4) * q
            p0 = _lane_rev(adj, pos, j, suf, val, cpy, p0, o0, ay)
            p1 = _lane_rev(adj, pos, j + U(1), suf, val, cpy, p1, o1, ay)
            p2 = _lane_rev(adj, pos, j + U(2), suf, val, cpy, p2, o2, ay)
            p3 = _lane_rev(adj, pos, j + U(3), suf, val, cpy, p3, o3, ay)
        if t < j1:
            _lane_rev(adj, pos, t, suf, val, cpy, p0, o0, ay)
        if t + U(1) < j1:
            _lane_rev(adj, pos, t + U(1), suf, val, cpy, p1, o1, ay)
        if t + U(2) < j1:
            _lane_rev(adj, pos, t + U(2), suf, val, cpy, p2, o2, ay)


@njit(**OPTS)
def _segment(mode, ins_k, ip, val, tv, adj, tadj, second, work):
    op, out, nseg, b = ins_k[F_OP], ins_k[F_OUT], ins_k[F_SIZE], ins_k[F_IP]
    offs = ip[b + 1 : b + 2 + nseg]
    pos = ip[b + 2 + nseg : b + 2 + nseg + offs[nseg]]
    if op == OP_SEGPROD and mode == 2 and not second:
        _segprod_rev(out, nseg, offs, pos, val, adj, work, U(ins_k[F_CODE]))
        return
    for s in range(nseg):
        j0, j1 = U(offs[s]), U(offs[s + 1])
        if op == OP_SEGSUM:
            if mode == 0:
                val[out + s] = _segsum_fwd(val, pos, j0, j1)
            elif mode == 1:
                tv[out + s] = _segsum_fwd(tv, pos, j0, j1)
            else:
                ay = adj[out + s]
                if second:
                    ty = tadj[out + s]
                    for j in range(j0, j1):
                        q = U(pos[j])
                        adj[q] += ay
                        tadj[q] += ty
                elif ins_k[F_FLAGS] & SOLE:  # nothing else reads these entries (_zero_adj)
                    for j in range(j0, j1):
                        adj[U(pos[j])] = ay
                elif ay != 0.0:
                    for j in range(j0, j1):
                        adj[U(pos[j])] += ay
            continue
        if mode == 0:
            val[out + s] = _segprod_fwd(val, pos, j0, j1, U(ins_k[F_CODE]))
        elif mode == 1:
            pre, dpre = 1.0, 0.0
            for j in range(j0, j1):
                q = U(pos[j])
                x = val[q]
                dpre = dpre * x + pre * tv[q]
                pre *= x
            tv[out + s] = dpre
        else:
            ay = adj[out + s]
            ty = tadj[out + s]
            if ay != 0.0 or ty != 0.0:
                _others_rev(j0, j1, pos, val, tv, adj, tadj, ay, ty, second, work)


@njit(**OPTS)
def _term(mode, ins_k, ip, fp, val, tv, adj, tadj, data, sat, second):
    op, out, b, f = ins_k[F_OP], ins_k[F_OUT], ins_k[F_IP], ins_k[F_FP]
    m = ip[b]
    didx = ip[b + 1 : b + 1 + m]
    pos = ip[b + 1 + m : b + 1 + 2 * m]
    if mode == 0:
        t = 0.0
        if op == OP_GAUSS:
            for i in range(m):
                r = data[didx[i]] - val[pos[i]]
                t += 0.5 * r * r * fp[f + i]
            t += fp[f + m]
        elif op == OP_LOGNORMAL:  # a Gaussian in ln(datum), plus the Jacobian ln(datum)
            for i in range(m):
                obs = data[didx[i]]
                lo = math.log(obs) if obs > 0.0 else math.nan
                r = lo - val[pos[i]]
                t += 0.5 * r * r * fp[f + i] + lo
            t += fp[f + m]
        else:
            for i in range(m):
                d = didx[i]
                lam = val[pos[i]]
                if op == OP_POISSON_AUX:
                    lam *= fp[f + i]
                nobs = data[d]
                if lam < 0.0:  # a negative rate is no Poisson mean (pyhf gives NaN if n > 0)
                    t += math.nan
                else:
                    # lam - n ln(lam) + lgamma(n+1) as n (u - ln(1 + u)) + sat, u = lam/n - 1:
                    # no cancellation of large terms (runtime/model.poisson_saturation)
                    if nobs == 0.0:
                        t += lam
                    else:
                        u = (lam - nobs) / nobs
                        t += nobs * (u - math.log1p(u)) + sat[d]
        val[out] = t
        return t
    if mode == 2:
        for i in range(m):
            x = val[pos[i]]
            nobs = data[didx[i]]
            if op == OP_POISSON:
                g = 1.0 - nobs / x if nobs != 0.0 else 1.0
                h = nobs / (x * x) if nobs != 0.0 else 0.0
            elif op == OP_POISSON_AUX:
                g = fp[f + i] - nobs / x if nobs != 0.0 else fp[f + i]
                h = nobs / (x * x) if nobs != 0.0 else 0.0
            elif op == OP_LOGNORMAL:
                g = (x - (math.log(nobs) if nobs > 0.0 else math.nan)) * fp[f + i]
                h = fp[f + i]
            else:
                g = (x - nobs) * fp[f + i]
                h = fp[f + i]
            adj[pos[i]] += g
            if second:
                tadj[pos[i]] += h * tv[pos[i]]
    return 0.0


# -- expressions (register programs from the sympy backend) and multivariate normal terms -----

EXPR_BLOCK = 64  # points per block: each register op runs over a block (one dispatch per op and block)


@njit(**OPTS)
def _regs_block(ops, nops, o0, consts, R, m):
    """The register program over m points at once: R[register, point]."""
    for q in range(nops):
        b = o0 + 4 * q
        code, d, a, c = ops[b], ops[b + 1], ops[b + 2], ops[b + 3]
        if code == 0:
            v = consts[a]
            for j in range(m):
                R[d, j] = v
        elif code == 1:
            for j in range(m):
                R[d, j] = R[a, j] + R[c, j]
        elif code == 2:
            for j in range(m):
                R[d, j] = R[a, j] - R[c, j]
        elif code == 3:
            for j in range(m):
                R[d, j] = R[a, j] * R[c, j]
        elif code == 4:
            for j in range(m):
                R[d, j] = R[a, j] / R[c, j]
        elif code == 7:
            for j in range(m):
                R[d, j] = math.exp(R[a, j])
        elif code == 6:
            for j in range(m):
                R[d, j] = -R[a, j]
        else:
            for j in range(m):
                x, y = R[a, j], R[c, j]
                if code == 5:
                    R[d, j] = x ** y
                elif code == 8:
                    R[d, j] = math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
                elif code == 9:
                    R[d, j] = math.sqrt(x) if x >= 0 else math.nan
                elif code == 10:
                    R[d, j] = abs(x)
                elif code == 11:
                    R[d, j] = math.sin(x)
                elif code == 12:
                    R[d, j] = math.cos(x)
                elif code == 13:
                    R[d, j] = math.tanh(x)
                elif code == 14:
                    R[d, j] = max(x, y)
                elif code == 15:
                    R[d, j] = min(x, y)
                elif code == 16:
                    R[d, j] = 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
                elif code == 17:
                    R[d, j] = 1.0 if x > 0 else (0.0 if x < 0 else 0.5)
                elif code == 19:
                    R[d, j] = math.erf(x)
                else:
                    R[d, j] = x


@njit(**OPTS)
def _expr(mode, ins_k, ip, fp, val, tv, adj, tadj, second):
    out, n, b, f = ins_k[F_OUT], ins_k[F_SIZE], ins_k[F_IP], ins_k[F_FP]
    na, nregs, nops, vreg = ip[b], ip[b + 1], ip[b + 2], ip[b + 3]
    # the op list is ordered value, gradient, Hessian: run only the prefix this mode needs
    run = ip[b + 4] if mode == 0 else (nops if second else ip[b + 5])
    g0 = b + 6
    h0 = g0 + na
    o0 = h0 + na * (na + 1) // 2
    p0 = o0 + 4 * nops
    B = min(n, EXPR_BLOCK)
    R = np.empty((nregs, B))
    consts = fp[f:]
    for s0 in range(0, n, B):
        m = min(B, n - s0)
        for k in range(na):
            for j in range(m):
                R[k, j] = val[ip[p0 + k * n + s0 + j]]
        _regs_block(ip, run, o0, consts, R, m)
        for j in range(m):
            i = s0 + j
            if mode == 0:
                val[out + i] = R[vreg, j]
            elif mode == 1:
                acc = 0.0
                for k in range(na):
                    acc += R[ip[g0 + k], j] * tv[ip[p0 + k * n + i]]
                tv[out + i] = acc
            else:
                ay = adj[out + i]
                ty = tadj[out + i] if second else 0.0
                if ay == 0.0 and ty == 0.0:
                    continue
                for k in range(na):
                    pk = ip[p0 + k * n + i]
                    gk = R[ip[g0 + k], j]
                    adj[pk] += ay * gk
                    if second:
                        hsum = 0.0
                        for l in range(na):
                            lo, hi = (k, l) if k <= l else (l, k)
                            # index of (lo, hi) in the row-by-row upper triangle
                            hidx = lo * na - lo * (lo - 1) // 2 + (hi - lo)
                            hsum += R[ip[h0 + hidx], j] * tv[ip[p0 + l * n + i]]
                        tadj[pk] += ty * gk + ay * hsum


@njit(**OPTS)
def _unbinned(mode, ins_k, ip, fp, val, tv, adj, tadj, data, second):
    """rate - sum_i w_i ln density_i, w_i = data[index_i] (points of weight 0 skipped):
    value, reverse, second order."""
    b = ins_k[F_IP]
    m = ip[b]
    rpos = ip[b + 1 + 2 * m]
    if mode == 0:
        t = val[rpos]
        for i in range(m):
            w = data[ip[b + 1 + i]]
            if w != 0.0:
                d = val[ip[b + 1 + m + i]]
                t -= w * (math.log(d) if d > 0.0 else (-math.inf if d == 0.0 else math.nan))
        val[ins_k[F_OUT]] = t
        return t
    adj[rpos] += 1.0
    for i in range(m):
        w = data[ip[b + 1 + i]]
        if w == 0.0:
            continue
        p = ip[b + 1 + m + i]
        d = val[p]
        adj[p] -= w / d
        if second:
            tadj[p] += w / (d * d) * tv[p]
    return 0.0


@njit(**OPTS)
def _mvn(mode, ins_k, ip, fp, val, tv, adj, tadj, data, second):
    """-ln MVN(data[idx] | x, Sigma) with precision P = Sigma^-1: value, reverse, second order."""
    b, f = ins_k[F_IP], ins_k[F_FP]
    k = ip[b]
    r = np.empty(k)
    for i in range(k):
        r[i] = data[ip[b + 1 + i]] - val[ip[b + 1 + k + i]]
    if mode == 0:
        t = 0.0
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += fp[f + i * k + j] * r[j]
            t += r[i] * acc
        val[ins_k[F_OUT]] = 0.5 * t + fp[f + k * k]
        return 0.5 * t + fp[f + k * k]
    for i in range(k):
        acc = 0.0
        tacc = 0.0
        for j in range(k):
            acc += fp[f + i * k + j] * r[j]
            if second:
                tacc += fp[f + i * k + j] * tv[ip[b + 1 + k + j]]
        adj[ip[b + 1 + k + i]] -= acc
        if second:
            tadj[ip[b + 1 + k + i]] += tacc
    return 0.0


# -- sweeps -------------------------------------------------------------------------------------

@njit(**OPTS)
def _scratch(ins, ip):
    """Scratch: 18 floats of basis values; work: room for one float per entry of the largest
    segment product (_segprod_rev), or two per entry of its longest segment (_others_rev)."""
    longest = 0
    entries = 0
    for k in range(ins.shape[0]):
        if ins[k, F_OP] == OP_SEGPROD:
            b = ins[k, F_IP]
            nseg = ins[k, F_SIZE]
            entries = max(entries, ip[b + 1 + nseg])
            for s in range(nseg):
                longest = max(longest, ip[b + 2 + s] - ip[b + 1 + s])
    return np.empty(18), np.empty(max(entries, 2 * longest + 2))


@njit(**OPTS)
def _fwd(ins, ip, fp, val, pars, data, sat, terms, scratch, work):
    """Forward pass; returns the NLL (sum of the terms). terms=False: only the rates."""
    total = 0.0
    for k in range(ins.shape[0]):
        row = ins[k]
        op = row[F_OP]
        if op == OP_PARAMS:
            o = val[row[F_OUT] : row[F_OUT] + row[F_SIZE]]
            for i in range(row[F_SIZE]):
                o[i] = pars[i]
        elif op == OP_INTERP:
            _interp(_int(0), row, ip, fp, val, val, val, val, _bool(0), scratch)
        elif op == OP_ADD or op == OP_MUL:
            _nary(_int(0), row, ip, val, val, val, val, _bool(0))
        elif op == OP_SEGSUM or op == OP_SEGPROD:
            _segment(_int(0), row, ip, val, val, val, val, _bool(0), work)
        elif op == OP_EXPR:
            _expr(_int(0), row, ip, fp, val, val, val, val, _bool(0))
        elif not terms:
            continue
        elif op == OP_MVN:
            total += _mvn(_int(0), row, ip, fp, val, val, val, val, data, _bool(0))
        elif op == OP_UNBINNED:
            total += _unbinned(_int(0), row, ip, fp, val, val, val, val, data, _bool(0))
        else:
            total += _term(_int(0), row, ip, fp, val, val, val, val, data, sat, _bool(0))
    return total


@njit(**OPTS)
def _jvp(ins, ip, fp, val, tv, vec, scratch, work):
    for k in range(ins.shape[0]):
        row = ins[k]
        op = row[F_OP]
        if op == OP_PARAMS:
            o = tv[row[F_OUT] : row[F_OUT] + row[F_SIZE]]
            for i in range(row[F_SIZE]):
                o[i] = vec[i]
        elif op == OP_INTERP:
            _interp(_int(1), row, ip, fp, val, tv, tv, tv, _bool(0), scratch)
        elif op == OP_ADD or op == OP_MUL:
            _nary(_int(1), row, ip, val, tv, tv, tv, _bool(0))
        elif op == OP_SEGSUM or op == OP_SEGPROD:
            _segment(_int(1), row, ip, val, tv, tv, tv, _bool(0), work)
        elif op == OP_EXPR:
            _expr(_int(1), row, ip, fp, val, tv, tv, tv, _bool(0))


@njit(**OPTS)
def _rev(ins, ip, fp, val, tv, adj, tadj, data, grad, hv, second, terms, scratch, work):
    """Reverse sweep; adj (and tadj) must be zero on entry. Gradient into grad, H.v into hv.

    terms=False skips the likelihood terms: adjoints seeded by the caller flow back alone."""
    for k in range(ins.shape[0] - 1, -1, -1):
        row = ins[k]
        op = row[F_OP]
        if op == OP_PARAMS:
            o = row[F_OUT]
            for i in range(row[F_SIZE]):
                grad[i] = adj[o + i]
                if second:
                    hv[i] = tadj[o + i]
        elif op == OP_INTERP:
            _interp(_int(2), row, ip, fp, val, tv, adj, tadj, second, scratch)
        elif op == OP_ADD or op == OP_MUL:
            _nary(_int(2), row, ip, val, tv, adj, tadj, second)
        elif op == OP_SEGSUM or op == OP_SEGPROD:
            _segment(_int(2), row, ip, val, tv, adj, tadj, second, work)
        elif op == OP_EXPR:
            _expr(_int(2), row, ip, fp, val, tv, adj, tadj, second)
        elif not terms:
            continue
        elif op == OP_MVN:
            _mvn(_int(2), row, ip, fp, val, tv, adj, tadj, data, second)
        elif op == OP_UNBINNED:
            _unbinned(_int(2), row, ip, fp, val, tv, adj, tadj, data, second)
        else:
            _term(_int(2), row, ip, fp, val, tv, adj, tadj, data, data, second)


@njit(**OPTS)
def _zero_adj(ins, adj):
    """Zero the adjoints a first-order reverse sweep reads before it writes them (pack.py's
    ZERO_ADJ): the outputs of most instructions and the parameters. Constants' adjoints are
    written but never read, and the entries of a SOLE segment sum are assigned, so the sweep
    need not clear the whole buffer (on 1Lbb ~4,900 of ~14,000 entries)."""
    for k in range(ins.shape[0]):
        if ins[k, F_FLAGS] & ZERO_ADJ:
            o = U(ins[k, F_OUT])
            for i in range(U(ins[k, F_SIZE])):
                adj[o + i] = 0.0


# -- entry points ------------------------------------------------------------------------------

@njit(**OPTS)
def nll(ins, ip, fp, val, pars, data, sat):
    scratch, work = _scratch(ins, ip)
    return _fwd(ins, ip, fp, val, pars, data, sat, _bool(1), scratch, work)


@njit(**OPTS)
def nll_grad(ins, ip, fp, val, adj, pars, data, sat, grad):
    scratch, work = _scratch(ins, ip)
    total = _fwd(ins, ip, fp, val, pars, data, sat, _bool(1), scratch, work)
    _zero_adj(ins, adj)
    _rev(ins, ip, fp, val, adj, adj, adj, data, grad, grad, _bool(0), _bool(1), scratch, work)
    return total


@njit(**OPTS)
def hvp(ins, ip, fp, val, adj, tv, tadj, pars, vec, data, sat, grad, hv):
    """NLL, gradient and the exact Hessian-vector product H.vec."""
    scratch, work = _scratch(ins, ip)
    total = _fwd(ins, ip, fp, val, pars, data, sat, _bool(1), scratch, work)
    _jvp(ins, ip, fp, val, tv, vec, scratch, work)
    adj[:] = 0.0
    tadj[:] = 0.0
    _rev(ins, ip, fp, val, tv, adj, tadj, data, grad, hv, _bool(1), _bool(1), scratch, work)
    return total


@njit(**OPTS)
def hessian_columns(ins, ip, fp, val0, pars, data, sat, columns, H):
    """Exact Hessian columns H[:, j] for j in columns (one forward pass, one HVP per column)."""
    npar = pars.shape[0]
    scratch, work = _scratch(ins, ip)
    val = val0.copy()
    tv = np.zeros_like(val0)
    adj = np.zeros_like(val0)
    tadj = np.zeros_like(val0)
    _fwd(ins, ip, fp, val, pars, data, sat, _bool(1), scratch, work)
    vec = np.zeros(npar)
    grad = np.zeros(npar)
    hv = np.zeros(npar)
    for c in range(columns.shape[0]):
        j = columns[c]
        vec[:] = 0.0
        vec[j] = 1.0
        _jvp(ins, ip, fp, val, tv, vec, scratch, work)
        adj[:] = 0.0
        tadj[:] = 0.0
        _rev(ins, ip, fp, val, tv, adj, tadj, data, grad, hv, _bool(1), _bool(1), scratch, work)
        for i in range(npar):
            H[i, j] = hv[i]


@njit(**OPTS)
def rate_jacobian(ins, ip, fp, val, adj, pars, J):
    """J[d, :] = d(expected count of main data entry d) / d(pars), one reverse sweep per entry
    read by a Poisson term (rows of other entries are left as they are)."""
    scratch, work = _scratch(ins, ip)
    _fwd(ins, ip, fp, val, pars, pars, pars, _bool(0), scratch, work)
    grad = np.zeros(pars.shape[0])
    for k in range(ins.shape[0]):
        row = ins[k]
        if row[F_OP] != OP_POISSON:
            continue
        b = row[F_IP]
        m = ip[b]
        for i in range(m):
            _zero_adj(ins, adj)
            adj[ip[b + 1 + m + i]] = 1.0
            _rev(ins, ip, fp, val, adj, adj, adj, pars, grad, grad, _bool(0), _bool(0), scratch, work)
            J[ip[b + 1 + i], :] = grad


@njit(**OPTS)
def fisher_information(ins, ip, fp, val, adj, pars, H):
    """H += sum over the main data entries d read by Poisson terms of J_d J_d^T / lambda_d, with
    J_d = d lambda_d / d pars (one reverse sweep per entry, as in rate_jacobian) and lambda_d
    floored at 1e-9 max(1, max_d |lambda_d|): the Poisson terms' Fisher information, the fits'
    curvature guess (runtime/fit.py). Only the nonzero entries of each J_d are multiplied."""
    scratch, work = _scratch(ins, ip)
    _fwd(ins, ip, fp, val, pars, pars, pars, _bool(0), scratch, work)
    top = 0.0
    for k in range(ins.shape[0]):
        if ins[k, F_OP] == OP_POISSON:
            b = ins[k, F_IP]
            m = ip[b]
            for i in range(m):
                top = max(top, abs(val[ip[b + 1 + m + i]]))
    floor = 1e-9 * max(1.0, top)
    n = pars.shape[0]
    grad = np.zeros(n)
    nz = np.empty(n, np.int64)
    for k in range(ins.shape[0]):
        if ins[k, F_OP] != OP_POISSON:
            continue
        b = ins[k, F_IP]
        m = ip[b]
        for i in range(m):
            pos = ip[b + 1 + m + i]
            w = 1.0 / max(val[pos], floor)
            _zero_adj(ins, adj)
            adj[pos] = 1.0
            _rev(ins, ip, fp, val, adj, adj, adj, pars, grad, grad, _bool(0), _bool(0), scratch, work)
            c = 0
            for j in range(n):
                if grad[j] != 0.0:
                    nz[c] = j
                    c += 1
            for a in range(c):
                ja = nz[a]
                wa = grad[ja] * w
                for q in range(c):
                    H[ja, nz[q]] += wa * grad[nz[q]]


@njit(**OPTS)
def expected(ins, ip, fp, val, pars, out):
    """Expected value of every data entry a term reads (main rates, constraint means)."""
    scratch, work = _scratch(ins, ip)
    _fwd(ins, ip, fp, val, pars, out, out, _bool(0), scratch, work)
    for k in range(ins.shape[0]):
        row = ins[k]
        op = row[F_OP]
        if (op != OP_POISSON and op != OP_POISSON_AUX and op != OP_GAUSS and op != OP_MVN
                and op != OP_LOGNORMAL and op != OP_UNBINNED):
            continue
        b, f = row[F_IP], row[F_FP]
        m = ip[b]
        for i in range(m):
            x = val[ip[b + 1 + m + i]]
            if op == OP_POISSON_AUX or op == OP_UNBINNED:  # UNBINNED: quadrature weight x density
                x *= fp[f + i]
            elif op == OP_LOGNORMAL:
                x = math.exp(x)
            out[ip[b + 1 + i]] = x
