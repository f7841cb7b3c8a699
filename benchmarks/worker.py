"""One (tool, model) benchmark in a fresh process; prints one JSON object.

    python -m benchmarks.worker TOOL CASE [--reps N] [--budget SECONDS] [--skip-limit]

TOOL: tweed, pyhf-numpy, pyhf-jax, nextstat. Times are medians in seconds; values (NLL at
the init point, best-fit twice NLL, CLs) are returned so the driver can check agreement.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import sys
import time
import warnings

import numpy as np

from benchmarks.cases import by_key, workspace_and_patches

warnings.simplefilter("ignore")


def median_time(fn, reps: int, budget: float, inner: int = 1, min_total: float = 0.0):
    """Median wall time of fn over reps runs (fewer if a run is slow; more, up to the budget,
    until the runs add up to min_total seconds, so that a call of a millisecond is not timed
    from five samples of a noisy machine); fn's last value too."""
    times, value = [], None
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        for _ in range(inner):
            value = fn()
        times.append((time.perf_counter() - t0) / inner)
        spent = time.perf_counter() - t_start
        if spent > budget or (len(times) >= reps and spent >= min_total):
            break
    return statistics.median(times), value, len(times)


# fits and hypotests: at least this many seconds of runs per metric (every tool alike)
MIN_TOTAL = 2.0


