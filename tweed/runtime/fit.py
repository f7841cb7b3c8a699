"""Maximum-likelihood fits with the analytic gradient; uncertainties from the exact Hessian.

The minimiser (minimize.py) is a projected BFGS on the free parameters (fixed ones are
removed, not constrained). Its initial inverse Hessian is the exact Hessian of the NLL at the
model's initial point (made positive definite), computed once per model and set of free
parameters and cached, so parameters of very different widths (a Barlow-Beeston gamma of
width 1e-5 next to a normfactor of width 1) need no tuning. The result carries a status
that every caller checks: "ok", "max-iterations", "stalled" or "nan". A fit that stops
short is retried with the strategies of STRATEGIES, and the result lists what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tweed.errors import FitError
from tweed.runtime.blas import one_thread
from tweed.runtime.minimize import OK, STALLED, MinimizeResult, inverse_hessian_guess, minimize_bounded
from tweed.runtime.model import poisson_saturation

OK_CODE, STALLED_CODE = 0, 3  # the compiled minimiser's status codes (codegen/numba_minimize.py)

GTOL = 1e-7  # projected gradient x natural width: NLL changes ~ GTOL^2 remain


@dataclass
class FitResult:
    bestfit: np.ndarray
    twice_nll: float
    status: str
    message: str
    par_names: tuple[str, ...]
    fixed: np.ndarray
    grad_norm: float
    nfev: int
    at_bounds: list[str] = field(default_factory=list)
    uncertainties: np.ndarray | None = None
    covariance: np.ndarray | None = None
    attempts: list[dict] = field(default_factory=list)  # strategies tried, in order
    warnings: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == OK

    @property
    def nll(self) -> float:
        return 0.5 * self.twice_nll

    def correlation(self) -> np.ndarray | None:
        if self.covariance is None:
            return None
        d = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        outer = np.outer(d, d)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(outer > 0, self.covariance / np.where(outer > 0, outer, 1.0), 0.0)

    def require_success(self, what: str = "fit") -> "FitResult":
        if not self.success:
            raise FitError(f"{what} failed ({self.status}): {self.message}", result=self)
        return self

    def to_dict(self) -> dict:
        return {
            "parameters": list(self.par_names),
            "bestfit": self.bestfit.tolist(),
            "uncertainties": None if self.uncertainties is None else self.uncertainties.tolist(),
            "twice_nll": self.twice_nll,
            "status": self.status,
            "message": self.message,
            "fixed": [n for n, f in zip(self.par_names, self.fixed) if f],
            "at_bounds": self.at_bounds,
            "grad_norm": self.grad_norm,
            "nfev": self.nfev,
            "attempts": self.attempts,
            "warnings": self.warnings,
        }


def _inverse_hessian_guess(model, free: np.ndarray) -> np.ndarray:
    """Cached per model and free set: a positive-definite inverse-Hessian guess at the inits."""
    cache = model.__dict__.setdefault("_fit_guess", {})
    key = free.tobytes()
    if key not in cache:
        if "_H0" not in model.__dict__:
            with np.errstate(all="ignore"):
                model._H0 = _curvature(model, model.inits())
        cache[key] = inverse_hessian_guess(model._H0, free, _compiled_steps(model))
    return cache[key]


def _guess_width(model, free: np.ndarray) -> np.ndarray:
    """1e-6 x the guess's standard deviations: how near a bound a fit's end counts as at it
    (cached with the guess: a fit asks every time)."""
    cache = model.__dict__.setdefault("_fit_guess", {})
    key = b"width" + free.tobytes()
    if key not in cache:
        cache[key] = 1e-6 * np.sqrt(np.maximum(np.diagonal(_inverse_hessian_guess(model, free)), 0.0))
    return cache[key]


def _compiled_steps(model):
    """The backend's compiled helpers for inverse_hessian_guess, if it has them."""
    return getattr(model.kernels, "metric_steps", None)


