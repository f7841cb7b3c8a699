"""Toy-based CLs with pyhf's ToyCalculator conventions (../shared/docs/formats/inference.md §5).

Pseudo-data (main counts and auxiliary data, global observables fluctuated) are drawn at the
POI-fixed fits to the observed data: mu for the s+b ensemble, 0 for the b-only ensemble (for
q0: 0 and 1). Every toy gets the raw test statistic from two fits, run in compiled code in
parallel over toys. Toy i of ensemble k draws from its own stream default_rng([seed, k, i]),
so results are reproducible per seed and runs over disjoint toy ranges merge into exactly
the run over their union. A toy whose fits fail is counted and reported, and left out of the
p-values (never silently).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tweed.runtime.fit import BARRIER, NO_WALL_STOP, _inverse_hessian_guess, _slsqp_on_rate_boundary, fit
from tweed.runtime.model import poisson_saturation
from tweed.runtime.teststat import test_statistic

PERCENTILES = [2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681]  # Phi(-2..2) * 100
FORMAT = "tweed-toys/1"


@dataclass
class ToyResult:
    mu: float
    test_stat: str
    seed: int
    first_toy: int
    q_obs: float
    q_sb: np.ndarray  # raw test statistic per toy; NaN where a fit failed
    q_b: np.ndarray
    fingerprint: str = ""  # model and data identity, checked when merging
    meta: dict = field(default_factory=dict)

    @property
    def ntoys(self) -> int:
        return int(self.q_sb.size)

    @property
    def failed(self) -> dict:
        return {"sb": int(np.isnan(self.q_sb).sum()), "b": int(np.isnan(self.q_b).sum())}

    def _valid(self):
        return np.sort(self.q_sb[~np.isnan(self.q_sb)]), np.sort(self.q_b[~np.isnan(self.q_b)])

    def pvalues(self, value: float) -> tuple[float, float, float]:
        """(CLs+b, CLb, CLs) of a test-statistic value: fractions of toys at or above it."""
        sb, b = self._valid()
        clsb = (sb.size - np.searchsorted(sb, value, side="left")) / sb.size
        clb = (b.size - np.searchsorted(b, value, side="left")) / b.size
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(clsb), float(clb), float(clsb / clb) if clb > 0 else float("nan")

    @property
    def CLsb_obs(self) -> float:
        return self.pvalues(self.q_obs)[0]

    @property
    def CLb_obs(self) -> float:
        return self.pvalues(self.q_obs)[1]

    @property
    def CLs_obs(self) -> float:
        """CLs; for q0 the discovery p-value (CLs+b of the mu=0 ensemble), as pyhf returns."""
        p = self.pvalues(self.q_obs)
        return p[0] if self.test_stat == "q0" else p[2]

    @property
    def CLs_exp(self) -> list[float]:
        """Band from -2 sigma to +2 sigma: percentiles over the b-only toys of their CLs."""
        _, b = self._valid()
        col = 0 if self.test_stat == "q0" else 2
        vals = np.array([self.pvalues(v)[col] for v in b])
        return [float(x) for x in np.percentile(vals, PERCENTILES, method="linear")]

    def uncertainty(self) -> float:
        """Binomial standard error of CLs_obs from the toy counts."""
        sb, b = self._valid()
        clsb, clb, cls = self.pvalues(self.q_obs)
        if self.test_stat == "q0":
            return float(np.sqrt(clsb * (1 - clsb) / sb.size))
        if clb <= 0:
            return float("nan")
        e_sb = np.sqrt(clsb * (1 - clsb) / sb.size)
        e_b = np.sqrt(clb * (1 - clb) / b.size)
        return float(np.hypot(e_sb / clb, cls * e_b / clb))

    def to_dict(self) -> dict:
        return {"CLs_obs": self.CLs_obs, "CLs_exp": self.CLs_exp}

    def to_full_dict(self) -> dict:
        d = self.to_dict()
        d.update(CLsb_obs=self.CLsb_obs, CLb_obs=self.CLb_obs, CLs_obs_error=self.uncertainty(),
                 q_obs=self.q_obs, ntoys=self.ntoys, failed_toys=self.failed, seed=self.seed,
                 first_toy=self.first_toy, mu=self.mu, test_stat=self.test_stat)
        return d

    # -- persistence and merging ---------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        from tweed.cli.output import write_atomic

        doc = {"format": FORMAT, "mu": self.mu, "test_stat": self.test_stat, "seed": self.seed,
               "first_toy": self.first_toy, "q_obs": self.q_obs, "fingerprint": self.fingerprint,
               "q_sb": [None if np.isnan(x) else float(x) for x in self.q_sb],
               "q_b": [None if np.isnan(x) else float(x) for x in self.q_b], "meta": self.meta}
        write_atomic(path, json.dumps(doc) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ToyResult":
        from tweed.compiler.frontends.source import read_json
        from tweed.errors import InputError

        doc, name = read_json(path)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f"not a Tweed toy file (expected format {FORMAT})", source=name)
        arr = lambda xs: np.array([np.nan if x is None else x for x in xs], dtype=float)  # noqa: E731
        return cls(mu=doc["mu"], test_stat=doc["test_stat"], seed=doc["seed"], first_toy=doc["first_toy"],
                   q_obs=doc["q_obs"], q_sb=arr(doc["q_sb"]), q_b=arr(doc["q_b"]),
                   fingerprint=doc.get("fingerprint", ""), meta=doc.get("meta", {}))

    @classmethod
    def merge(cls, parts: list["ToyResult"]) -> "ToyResult":
        """Join runs over disjoint toy ranges of one seed into the run over their union."""
        from tweed.errors import InputError

        parts = sorted(parts, key=lambda r: r.first_toy)
        first = parts[0]
        for p in parts[1:]:
            same = (p.mu, p.test_stat, p.seed, p.fingerprint) == (first.mu, first.test_stat, first.seed, first.fingerprint)
            if not same or abs(p.q_obs - first.q_obs) > 1e-9 * max(1.0, abs(first.q_obs)):
                raise InputError("toy files are from different models, seeds, POI values or test statistics")
        start = first.first_toy
        for p in parts:
            if p.first_toy != start:
                raise InputError(f"toy ranges do not follow each other (expected first toy {start}, got {p.first_toy})")
            start += p.ntoys
        return cls(mu=first.mu, test_stat=first.test_stat, seed=first.seed, first_toy=first.first_toy,
                   q_obs=first.q_obs, q_sb=np.concatenate([p.q_sb for p in parts]),
                   q_b=np.concatenate([p.q_b for p in parts]), fingerprint=first.fingerprint, meta=first.meta)


def sample_toy(model, pars: np.ndarray, rng: np.random.Generator, lam=None) -> np.ndarray:
    """One pseudo-dataset: Poisson main counts, Poisson or Gaussian auxiliary data."""
    lam = model.expected_data(pars) if lam is None else lam
    kind, width = model._kind, model._width
    out = np.empty_like(lam)
    pois = kind == 0
    out[pois] = rng.poisson(np.clip(lam[pois], 0.0, None))
    gaus = kind == 1
    out[gaus] = rng.normal(lam[gaus], width[gaus])
    logn = kind == 4
    out[logn] = np.exp(rng.normal(np.log(lam[logn]), width[logn]))
    for _, didx, cov, _ in model.kernels.mvn_blocks() if np.any(kind == 2) else ():
        out[didx] = rng.multivariate_normal(lam[didx], cov)
    return out


def _ensemble(model, pars, seed, kind, first, n):
    lam = model.expected_data(pars)
    return np.stack([sample_toy(model, pars, np.random.default_rng([seed, kind, first + i]), lam)
                     for i in range(n)]) if n else np.zeros((0, lam.size))


def _fingerprint(model, data) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data).tobytes())
    h.update("|".join(model.par_names).encode())
    h.update(model.kernels.program.ip.tobytes() if hasattr(model.kernels, "program") else b"")
    return h.hexdigest()[:16]


def _fit_batch(model, fulls, free, datas, sats, lo, hi):
    """Fits of many toys at once, in parallel.

    A fit that stops on the wall where an empty bin's rate vanishes is redone as in
    fit.minimize_on_rate_boundary (interior point: pseudo-counts 1e-3, 1e-6, 1e-9 in the empty
    bins, each stage batched over the toys that need it, from the generating point); the
    result is the stage point with the lowest NLL, accepted when the first stage converged
    (NLL within (empty bins) x 1e-3 of the constrained minimum, ~1e-9 in practice), else SLSQP
    with the empty bins' rates as constraints; toys where both fail count as failed."""
    B0 = _inverse_hessian_guess(model, free)
    Y, f, st, _ = model.kernels.minimize_batch(fulls, free, fulls[:, free].copy(), lo[free], hi[free], B0,
                                               datas, sats, 1e-7, 2000)
    # stops on (or pressing towards) the wall where an empty bin's rate reaches 0
    walls = [t for t in np.flatnonzero(st == 3) if np.any(datas[t, : model.n_main] == 0)]
    if not walls:
        return Y, f, st
    w = np.array(walls)
    dw = np.array(datas[w], dtype=float)
    empty = np.zeros_like(dw, dtype=bool)
    empty[:, : model.n_main] = dw[:, : model.n_main] == 0
    start = np.ascontiguousarray(fulls[w])  # the generating point: inside, where every rate is > 0
    Yw = start[:, free].copy()
    best_f = np.full(w.size, np.inf)
    best_y = Yw.copy()
    converged = np.zeros(w.size, dtype=bool)
    for m in BARRIER:
        dm = np.where(empty, m, dw)
        Yw, _, sw, _ = model.kernels.minimize_batch(start, free, Yw, lo[free], hi[free], B0, dm, poisson_saturation(dm),
                                                    1e-7, 2000, NO_WALL_STOP)
        if m == BARRIER[0]:  # gap <= (empty bins) x 1e-3 from here on, whatever later stages do
            converged = sw == 0
        for k, t in enumerate(w):
            full = fulls[t].copy()
            full[free] = Yw[k]
            ft = model.nll(full, datas[t])
            if sw[k] in (0, 3) and np.isfinite(ft) and ft < best_f[k]:
                best_f[k], best_y[k] = ft, Yw[k]
    for k, t in enumerate(w):
        if converged[k] and np.isfinite(best_f[k]):
            Y[t], f[t], st[t] = best_y[k], best_f[k], 0
            continue
        full = fulls[t].copy()  # the barrier did not converge: SLSQP from the stop (rare)
        full[free] = Y[t]
        out = _slsqp_on_rate_boundary(model, datas[t], full, free, lo[free], hi[free],
                                      datas[t, : model.n_main] == 0)
        if out is not None and out[1] <= f[t] + 1e-9 * max(1.0, abs(f[t])):
            Y[t], f[t], st[t] = out[0], out[1], 0
    return Y, f, st


