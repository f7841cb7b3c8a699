"""A bounded quasi-Newton minimiser (projected BFGS) for smooth NLLs with an exact gradient.

Why not SciPy's L-BFGS-B: likelihoods have regions where an expected rate goes negative and
the NLL is NaN; L-BFGS-B's line search cannot step back out of them. Here a non-finite value
just shortens the step. The initial inverse Hessian comes from the exact Hessian of the model
(made positive definite), so a fit typically takes 10-40 gradient evaluations.

Each iteration: free variables are those not held at a bound by their gradient; the search
direction is -B g on them; the step follows the projected path x(t) = P(x + t d) with an
Armijo backtracking line search; B gets a BFGS update when the curvature condition holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tweed.runtime.blas import one_thread

OK = "ok"
MAXITER = "max-iterations"
NAN = "nan"
STALLED = "stalled"


@dataclass
class MinimizeResult:
    x: np.ndarray
    f: float
    g: np.ndarray
    status: str
    message: str
    niter: int
    nfev: int
    pgrad: float  # max |projected gradient| in units of the natural widths


def projected_gradient(x, g, lo, hi) -> np.ndarray:
    return np.where((x <= lo) & (g > 0), 0.0, np.where((x >= hi) & (g < 0), 0.0, g))


def _snap(x, lo, hi, width):
    """Values within a hair (1e-9 natural widths) of a bound are put on it, so that the
    active set sees them: a variable left 1e-12 above its bound would otherwise cut every
    line search short."""
    hair = 1e-9 * width
    x = np.where(x - lo <= hair, lo, x)
    return np.where(hi - x <= hair, hi, x)


def inverse_hessian_guess(H: np.ndarray, free: np.ndarray | None = None, compiled=None) -> np.ndarray:
    """A positive-definite inverse of H[free][:, free] (all of H by default): eigenvalues
    replaced by their magnitude, floored.

    H is first scaled to a unit diagonal (D H D, D = |diag H|^-1/2) and the result scaled back,
    so the floor and the conditioning tests see the correlations, not the parameters' scales:
    one parameter constrained a million times tighter than the others (an MC-statistics
    gamma with a relative error of 2e-6, in the 3L-eRJR workspace) would otherwise set the
    floor of every other direction and shrink their steps ~20-fold (a refit then took ~15,000
    evaluations instead of ~70). A well-conditioned positive-definite scaled H (the usual case:
    the Fisher information plus the constraints) is inverted through its Cholesky factor,
    10-20x cheaper than the eigendecomposition the other cases need.

    compiled: a module with scaled_metric and unscaled_inverse (codegen/numba_minimize.py),
    which do the elementwise steps around the two LAPACK calls in compiled code, with the same
    rounding as the numpy steps here (a fresh fit of a 68-parameter model spent ~110 of its
    ~450 us in those numpy steps)."""
    H = np.asarray(H, dtype=float)
    n = H.shape[0] if free is None else len(free)
    if compiled is not None and n:
        idx = np.arange(n, dtype=np.int64) if free is None else np.ascontiguousarray(free, dtype=np.int64)
        out, scale = np.empty((n, n)), np.empty(n)
        if compiled.scaled_metric(np.ascontiguousarray(H), idx, out, scale):
            with one_thread():
                inv = cholesky_inverse_lower(out.T, overwrite=True)  # out.T: column-major D S D
            if inv is not None:
                B = np.empty((n, n))
                compiled.unscaled_inverse(inv.T, scale, B)
                return B
        # not finite, or not a well-conditioned positive-definite matrix: the steps below
    if free is not None:
        H = H[np.ix_(free, free)]
    H = 0.5 * (H + H.T)
    diag = np.abs(np.diag(H))
    if not np.all(np.isfinite(H)):
        return np.diag(1.0 / np.where(np.isfinite(diag) & (diag > 0), diag, 1.0))
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    Hs = H * scale[:, None] * scale[None, :]
    with one_thread():
        inv = cholesky_inverse_lower(Hs)
        if inv is not None:
            inverse = np.tril(inv)
            inverse += np.tril(inv, -1).T
        else:
            w, V = np.linalg.eigh(Hs)
            top = np.max(np.abs(w)) if w.size else 1.0
            w = np.maximum(np.abs(w), max(top, 1e-300) * 1e-10)
            inverse = (V / w) @ V.T
    return inverse * scale[:, None] * scale[None, :]


def cholesky_inverse_lower(H: np.ndarray, overwrite: bool = False) -> np.ndarray | None:
    """H^-1 from LAPACK's potrf and potri when H is positive definite with a Cholesky diagonal
    spread below 1e4 (so its condition number is not known to exceed 1e8, well inside the
    1e10 floor of the eigenvalue route), else None. Only the lower triangle of the result
    (column-major) holds the inverse: callers mirror it. overwrite: H is column-major and may
    be overwritten (no copy)."""
    if H.size == 0:
        return None
    from scipy.linalg import lapack  # loaded anyway: the compiled minimiser uses LAPACK

    c, info = lapack.dpotrf(H, lower=1, overwrite_a=int(overwrite))
    if info != 0:
        return None
    d = c.diagonal()
    smallest = d.min()
    if not smallest > 0 or d.max() > 1e4 * smallest:
        return None
    inv, info = lapack.dpotri(c, lower=1, overwrite_c=1)  # c is ours: a copy of H, or H itself
    return None if info != 0 else inv


def minimize_bounded(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    B0: np.ndarray,
    gtol: float = 1e-7,
    maxiter: int = 2000,
) -> MinimizeResult:
    """Minimise f on the box [lo, hi] from x0 with inverse-Hessian guess B0."""
    n = x0.size
    width = np.sqrt(np.clip(np.diag(B0), 1e-300, None))
    x = _snap(np.clip(np.array(x0, dtype=float), lo, hi), lo, hi, width)
    f, g = fg(x)
    nfev = 1
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        return MinimizeResult(x, f, g, NAN, "the NLL is not finite at the start point", 0, nfev, np.inf)
    B = B0.copy()
    stalls = 0
    status, message = MAXITER, f"no convergence in {maxiter} iterations"
    it = 0
    for it in range(1, maxiter + 1):
        pg = projected_gradient(x, g, lo, hi)
        pgn = float(np.max(np.abs(pg) * width)) if n else 0.0
        if pgn <= gtol:
            status, message = OK, "converged"
            break
        # variables held at a bound by their gradient do not move this iteration
        active = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        free = ~active
        d = np.zeros(n)
        d[free] = -_reduced(B, free, active) @ g[free]
        slope = float(g @ d)
        if not slope < 0:
            # B lost positive definiteness on this subspace: restart from the guess
            B = B0.copy()
            d[free] = -_reduced(B, free, active) @ g[free]
            slope = float(g @ d)
            if not slope < 0:
                d = -pg * width**2
                slope = float(g @ d)
        t = 1.0
        accepted = False
        for _ in range(60):
            xn = _snap(np.clip(x + t * d, lo, hi), lo, hi, width)
            fn, gn = fg(xn)
            nfev += 1
            if np.isfinite(fn) and np.all(np.isfinite(gn)) and fn <= f + 1e-4 * float(g @ (xn - x)):
                accepted = True
                break
            t *= 0.5 if not np.isfinite(fn) else max(0.1, min(0.5, _quad_step(f, slope, t, fn)))
        if not accepted:
            if pgn <= 100 * gtol:
                status, message = OK, "converged (line search at machine precision)"
            else:
                status, message = STALLED, f"line search failed (projected gradient {pgn:.3g})"
            break
        s = xn - x
        y = gn - g
        sy = float(s @ y)
        df = f - fn
        x, f, g = xn, fn, gn
        if sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))) and sy > 0:
            By = B @ y
            yBy = float(y @ By)
            B += ((sy + yBy) / sy**2) * np.outer(s, s) - (np.outer(By, s) + np.outer(s, By)) / sy
        # tiny progress for several iterations in a row at a near-stationary point: done
        if df <= 1e-14 * max(1.0, abs(f)):
            stalls += 1
            if stalls >= 5:
                pg = projected_gradient(x, g, lo, hi)
                pgn = float(np.max(np.abs(pg) * width)) if n else 0.0
                status = OK if pgn <= 1000 * gtol else STALLED
                message = "converged (no further decrease)" if status == OK else (
                    f"no further decrease with projected gradient {pgn:.3g}")
                break
        else:
            stalls = 0
    pg = projected_gradient(x, g, lo, hi)
    pgn = float(np.max(np.abs(pg) * width)) if n else 0.0
    return MinimizeResult(x, f, g, status, message, it, nfev, pgn)


def _reduced(B: np.ndarray, free: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Inverse Hessian of the free block, given B approximating the full inverse Hessian.

    If H = B^-1, then (H_FF)^-1 = B_FF - B_FA (B_AA)^-1 B_AF (Schur complement).
    """
    Bff = B[np.ix_(free, free)]
    if not active.any():
        return Bff
    Bfa = B[np.ix_(free, active)]
    Baa = B[np.ix_(active, active)]
    try:
        return Bff - Bfa @ np.linalg.solve(Baa, Bfa.T)
    except np.linalg.LinAlgError:
        return Bff


def _quad_step(f0: float, slope: float, t: float, ft: float) -> float:
    """Minimiser of the quadratic through f(0), f'(0), f(t), as a fraction of t."""
    denom = 2.0 * (ft - f0 - slope * t)
    if denom <= 0:
        return 0.5
    return (-slope * t / denom)