def _curvature(model, pars: np.ndarray) -> np.ndarray:
    """The NLL's curvature matrix at pars, the cheaper way: with few bins, the Fisher
    information J^T diag(1/lambda) J + constraint curvatures (one reverse sweep per bin);
    otherwise the exact Hessian (one Hessian-vector product per parameter)."""
    k = model.kernels
    n_main, n = model.n_main, model.n_params
    if getattr(k, "rate_jacobian", None) is None or n_main > n or model.unbinned:
        return model.hessian(pars)
    if getattr(k, "fisher_information", None) is not None:  # compiled: the same sum, in one call
        return k.fisher_information(pars)
    J = k.rate_jacobian(pars)[:n_main]
    lam = model.expected_data(pars)[:n_main]
    w = 1.0 / np.maximum(lam, 1e-9 * max(1.0, float(np.max(np.abs(lam)))))
    G = (J.T * w) @ J
    return G + k.constraint_hessian()


STATUS = {0: OK, 1: "max-iterations", 2: "nan", 3: "stalled"}
MESSAGES = {0: "converged", 1: "no convergence in the iteration limit",
            2: "the NLL is not finite at the start point", 3: "the line search cannot decrease the NLL"}


def _minimize(model, data, x, free, lo, hi, B0, fg, y0=None, gtol=None):
    """The compiled minimiser when the backend has one, else the Python reference."""
    y0 = x[free] if y0 is None else y0
    gtol = GTOL if gtol is None else gtol
    kernels = model.kernels
    if getattr(kernels, "minimize", None) is None or not USE_COMPILED:
        return minimize_bounded(fg, y0, lo, hi, B0, gtol=gtol)
    d, lg = model._data(data)
    y, f, st, it, nfev, pg = kernels.minimize(x, free, y0, lo, hi, B0, d, lg, gtol, MAXITER)
    return MinimizeResult(y, f, None, STATUS[st], MESSAGES[st] if st else "converged", it, nfev, pg)


USE_COMPILED = True  # False: always the Python minimiser (tests compare the two)
MAXITER = 2000


def at_rate_boundary(model, pars, data=None, rtol: float = 1e-9) -> bool:
    """True if an empty bin's expected rate is 0 at pars (to rtol): the NLL keeps decreasing
    towards a negative rate, where it is undefined, so a minimiser stops on that wall. The stop
    need not be the constrained minimum (rates >= 0): fit() then finishes the fit on the
    boundary (minimize_on_rate_boundary) and uses this to say why a fit ended there."""
    d = model.data if data is None else np.asarray(data)
    lam = model.expected_data(pars)[: model.n_main]
    empty = d[: model.n_main] == 0
    return bool(np.any(empty & (lam <= rtol * (1.0 + np.max(np.abs(lam))))))


BARRIER = (1e-3, 1e-6, 1e-9)  # pseudo-counts of the empty bins: the interior-point stages
NO_WALL_STOP = 1 << 30  # inside the barrier, steps that overshoot into negative rates just back off


def _barrier_stages(model, kernels, start, free, lo, hi, data_at):
    """The interior-point stages: for each barrier weight m in BARRIER, the compiled minimiser
    on data_at(m) (the data with the barrier's pseudo-counts or weights), each stage from the
    last, steps into the undefined region backing off. Yields (y, status, evaluations)."""
    B0 = _inverse_hessian_guess(model, free)
    y = np.clip(start[free], lo, hi)
    for m in BARRIER:
        dm = data_at(m)
        y, _, st, _, n, _ = kernels.minimize(start, free, y, lo, hi, B0, dm, poisson_saturation(dm), GTOL, 2000,
                                             NO_WALL_STOP)
        yield y, st, n


