"""Equivalence of two compiled models (tweed diff): parameter mapping by name, NLL at random
points, best fits. Two specs are the same likelihood when their parameter sets are equal and
every NLL agrees to `rtol` (default 1e-10 relative)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tweed.runtime.fit import fit


@dataclass
class DiffResult:
    only_a: list[str]
    only_b: list[str]
    common: int
    points: list[dict] = field(default_factory=list)  # {"nll_a", "nll_b", "rel"}
    fit_a: float | None = None
    fit_b: float | None = None
    max_bestfit_diff: float | None = None
    rtol: float = 1e-10

    @property
    def max_rel(self) -> float:
        return max((p["rel"] for p in self.points), default=float("nan"))

    @property
    def same(self) -> bool:
        return not self.only_a and not self.only_b and bool(self.points) and self.max_rel <= self.rtol

    def to_dict(self) -> dict:
        return {"same_likelihood": self.same, "rtol": self.rtol, "parameters_in_common": self.common,
                "only_in_a": self.only_a, "only_in_b": self.only_b, "max_relative_nll_difference": self.max_rel,
                "points": self.points, "twice_nll_best_fit_a": self.fit_a, "twice_nll_best_fit_b": self.fit_b,
                "max_best_fit_difference": self.max_bestfit_diff}


def diff(a, b, points: int = 10, seed: int = 0, fits: bool = True, rtol: float = 1e-10) -> DiffResult:
    na, nb = list(a.par_names), list(b.par_names)
    common = [n for n in na if n in set(nb)]
    res = DiffResult(only_a=[n for n in na if n not in set(nb)], only_b=[n for n in nb if n not in set(na)],
                     common=len(common), rtol=rtol)
    ia = np.array([na.index(n) for n in common], dtype=int)
    ib = np.array([nb.index(n) for n in common], dtype=int)
    rng = np.random.default_rng(seed)
    lo = np.maximum(a.bounds()[ia, 0], b.bounds()[ib, 0])
    hi = np.minimum(a.bounds()[ia, 1], b.bounds()[ib, 1])
    for k in range(points):
        xa, xb = a.inits(), b.inits()
        if k:  # the first point: the initial values
            c = np.clip(xa[ia], lo, hi)
            v = np.clip(c + rng.uniform(-0.3, 0.3, c.size) * np.minimum(1.0, hi - lo), lo, hi)
            xa[ia] = v
            xb[ib] = v
        fa, fb = a.nll(xa), b.nll(xb)
        rel = abs(fa - fb) / max(abs(fa), abs(fb), 1e-300) if np.isfinite(fa) and np.isfinite(fb) else (
            0.0 if not np.isfinite(fa) and not np.isfinite(fb) else float("inf"))
        res.points.append({"nll_a": fa, "nll_b": fb, "rel": rel})
    if fits:
        ra, rb = fit(a, hessian=False), fit(b, hessian=False)
        res.fit_a, res.fit_b = ra.twice_nll, rb.twice_nll
        res.max_bestfit_diff = float(np.max(np.abs(ra.bestfit[ia] - rb.bestfit[ib]))) if common else None
    return res
