"""Profile-likelihood scans in one or two parameters, with intervals from the crossings.

At every grid point the scanned parameters are held and all others profiled, each fit starting
from its neighbour's best fit. Delta = twice_nll - min(twice_nll); the 68.3% / 95% intervals
of one parameter are where Delta crosses 1 and 3.84 (2.30 and 5.99 for joint regions of two),
found by root finding on the profile between the bracketing grid points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2

from tweed.runtime.fit import FitResult, fit

CL = {"68%": 0.682689492137, "95%": 0.95}


def level(cl: float, ndim: int) -> float:
    """Delta(twice NLL) of a confidence level for ndim parameters (Wilks)."""
    return float(chi2.ppf(cl, ndim))


@dataclass
class ProfileScan:
    params: list[str]
    grids: list[np.ndarray]
    twice_nll: np.ndarray  # shape of the grid
    status: np.ndarray  # fit status per point ("ok" ...)
    best: FitResult
    intervals: dict = field(default_factory=dict)  # 1D: {"68%": [(lo, hi), ...], "95%": ...}

    @property
    def delta(self) -> np.ndarray:
        return self.twice_nll - self.best.twice_nll

    @property
    def failed(self) -> int:
        return int(np.sum(self.status != "ok"))

    def to_dict(self) -> dict:
        d = {"parameters": self.params, "grid": [g.tolist() for g in self.grids],
             "twice_nll": self.twice_nll.tolist(), "delta_twice_nll": self.delta.tolist(),
             "status": self.status.tolist(), "failed_points": self.failed,
             "best_fit": {p: float(self.best.bestfit[i]) for p, i in zip(self.params, self._idx)},
             "best_twice_nll": self.best.twice_nll}
        if self.intervals:
            d["intervals"] = {k: [list(iv) for iv in v] for k, v in self.intervals.items()}
        return d

    _idx: list = field(default_factory=list, repr=False)


def _crossings(x, d, lvl):
    """Sub-grid crossings of d(x) = lvl by linear interpolation: the interval ends."""
    out = []
    for i in range(len(x) - 1):
        a, b = d[i] - lvl, d[i + 1] - lvl
        if np.isfinite(a) and np.isfinite(b) and a * b < 0:
            out.append(x[i] + (x[i + 1] - x[i]) * a / (a - b))
    return out


def profile_scan(model, params: list[str], grids: list, data=None, refine: bool = True) -> ProfileScan:
    """Profile the NLL over one or two parameters on the given grids (1D arrays)."""
    if len(params) not in (1, 2) or len(params) != len(grids):
        raise ValueError("give one or two parameters, each with a grid")
    idx = [model.params.index(p) for p in params]
    grids = [np.asarray(g, dtype=float) for g in grids]
    best = fit(model, data, hessian=False)
    if not best.success:
        best.require_success("free fit before the profile scan")
    shape = tuple(g.size for g in grids)
    twice = np.full(shape, np.nan)
    status = np.empty(shape, dtype=object)
    start = best.bestfit.copy()
    if len(shape) == 1:
        # outwards from the grid point nearest the best fit, each fit starting at its
        # neighbour's result (as Combine scans): a fit far out never starts far from its minimum
        k0 = int(np.argmin(np.abs(grids[0] - best.bestfit[idx[0]])))
        order = [(k,) for k in range(k0, shape[0])] + [(k,) for k in range(k0 - 1, -1, -1)]
    else:
        order = list(np.ndindex(*shape))
    for n_done, pos in enumerate(order):
        if len(shape) == 1 and pos[0] == k0 - 1:
            start = starts_at_k0  # the downward leg starts again next to the best fit
        # snake through the grid so that each fit starts next to the previous one
        if len(shape) == 2 and pos[0] % 2 == 1:
            pos = (pos[0], shape[1] - 1 - pos[1])
        hold = {i: float(grids[k][pos[k]]) for k, i in enumerate(idx)}
        init = start.copy()
        for i, v in hold.items():
            init[i] = v
        lo, hi = model.bounds()[:, 0], model.bounds()[:, 1]
        init = np.where(np.isin(np.arange(init.size), idx), init, np.clip(init, lo, hi))
        r = fit(model, data, init=init, fix=hold, hessian=False)
        twice[pos] = r.twice_nll
        status[pos] = r.status
        if r.success:
            start = r.bestfit
        if len(shape) == 1 and pos[0] == k0:
            starts_at_k0 = start.copy()
    scan = ProfileScan(params=list(params), grids=grids, twice_nll=twice, status=status, best=best,
                       _idx=idx)
    if len(params) == 1:
        scan.intervals = {name: _intervals(model, scan, level(cl, 1), data, refine) for name, cl in CL.items()}
    return scan


def _intervals(model, scan: ProfileScan, lvl: float, data, refine: bool):
    x, d = scan.grids[0], scan.delta
    ends = _crossings(x, d, lvl)
    if refine:
        from scipy.optimize import brentq

        i = scan._idx[0]

        def f(v):
            return fit(model, data, fix={i: v}, init=scan.best.bestfit, hessian=False).twice_nll - scan.best.twice_nll - lvl

        refined = []
        for e in ends:
            k = np.searchsorted(x, e)
            a, b = x[max(k - 1, 0)], x[min(k, x.size - 1)]
            try:
                refined.append(float(brentq(f, a, b, xtol=1e-8 * max(1.0, abs(e)))))
            except ValueError:
                refined.append(float(e))
        ends = refined
    mu_hat = scan.best.bestfit[scan._idx[0]]
    lows = [e for e in ends if e <= mu_hat]
    highs = [e for e in ends if e > mu_hat]
    # None: the profile does not cross the level inside the scanned range on that side
    lo = max(lows) if lows else None
    hi = min(highs) if highs else None
    return [(lo, hi)]