def _teststat_batch(model, mu, test_stat, datas, start, bounds, fixed):
    """Raw test statistic of every toy: a free fit each, then a POI-fixed fit where the test
    statistic is not 0 by the sign of mu-hat alone (q, qtilde: mu-hat > mu; q0: mu-hat < 0).
    Both start from the generating parameters (POI at mu for the fixed fit). All in parallel."""
    poi = model.poi_index
    n = datas.shape[0]
    sats = poisson_saturation(datas)
    lo, hi = bounds[:, 0], bounds[:, 1]
    x0 = np.clip(start.copy(), lo, hi)
    free_f = np.flatnonzero(~fixed)
    fulls = np.tile(x0, (n, 1))
    Yf, ff, sf = _fit_batch(model, fulls, free_f, datas, sats, lo, hi)
    muhat = Yf[:, np.searchsorted(free_f, poi)]
    if test_stat in ("q", "qtilde"):
        zero = muhat > mu
    elif test_stat == "q0":
        zero = muhat < 0
    else:
        zero = np.zeros(n, dtype=bool)
    need = np.flatnonzero(~zero)
    fc = np.full(n, np.nan)
    sc = np.zeros(n, dtype=np.int64)
    if need.size:
        fx = fixed.copy()
        fx[poi] = True
        free_c = np.flatnonzero(~fx)
        fc_ = fulls[need].copy()
        fc_[:, poi] = mu
        _, fc[need], sc[need] = _fit_batch(model, np.ascontiguousarray(fc_), free_c, np.ascontiguousarray(datas[need]),
                                           np.ascontiguousarray(sats[need]), lo, hi)
    q = np.where(zero, 0.0, np.maximum(2.0 * (fc - ff), 0.0))
    ok = (sf == 0) & (sc == 0) & np.isfinite(ff) & (zero | np.isfinite(fc))
    return np.where(ok, q, np.nan)


