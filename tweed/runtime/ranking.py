"""Impacts of nuisance parameters on the POI, pulls and constraints, computed in parallel.

For every free nuisance parameter theta_i with best fit t_i and Hessian error s_i:
post-fit impact = POI of the fit with theta_i held at t_i +- s_i, minus the best-fit POI;
pre-fit impact uses the constraint width w_i instead (1 for normsys/histosys, sigma for
staterror and lumi, 1/sqrt(tau) for shapesys; unconstrained parameters have none).
pull = (t_i - centre_i) / w_i, constraint = s_i / w_i. Parameters are ranked by the larger
absolute post-fit impact. The refits run on one model copy per thread (the kernels release
the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tweed.config import threads
from tweed.runtime.fit import FitResult, fit


@dataclass
class Impact:
    name: str
    bestfit: float
    error: float
    prefit_width: float | None
    pull: float | None
    constraint: float | None
    postfit_up: float
    postfit_down: float
    prefit_up: float | None = None
    prefit_down: float | None = None
    status: str = "ok"

    @property
    def size(self) -> float:
        return max(abs(self.postfit_up), abs(self.postfit_down))


@dataclass
class Ranking:
    poi: str
    poi_hat: float
    poi_error: float
    impacts: list[Impact] = field(default_factory=list)
    best: FitResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"poi": self.poi, "poi_hat": self.poi_hat, "poi_error": self.poi_error,
                "impacts": [dict(vars(i)) for i in self.impacts]}


def constraint_widths(model, data=None) -> tuple[np.ndarray, np.ndarray]:
    """Per parameter: the pre-fit width of its constraint and its centre (the auxiliary
    measurement: a for a Gaussian, a/tau for a Poisson); NaN if unconstrained."""
    d = model.data if data is None else np.asarray(data)
    par, didx, kind, scale = model.kernels.constraints()
    width = np.full(model.n_params, np.nan)
    centre = np.full(model.n_params, np.nan)
    width[par] = np.where(kind == 0, scale, 1.0 / np.sqrt(scale))
    centre[par] = np.where(kind == 0, d[didx], d[didx] / scale)
    return width, centre


def ranking(model, data=None, parameters: list[str] | None = None, workers: int | None = None) -> Ranking:
    if model.poi_index is None:
        raise ValueError("the model has no POI: impacts need one")
    best = fit(model, data).require_success("free fit for the impacts")
    poi = model.poi_index
    width, centre = constraint_widths(model, data)
    free = np.flatnonzero(~best.fixed)
    names = [model.par_names[i] for i in free if i != poi]
    if parameters is not None:
        unknown = set(parameters) - set(names)
        if unknown:
            raise ValueError(f"not free nuisance parameters of the model: {sorted(unknown)}")
        names = [n for n in names if n in set(parameters)]
    jobs = []
    for name in names:
        i = model.params.index(name)
        for kind, w in (("post", best.uncertainties[i]), ("pre", width[i])):
            if not np.isfinite(w) or w <= 0:
                continue
            for sign in (+1, -1):
                lo, hi = model.bounds()[i]
                value = float(np.clip(best.bestfit[i] + sign * w, lo, hi))
                jobs.append((name, i, kind, sign, value))
    n_workers = workers or threads()
    clones = [model.clone() for _ in range(n_workers)]

    def run(k_job):
        k, (name, i, kind, sign, value) = k_job
        m = clones[k % n_workers]
        r = fit(m, data, init=best.bestfit, fix={i: value}, hessian=False)
        return name, kind, sign, r.bestfit[poi] - best.bestfit[poi], r.status

    if n_workers > 1:
        with ThreadPoolExecutor(n_workers) as ex:
            # one thread per clone: job k goes to clone k % n (submitted in rounds)
            results = []
            for start in range(0, len(jobs), n_workers):
                results += list(ex.map(run, list(enumerate(jobs))[start:start + n_workers]))
    else:
        results = [run(kj) for kj in enumerate(jobs)]
    table: dict = {}
    for name, kind, sign, d, status in results:
        table.setdefault(name, {})[(kind, sign)] = (d, status)
    impacts = []
    for name in names:
        i = model.params.index(name)
        t = table.get(name, {})
        w = width[i] if np.isfinite(width[i]) else None
        st = "ok" if all(s == "ok" for _, s in t.values()) else "failed"
        impacts.append(Impact(
            name=name, bestfit=float(best.bestfit[i]), error=float(best.uncertainties[i]), prefit_width=w,
            pull=None if w is None else float((best.bestfit[i] - centre[i]) / w),
            constraint=None if w is None else float(best.uncertainties[i] / w),
            postfit_up=float(t.get(("post", 1), (np.nan,))[0]), postfit_down=float(t.get(("post", -1), (np.nan,))[0]),
            prefit_up=None if w is None else float(t.get(("pre", 1), (np.nan,))[0]),
            prefit_down=None if w is None else float(t.get(("pre", -1), (np.nan,))[0]), status=st))
    impacts.sort(key=lambda im: -np.nan_to_num(im.size, nan=-1.0))
    return Ranking(poi=model.poi_name, poi_hat=float(best.bestfit[poi]), poi_error=float(best.uncertainties[poi]),
                   impacts=impacts, best=best)