def minimize_on_rate_boundary(model, data, full, free, lo, hi, f_stop=None, other_start=None):
    """The minimum with the expected rates of the empty main bins held >= 0, after a stop on
    the wall where one of them vanishes (below it the NLL is undefined, and a gradient method
    stops wherever it first meets the wall: it cannot slide along it).

    Interior point: the empty bins get a pseudo-count m, whose Poisson term lambda - m ln(lambda)
    is the log barrier of lambda >= 0; the compiled minimiser runs for m = 1e-3, 1e-6, 1e-9,
    each stage from the last, starting inside (other_start: the fit's start, where the rates
    are > 0). The result is the stage point with the lowest true NLL; the m = 1e-3 stage must
    converge, which bounds the NLL's distance to the constrained minimum by (empty bins) x 1e-3
    (the barrier's duality gap); the later stages bring it to ~1e-9. Where the barrier fails,
    SLSQP with the rates as constraints, from the stop.

    full: the stop (all parameters); free: indices minimised over; lo, hi: their bounds.
    Returns (y, f, nfev) of a feasible result no worse than the stop, or None."""
    d = np.asarray(model.data if data is None else data, dtype=float)
    empty = np.zeros(d.size, dtype=bool)
    empty[: model.n_main] = d[: model.n_main] == 0
    if not empty.any():
        return None
    f0 = model.nll(full, d) if f_stop is None else f_stop
    if getattr(model.kernels, "minimize", None) is None:  # a backend without the compiled minimiser
        out = _slsqp_on_rate_boundary(model, d, full, free, lo, hi, empty[: model.n_main])
        return out if out is not None and out[1] <= f0 + 1e-9 * max(1.0, abs(f0)) else None
    start = np.array(full if other_start is None else other_start, dtype=float)
    best, nfev, first_ok = None, 0, False
    x = start.copy()
    for k, (y, st, n) in enumerate(_barrier_stages(model, model.kernels, start, free, lo, hi,
                                                   lambda m: np.where(empty, m, d))):
        nfev += n
        if k == 0:
            first_ok = st == OK_CODE
        x[free] = y
        ft = model.nll(x, d)
        if st in (OK_CODE, STALLED_CODE) and np.isfinite(ft) and (best is None or ft < best[1]):
            best = (y.copy(), float(ft))
    if first_ok and best is not None and best[1] <= f0 + 1e-9 * max(1.0, abs(f0)):
        return best[0], best[1], nfev
    slsqp = _slsqp_on_rate_boundary(model, d, full, free, lo, hi, empty[: model.n_main])
    if slsqp is not None and slsqp[1] <= f0 + 1e-9 * max(1.0, abs(f0)):
        return slsqp[0], slsqp[1], nfev + slsqp[2]
    return None


def _slsqp_on_rate_boundary(model, d, full, free, lo, hi, empty_main):
    from scipy.optimize import minimize  # imported here: only a failed barrier needs it

    empty = np.flatnonzero(empty_main)
    x = np.array(full, dtype=float)
    put, fun, nfev = _slsqp_objective(model, d, x, free, model.nll(x, d))

    # held >= a hair above 0: SLSQP ends within rounding of its constraints, and a rate of
    # -1e-16 has no NLL (the hair moves the NLL by ~1e-10)
    hair = 1e-10 * max(1.0, float(np.max(model.expected_data(x)[: model.n_main])))

    def cons(y):
        return model.expected_data(put(y))[empty] - hair

    def cons_jac(y):
        return model.kernels.rate_jacobian(put(y))[np.ix_(empty, free)]

    y = np.clip(x[free], lo, hi)
    for _ in range(4):  # SLSQP's "positive directional derivative" stop: go on from there
        r = minimize(fun, y, jac=True, method="SLSQP", bounds=list(zip(lo, hi)),
                     constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
                     options={"maxiter": 1000, "ftol": 1e-10})
        y = np.clip(r.x, lo, hi)
        if r.success or r.status != 8:
            break
    f = model.nll(put(y), d)
    lam = model.expected_data(x)[: model.n_main]
    if r.success and np.isfinite(f) and np.all(lam[empty] >= 0.0):
        return y, float(f), nfev[0]
    return None


def _slsqp_objective(model, data, full, free, f_ref):
    """(put, fun, nfev) for SLSQP over the free parameters: put(y) writes y into `full`,
    fun(y) gives the NLL and its gradient, a large finite value where the NLL is undefined
    (SLSQP cannot step back from infinities), nfev[0] counts the calls."""
    penalty = abs(f_ref) * 10.0 + 1e6 if np.isfinite(f_ref) else 1e300
    nfev = [0]

    def put(y):
        full[free] = y
        return full

    def fun(y):
        nfev[0] += 1
        f, g = model.nll_and_grad(put(y), data)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return penalty, np.zeros_like(y)
        return f, g[free]

    return put, fun, nfev


def has_empty_bins(model, data=None) -> bool:
    d = model.data if data is None else np.asarray(data)
    return bool(np.any(d[: model.n_main] == 0))