def toy_hypotest(model, mu: float = 1.0, ntoys: int = 2000, seed: int = 0, test_stat: str = "qtilde",
                 first_toy: int = 0, data=None, init=None, bounds=None, fixed=None) -> ToyResult:
    """Toy-based CLs at POI value mu (pyhf's ToyCalculator), toys first_toy..first_toy+ntoys-1."""
    if model.poi_index is None:
        raise ValueError("the model has no POI: nothing to test")
    model.require_sampling("toy-based CLs")
    if getattr(model.kernels, "minimize_batch", None) is None:
        raise ValueError(f"the {model.kernels.name} backend has no batched fits for toys")
    data = model.data if data is None else np.asarray(data, dtype=float)
    bounds = model.bounds() if bounds is None else np.asarray(bounds, dtype=float)
    fixed = model.fixed() if fixed is None else np.asarray(fixed, dtype=bool)
    if test_stat == "q0":
        mu = 0.0
    obs = test_statistic(test_stat, model, mu, data, init=init, bounds=bounds, fixed=fixed, warn=False)
    obs.fixed.require_success("POI-fixed fit to the data")
    obs.free.require_success("free fit to the data")
    mu_b = 1.0 if test_stat == "q0" else 0.0
    pars_sb = obs.fixed.bestfit  # the POI-fixed fit at mu made for q_obs
    pars_b = fit(model, data, init, bounds, fixed, poi_value=mu_b, hessian=False).require_success(
        f"POI-fixed fit (mu={mu_b}) generating the background toys").bestfit
    q_sb = _teststat_batch(model, mu, test_stat, _ensemble(model, pars_sb, seed, 0, first_toy, ntoys),
                           pars_sb, bounds, fixed)
    q_b = _teststat_batch(model, mu, test_stat, _ensemble(model, pars_b, seed, 1, first_toy, ntoys),
                          pars_b, bounds, fixed)
    return ToyResult(mu=float(mu), test_stat=test_stat, seed=int(seed), first_toy=int(first_toy),
                     q_obs=float(obs.value), q_sb=q_sb, q_b=q_b, fingerprint=_fingerprint(model, data))