def fast_time(fn, target: float = 0.3):
    """Median per-call time of a fast function, from batches of about `target` seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(0.05 / one))
    batches = max(3, int(target / (inner * one)))
    return median_time(fn, batches, budget=10 * target, inner=inner)


class Tweed:
    def __init__(self, ws, patches):
        from tweed import api
        from tweed.runtime import infer

        self.api, self.infer = api, infer
        self.ws, self.patches = ws, patches

    def build(self):
        # a first build each time: what the front end and the passes remember between builds
        # (a scan's background samples) is dropped, and so is the last model's IR
        from tweed.compiler import clear_caches

        self.model = None
        clear_caches()
        self.model = self.api.load(copy.deepcopy(self.ws), patches=copy.deepcopy(self.patches),
                                   require_poi=self.has_poi)
        return self.model

    def init(self):
        return self.model.inits()

    def nll(self, x):
        return self.model.nll(x)

    def nll_grad(self, x):
        return self.model.nll_and_grad(x)

    def _fresh(self):
        # per-model caches (the initial Hessian) are part of the cost of a first fit
        self.model.__dict__.pop("_fit_guess", None)
        self.model.__dict__.pop("_H0", None)

    def fit(self):
        self._fresh()
        return self.infer.fit(self.model, hessian=False).twice_nll

    def hypotest(self):
        self._fresh()
        h = self.infer.hypotest(self.model, 1.0)
        return h.CLs_obs, list(h.CLs_exp)

    def limit(self):
        self._fresh()
        u = self.infer.upper_limit(self.model)
        return u.upper_limit_obs, list(u.upper_limit_exp)

    def toys(self, n):
        self._fresh()
        r = self.infer.toy_hypotest(self.model, 1.0, ntoys=n, seed=1)
        return r.CLs_obs

    def ranking(self):
        self._fresh()
        r = self.infer.ranking(self.model)
        return {im.name: (im.postfit_up, im.postfit_down) for im in r.impacts}

    def extra(self):
        p = self.model.kernels.program
        return {"program_bytes": int(p.nbytes), "ip_bytes": int(p.ip.nbytes),
                "fp_bytes": int(p.fp.nbytes), "val_bytes": int(p.val0.nbytes),
                "n_instructions": int(p.ins.shape[0])}


class Pyhf:
    def __init__(self, ws, patches, backend):
        import pyhf

        self.pyhf = pyhf
        self.backend = backend
        if backend == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        pyhf.set_backend(backend)
        self.ws, self.patches = ws, patches

    def build(self):
        w = self.pyhf.Workspace(copy.deepcopy(self.ws))
        kw = {} if self.has_poi else {"poi_name": None}
        self.model = w.model(patches=copy.deepcopy(self.patches), **kw)
        self.data = self.pyhf.tensorlib.astensor(w.data(self.model))
        return self.model

    def init(self):
        return np.asarray(self.model.config.suggested_init(), dtype=float)

    def _jit(self):
        if not hasattr(self, "_f"):
            import jax

            m, d = self.model, self.data
            self._f = jax.jit(lambda p: -m.logpdf(p, d)[0])
            self._vg = jax.jit(jax.value_and_grad(lambda p: -m.logpdf(p, d)[0]))

    def nll(self, x):
        if self.backend == "jax":
            self._jit()
            return float(self._f(self.pyhf.tensorlib.astensor(x)).block_until_ready())
        return -float(self.model.logpdf(x, self.data)[0])

    def nll_grad(self, x):
        if self.backend != "jax":
            return None  # pyhf's numpy backend has no gradient
        self._jit()
        v, g = self._vg(self.pyhf.tensorlib.astensor(x))
        g.block_until_ready()
        return float(v), g

    def fit(self):
        return float(self.pyhf.infer.mle.fit(self.data, self.model, return_fitted_val=True)[1])

    def hypotest(self):
        obs, exp = self.pyhf.infer.hypotest(1.0, self.data, self.model, return_expected_set=True)
        return float(obs), [float(e) for e in exp]

    def limit(self):
        from pyhf.infer.intervals.upper_limits import upper_limit

        obs, exp = upper_limit(self.data, self.model)
        return float(obs), [float(e) for e in exp]

    def toys(self, n):
        self._percentile_shim()
        obs = self.pyhf.infer.hypotest(1.0, self.data, self.model, calctype="toybased", ntoys=n,
                                       track_progress=False)
        return float(obs)

    def _percentile_shim(self):
        """pyhf 0.7.6's toy calculator calls percentile(..., interpolation=...), a keyword that
        NumPy 2 and current JAX removed (renamed `method`): pass it on under its new name."""
        backend = type(self.pyhf.tensorlib)
        if getattr(backend, "_tweed_shim", False):
            return
        mod = np if self.backend == "numpy" else __import__("jax.numpy", fromlist=["percentile"])

        def percentile(_self, tensor_in, q, axis=None, interpolation="linear"):
            return mod.percentile(tensor_in, q, axis=axis, method=interpolation)

        backend.percentile = percentile
        backend._tweed_shim = True

    ranking = None  # pyhf has no ranking (cabinetry builds one from pyhf fits)

    def extra(self):
        return {}


class NextStat:
    def __init__(self, ws, patches):
        import jsonpatch
        import nextstat

        self.ns = nextstat
        self.text = None
        doc = copy.deepcopy(ws)
        for p in patches:
            doc = jsonpatch.apply_patch(doc, p)
        self.doc = doc

    def build(self):
        self.model = self.ns.HistFactoryModel.from_workspace(json.dumps(self.doc))
        return self.model

    def init(self):
        return np.asarray(self.model.suggested_init(), dtype=float)

    def nll(self, x):
        return self.model.nll(x)

    def nll_grad(self, x):
        return self.model.nll(x), self.model.grad_nll(x)

    def fit(self):
        return float(self.ns.fit(self.model).twice_nll)

    def hypotest(self):
        return float(self.ns.hypotest(1.0, self.model)), None

    def limit(self):
        obs, exp = self.ns.upper_limit(self.model, method="root")
        return float(obs), [float(e) for e in exp]

    def toys(self, n):
        return float(self.ns.hypotest_toys(1.0, self.model, n_toys=n, seed=1))

    def ranking(self):
        return {e["name"]: (e["delta_mu_up"], e["delta_mu_down"]) for e in self.ns.ranking(self.model)}

    def extra(self):
        return {}


def make(tool, ws, patches):
    if tool == "tweed":
        return Tweed(ws, patches)
    if tool == "pyhf-numpy":
        return Pyhf(ws, patches, "numpy")
    if tool == "pyhf-jax":
        return Pyhf(ws, patches, "jax")
    if tool == "nextstat":
        return NextStat(ws, patches)
    raise SystemExit(f"unknown tool {tool}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("case")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per metric before stopping repetitions")
    ap.add_argument("--skip-limit", action="store_true")
    ap.add_argument("--eval-only", action="store_true", help="build, NLL and gradient only")
    ap.add_argument("--toys", type=int, default=0,
                    help="toy-based CLs at mu=1 with up to this many toys per hypothesis (0: none)")
    ap.add_argument("--ranking", action="store_true", help="time the impacts/ranking of all nuisance parameters")
    args = ap.parse_args(argv)
    case = by_key(args.case)
    ws, patches = workspace_and_patches(case)
    t = make(args.tool, ws, patches)
    t.has_poi = not case.fit_only
    out = {"tool": args.tool, "case": case.key}

    def emit():
        # a line after every metric: a run stopped by the driver's timeout keeps what it had
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()

    t_build, _, _ = median_time(t.build, args.reps, args.budget)
    out["build"] = t_build
    x = t.init()
    out["nll_value"] = float(t.nll(x))
    out["nll"] = fast_time(lambda: t.nll(x))[0]
    if t.nll_grad(x) is not None:
        out["nll_grad"] = fast_time(lambda: t.nll_grad(x))[0]
    if args.eval_only:
        out["note"] = "eval only"
        emit()
        return
    emit()
    out["fit"], out["fit_twice_nll"], out["fit_reps"] = median_time(t.fit, args.reps, args.budget,
                                                                     min_total=MIN_TOTAL)
    emit()
    if not case.fit_only:
        out["hypotest"], value, out["hypotest_reps"] = median_time(t.hypotest, args.reps, args.budget,
                                                                       min_total=MIN_TOTAL)
        out["CLs_obs"], out["CLs_exp"] = value
        emit()
        if not args.skip_limit:
            try:
                out["limit"], value, out["limit_reps"] = median_time(t.limit, max(1, args.reps // 2), args.budget)
                out["limit_obs"], out["limit_exp"] = value
            except Exception as exc:  # e.g. pyhf 0.7.6's toms748 scan fails on the jax backend
                out["limit_error"] = f"{type(exc).__name__}: {exc}"[:160]
    # memory of the usual job (build, NLL, fit, hypotest, limit) before toys and ranking
    out["peak_rss_core_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.toys and not case.fit_only:
        try:
            toy_metric(t, args.toys, args.budget, out)
        except Exception as exc:  # pyhf 0.7.6's toy calculator calls jnp.percentile(interpolation=...)
            out["toys_error"] = f"{type(exc).__name__}: {exc}"[:160]
        emit()
    if args.ranking and not case.fit_only and t.ranking is not None:
        out["ranking"], impacts, out["ranking_reps"] = median_time(t.ranking, max(1, args.reps // 2), args.budget)
        out["impacts"] = {k: [float(a), float(b)] for k, (a, b) in impacts.items()}
        emit()
    out.update(t.extra())
    emit()


def toy_metric(t, n_max, budget, out):
    """Seconds per 1000 toys per hypothesis (pyhf's ntoys: 1000 s+b and 1000 b pseudo-experiments).

    A tool that cannot do n_max toys within about half the budget runs fewer, sized from a pilot
    of a few toys, and its time is scaled to 1000 (toys_n says how many it ran). Every tool runs
    the pilot, so one-off costs (JIT compiling or loading, Tweed's JIT toy minimiser) are not
    in the rate."""
    pilot = 4
    t0 = time.perf_counter()
    t.toys(pilot)
    per_toy = (time.perf_counter() - t0) / pilot
    n = n_max if isinstance(t, Tweed) else int(min(n_max, max(pilot, 0.5 * budget / per_toy)))
    t0 = time.perf_counter()
    cls = t.toys(n)
    dt = time.perf_counter() - t0
    out["toys"] = dt / n * 1000.0
    out["toys_n"] = n
    out["toys_CLs"] = cls


if __name__ == "__main__":
    main()