def at_kink(model, pars, free, lo, hi, data=None, rel: float = 1e-6) -> bool:
    """True if no small step along any free coordinate, either way, lowers the NLL: a minimum
    where the NLL is not differentiable (a floored template fraction, a clipped rate), on which
    a gradient method stalls although nothing lower is near."""
    f0 = model.nll(pars, data)
    if not np.isfinite(f0):
        return False
    width = np.sqrt(np.clip(np.diag(_inverse_hessian_guess(model, free)), 1e-300, None))
    tol = 1e-12 * max(1.0, abs(f0))
    x = pars.copy()
    for k, i in enumerate(free):
        h = rel * max(width[k], 1e-12)
        for step in (h, -h):
            xi = min(max(pars[i] + step, lo[i]), hi[i])
            if xi == pars[i]:
                continue
            x[i] = xi
            f = model.nll(x, data)
            x[i] = pars[i]
            if np.isfinite(f) and f < f0 - tol:
                return False
    return True


# What a fit tries, in order, until one converges (docs/robustness.md):
#   bfgs            compiled projected BFGS from the start, metric from the model's curvature
#                   at its initial values (Fisher information or exact Hessian)
#   hessian-restart the same from where it stopped, metric = exact Hessian there
#   from-inits      from the model's initial values (or the bounds' midpoints if the start was
#                   the inits), exact-Hessian metric there, ten times tighter tolerance
#   reference       the Python minimiser (another implementation) from the best point so far
STRATEGIES = ("bfgs", "hessian-restart", "from-inits", "reference")


def _metric_at(model, data, full, free):
    with np.errstate(all="ignore"):
        H = model.hessian(full, data, free_only=True)
    return inverse_hessian_guess(H, free, _compiled_steps(model))


def _with_retries(model, data, x, free, lo, hi, fg, full):
    """Run the strategies until one converges; the result with the lowest NLL otherwise."""
    attempts = []
    best = None
    for strategy in STRATEGIES:
        if strategy == "bfgs":
            res = _minimize(model, data, x, free, lo, hi, _inverse_hessian_guess(model, free), fg)
        elif strategy == "hessian-restart":
            if not np.all(np.isfinite(best.x)):
                continue
            full[:] = x
            full[free] = best.x
            B = _metric_at(model, data, full, free)
            full[:] = x
            res = _minimize(model, data, full, free, lo, hi, B, fg, y0=best.x)
        elif strategy == "from-inits":
            start = model.inits()[free]
            if np.allclose(start, x[free]):
                span = np.where(np.isfinite(hi - lo), 0.5 * (lo + hi), start)
                start = 0.5 * (start + span)
            start = np.clip(start, lo, hi)
            full[:] = x
            full[free] = start
            if not np.isfinite(model.nll(full, data)):
                continue
            B = _metric_at(model, data, full, free)
            full[:] = x
            res = _minimize(model, data, full, free, lo, hi, B, fg, y0=start, gtol=GTOL / 10)
        else:
            y0 = best.x if np.all(np.isfinite(best.x)) else x[free]
            res = minimize_bounded(fg, y0, lo, hi, _inverse_hessian_guess(model, free), gtol=GTOL)
        attempts.append((strategy, res.status, float(res.f), int(res.nfev)))
        if best is None or (np.isfinite(res.f) and (not np.isfinite(best.f) or res.f < best.f)) or res.status == OK:
            best = res
        if res.status == OK:
            break
    return best, attempts