# -- toys on dask.distributed ------------------------------------------------------------------
_WORKER_MODELS: dict = {}  # per worker process: IR text digest -> compiled model (compiled once)


def _toy_chunk(ir_text: str, mu: float, first: int, n: int, seed: int, test_stat: str) -> ToyResult:
    import hashlib

    from tweed.api import compile_module
    from tweed.ir.parser import parse_module

    key = hashlib.sha256(ir_text.encode()).hexdigest()
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = compile_module(parse_module(ir_text))
    return toy_hypotest(_WORKER_MODELS[key], mu, ntoys=n, seed=seed, test_stat=test_stat, first_toy=first)


def toy_hypotest_distributed(module, mu: float = 1.0, ntoys: int = 2000, seed: int = 0, test_stat: str = "qtilde",
                             first_toy: int = 0, chunk: int | None = None, scheduler: str | None = None,
                             workers: int | None = None, progress: bool = False) -> ToyResult:
    """toy_hypotest over dask.distributed: toys first_toy..first_toy+ntoys-1 split into chunks
    of `chunk` toys, each chunk a task (the model travels as IR text and is compiled once per
    worker), the parts merged. Identical to toy_hypotest with the same seed on one machine.

    module: the IR Module of the model, an api.Loaded, or a spec api.read accepts (a path, a
    dict); scheduler: an existing cluster's address, else a LocalCluster of `workers` processes
    (default: one per core)."""
    from tweed.ir.module import Module
    from tweed.ir.printer import print_module
    from tweed.scan import make_client

    if not isinstance(module, Module) and not hasattr(module, "module"):
        from tweed.api import read

        module = read(module)
    module = getattr(module, "module", module)
    if ntoys < 1:
        raise ValueError("ntoys must be positive")
    client, cluster = make_client(scheduler, workers)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or (workers or 1))
        size = chunk or max(25, -(-ntoys // (4 * n_workers)))
        text = client.scatter(print_module(module), broadcast=True)
        starts = range(first_toy, first_toy + ntoys, size)
        futures = [client.submit(_toy_chunk, text, mu, s, min(size, first_toy + ntoys - s), seed, test_stat,
                                 pure=False) for s in starts]
        parts = []
        if progress:
            from dask.distributed import as_completed
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("toys", total=ntoys)
                for fut in as_completed(futures):
                    part = fut.result()
                    parts.append(part)
                    bar.advance(task, part.ntoys)
        else:
            parts = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return ToyResult.merge(parts)