def fit(
    model,
    data=None,
    init=None,
    bounds=None,
    fixed=None,
    poi_value: float | None = None,
    hessian: bool = True,
    fix: dict | None = None,
) -> FitResult:
    """Minimise the NLL. poi_value fixes the POI at that value (pyhf's fixed_poi_fit); fix
    holds any parameters ({name or index: value}) at given values."""
    x = model.inits() if init is None else np.array(init, dtype=float)
    bounds = model.bounds() if bounds is None else np.array(bounds, dtype=float)
    fixed = model.fixed() if fixed is None else np.array(fixed, dtype=bool)
    holds = dict(fix or {})
    if poi_value is not None:
        if model.poi_index is None:
            raise ValueError("the model has no POI to fix")
        holds[model.poi_index] = poi_value
    if holds:
        fixed = fixed.copy()
        bounds = bounds.copy()
        for key, value in holds.items():
            i = key if isinstance(key, (int, np.integer)) else model.params.index(key)
            x[i] = value
            fixed[i] = True
            # a held parameter may sit outside its fit range (limit scans widen their bracket)
            bounds[i] = (min(bounds[i, 0], value), max(bounds[i, 1], value))
    lo_all, hi_all = bounds[:, 0], bounds[:, 1]
    inside = (x >= lo_all) & (x <= hi_all)  # (NaN counts as outside)
    if not inside.all():
        i = np.flatnonzero(~inside)[0]
        raise ValueError(
            f"initial value {x[i]} of {model.par_names[i]} is outside its bounds "
            f"[{lo_all[i]}, {hi_all[i]}]"
        )
    free = (~fixed).nonzero()[0]
    full = x.copy()

    def fg(y):
        full[free] = y
        f, g = model.nll_and_grad(full, data)
        return f, g[free]

    lo, hi = lo_all[free], hi_all[free]
    if getattr(model, "domain", None) is None:
        res, attempts = _with_retries(model, data, x, free, lo, hi, fg, full)
    else:
        res, attempts = _domain_fit(model, data, x, free, lo, hi, fg, full)
    evaluations = sum(a[3] for a in attempts)
    best = x.copy()
    best[free] = res.x
    if res.status == STALLED and has_empty_bins(model, data):
        # a stop on (or pressing towards) the wall where an empty bin's rate reaches 0
        wall = minimize_on_rate_boundary(model, data, best, free, lo, hi, float(res.f),
                                         other_start=x)
        if wall is None:
            attempts.append(("rates>=0", STALLED, float(res.f), 0))
            if at_rate_boundary(model, best, data):
                res.message = ("stopped on the wall where the expected rate of an empty bin is 0, and the "
                               "minimisation with those rates held >= 0 failed")
        else:
            res.x, res.f = wall[0], wall[1]
            best[free] = res.x
            evaluations += wall[2]
            attempts.append(("rates>=0", OK, wall[1], wall[2]))
            res.status = OK
            res.message = ("converged on the boundary where the expected rate of an empty bin is 0 "
                           "(interior point: those rates held >= 0)" if at_rate_boundary(model, best, data) else
                           "converged (interior-point refit after a stop near an empty bin's zero rate)")
    if res.status == STALLED and at_kink(model, best, free, lo_all, hi_all, data):
        res.status = OK
        res.message = "converged at a kink of the NLL (no coordinate step decreases it)"
    names = model.par_names
    near = np.minimum(res.x - lo, hi - res.x) <= _guess_width(model, free)
    at = [names[j] for j in free[near]] if near.any() else []
    out = FitResult(
        bestfit=best, twice_nll=2.0 * float(res.f), status=res.status, message=res.message,
        par_names=names, fixed=fixed, grad_norm=res.pgrad, nfev=evaluations, at_bounds=at,
        attempts=[{"strategy": a[0], "status": a[1], "twice_nll": 2.0 * a[2], "nfev": a[3]} for a in attempts],
    )
    curv = getattr(model.kernels, "constraint_curvature", None)
    if curv is not None and at:
        constrained = curv() > 0
        out.warnings = [f"constrained parameter {n} ended at a bound of its range"
                        for n in at if constrained[names.index(n)]]
    if hessian and out.success:
        _add_uncertainties(model, out, data, free)
    return out


DOMAIN_ATOL = 1e-9  # how far below 0 a domain rate may end (relative to the largest rate)


def _feasible(model, pars) -> bool:
    g = model.domain_rates(pars)
    return bool(np.all(g >= -DOMAIN_ATOL * max(1.0, float(np.max(np.abs(g), initial=0.0)))))


def _domain_fit(model, data, x, free, lo, hi, fg, full):
    """BFGS; if it stalls or leaves the domain, SLSQP with the domain constraints; if that
    fails too, the usual retry strategies (whose best result is checked the same way)."""
    res = _minimize(model, data, x, free, lo, hi, _inverse_hessian_guess(model, free), fg)
    attempts = [("bfgs", res.status, float(res.f), int(res.nfev))]
    res = _within_domain(model, data, x, free, lo, hi, res, attempts)
    if res.status == OK:
        return res, attempts
    res, more = _with_retries(model, data, x, free, lo, hi, fg, full)
    attempts += more
    return _within_domain(model, data, x, free, lo, hi, res, attempts), attempts


def _barrier_domain_fit(model, data, x, free, lo, hi, attempts):
    """Interior point for the domain constraints (rates g_i >= 0), in compiled code: minimise
    NLL - m sum_i ln g_i for m = 1e-3, 1e-6, 1e-9 (model.barrier: the barrier weights are data
    entries), each stage from the last, from a start strictly inside the domain. The m = 1e-3
    stage must converge (the barrier's duality gap bounds the NLL's distance to the constrained
    minimum by n_rates x m there, ~1e-9 after the last stage) and the end must be feasible;
    else None (SLSQP then)."""
    barrier = model.barrier_kernels() if hasattr(model, "barrier_kernels") else None
    if barrier is None:
        return None
    d = np.asarray(model.data if data is None else data, dtype=float)
    start = np.array(x, dtype=float)
    if not np.all(model.domain_rates(start) > 0):  # e.g. a warm start on the boundary
        held = np.ones(start.size, dtype=bool)
        held[free] = False
        start = np.where(held, start, model.inits())
        if not np.all(model.domain_rates(start) > 0):
            return None
    n = model.domain_rates(start).size
    nfev, full = 0, start.copy()
    for k, (y, st, nf) in enumerate(_barrier_stages(model, barrier, start, free, lo, hi,
                                                    lambda m: np.concatenate([d, np.full(n, m)]))):
        nfev += nf
        if k == 0 and st != OK_CODE:
            return None
    full[free] = y
    f = model.nll(full, d)
    ok = np.isfinite(f) and _feasible(model, full)
    attempts.append(("barrier", OK if ok else STALLED, float(f), int(nfev)))
    if not ok:
        return None
    return MinimizeResult(y, float(f), None, OK, "converged (interior point inside the model's domain "
                          "constraints)", 0, nfev, 0.0)


def _within_domain(model, data, x, free, lo, hi, res, attempts):
    """Models with domain constraints (model.domain, e.g. Spey's background >= 0): if the
    unconstrained minimum leaves the domain, or the fit stalled (on a wall where a rate
    vanishes), minimise again with the constraints, by SLSQP (as Spey does) with the
    compiled gradient and rate Jacobians. (A trial point with a negative Poisson mean, where
    the NLL is undefined, gets a large finite value instead: constraining the means as well
    makes SLSQP's subproblems 25x slower.)"""
    full = x.copy()
    full[free] = res.x
    if res.status == OK and _feasible(model, full):
        return res
    inner = _barrier_domain_fit(model, data, x, free, lo, hi, attempts)
    if inner is not None:
        return inner
    from scipy.optimize import minimize  # imported here: only constrained fits need it

    f0 = res.f if np.isfinite(res.f) else model.nll(x, data)
    put, fun, nfev = _slsqp_objective(model, data, full, free, f0)

    def cons(y):
        return model.domain_rates(put(y))

    def cons_jac(y):
        return model.domain_jacobian(put(y))[:, free]

    best = res
    starts = [res.x] if np.all(np.isfinite(res.x)) else []
    starts.append(np.clip(x[free], lo, hi))
    for y0 in starts:
        r = minimize(fun, y0, jac=True, method="SLSQP", bounds=list(zip(lo, hi)),
                     constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
                     options={"maxiter": 2000, "ftol": 1e-13})
        y = np.clip(r.x, lo, hi)
        f = model.nll(put(y), data)
        ok = bool(r.success) and np.isfinite(f) and _feasible(model, full)
        attempts.append(("constrained", OK if ok else STALLED, float(f), int(nfev[0])))
        if ok:
            return MinimizeResult(y, float(f), None, OK, "converged (SLSQP with the model's domain "
                                  "constraints)", int(r.nit), nfev[0], 0.0)
    return best


def _add_uncertainties(model, result: FitResult, data, free: np.ndarray) -> None:
    """Covariance = inverse of the exact NLL Hessian over the free parameters."""
    H = model.hessian(result.bestfit, data, free_only=True)
    Hf = H[np.ix_(free, free)]
    n = model.n_params
    cov = np.zeros((n, n))
    with one_thread():
        try:
            cov_f = np.linalg.inv(Hf)
        except np.linalg.LinAlgError:
            cov_f = np.linalg.pinv(Hf)
    cov[np.ix_(free, free)] = cov_f
    result.covariance = cov
    result.uncertainties = np.sqrt(np.clip(np.diag(cov), 0.0, None))
