"""Unbinned HS3 likelihoods: Tweed side by side with pyhs3 0.4.2 (PyTensor, and JAX with jit).

    python benchmarks/unbinned.py --out /tmp/unbinned.md [--reps 5]

Models: the pyhs3 benchmark workspaces in ../shared/corpus/hs3/pyhs3-benchmarks (their first
analysis: extended unbinned mixtures with 29 to 14,000 events and Gaussian or Poisson
constraints). Per (tool, model): build (JSON to a callable NLL), one NLL, one NLL with its
gradient, and a maximum-likelihood fit of the free parameters (Tweed's fit; for pyhs3 SciPy's
L-BFGS-B on JAX's jitted value_and_grad, which is what a pyhs3 user writes). Timings are
medians over --reps calls after one warm-up call (Tweed's kernels are cached on disk; JAX's
jit and PyTensor's compilation are counted in build). The NLL at the initial values and the
fitted minimum are compared; a disagreement is printed loudly. pyhs3 and JAX are
benchmark-only dependencies.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "corpus" / "hs3" / "pyhs3-benchmarks"


def _median(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def tweed_side(path: Path, reps: int) -> dict:
    from tweed import api
    from tweed.runtime.fit import fit

    build = _median(lambda: api.load(str(path)), max(1, reps // 2))
    m = api.load(str(path))
    x = m.inits()
    res = fit(m, hessian=False)
    return {"build": build, "nll": _median(lambda: m.nll(x), reps), "grad": _median(lambda: m.nll_and_grad(x), reps),
            "fit": _median(lambda: fit(m, hessian=False), reps), "nll0": m.nll(x), "min": 0.5 * res.twice_nll,
            "free": [n for n, f in zip(m.par_names, m.fixed()) if not f], "bounds": m.bounds()[~m.fixed()].tolist(),
            "x0": x[~m.fixed()].tolist(), "events": int(np.sum(m.data[m._kind == 3] != 0))}


def pyhs3_side(path: Path, reps: int, free, bounds, x0) -> dict:
    import jax
    import pyhs3
    import pytensor
    from pytensor.graph.traversal import explicit_graph_inputs
    from scipy.optimize import minimize

    jax.config.update("jax_enable_x64", True)
    doc = json.loads(path.read_text())

    def build_pt():
        ws = pyhs3.Workspace(**doc)
        model = ws.model(ws.analyses[0])
        lp = model.log_prob
        ins = [v for v in explicit_graph_inputs([lp]) if v.name]
        return model, ins, pytensor.function(ins, -lp, on_unused_input="ignore")

    t = time.perf_counter()
    model, ins, fn = build_pt()
    build_pt_s = time.perf_counter() - t
    base = {k: np.asarray(v, dtype=float) for k, v in {**model.data, **model.free_params}.items()}
    args = [base[v.name] for v in ins]
    nll_pt = _median(lambda: fn(*args), reps)
    nll0 = float(np.ravel(fn(*args))[0])

    def build_jax():
        jg = pyhs3.jaxify(-model.log_prob)
        names = list(jg.input_names)
        fixed = {n: base[n] for n in names if n not in free}

        def f(y):
            vals = dict(fixed)
            vals.update({n: y[i] for i, n in enumerate(free) if n in names})
            return jax.numpy.ravel(jg(**vals)[0])[0]

        vg = jax.jit(jax.value_and_grad(f))
        vg(np.asarray(x0, dtype=float))[0].block_until_ready()
        return vg

    t = time.perf_counter()
    vg = build_jax()
    build_jax_s = time.perf_counter() - t
    y0 = np.asarray(x0, dtype=float)
    grad = _median(lambda: vg(y0)[0].block_until_ready(), reps)

    def fg(y):
        v, g = vg(y)
        return float(v), np.asarray(g, dtype=float)

    def fit():
        return minimize(fg, y0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})

    return {"build": build_pt_s, "build_jax": build_jax_s, "nll": nll_pt, "grad": grad, "fit": _median(fit, reps),
            "nll0": nll0, "min": float(fit().fun)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    if not BENCH.is_dir():
        print(f"{BENCH} not found: nothing to compare")
        return 0
    rows, notes = [], []
    for path in sorted(BENCH.glob("*.json")):
        tw = tweed_side(path, a.reps)
        ph = pyhs3_side(path, a.reps, tw["free"], tw["bounds"], tw["x0"])
        name = path.stem.split("_")[0] + " " + path.stem.split("_")[-1]
        rel = abs(tw["nll0"] - ph["nll0"]) / abs(ph["nll0"])
        if rel > 1e-9:
            notes.append(f"DISAGREEMENT {name}: NLL {tw['nll0']!r} (Tweed) vs {ph['nll0']!r} (pyhs3)")
        if not np.isfinite(ph["min"]):
            notes.append(f"{name}: the pyhs3 + SciPy fit ended at a non-finite NLL (L-BFGS-B left the pdf's "
                         "positive region); Tweed's fit converged")
        elif tw["min"] > ph["min"] + 1e-6:
            notes.append(f"DISAGREEMENT {name}: fitted NLL {tw['min']!r} (Tweed) above {ph['min']!r} (pyhs3+SciPy)")
        rows.append(f"| {name} | {tw['events']} | {len(tw['free'])} | "
                    f"{tw['build'] * 1e3:.0f} / {ph['build'] * 1e3:.0f} + {ph['build_jax'] * 1e3:.0f} | "
                    f"{tw['nll'] * 1e6:.1f} / {ph['nll'] * 1e6:.1f} ({ph['nll'] / tw['nll']:.1f}x) | "
                    f"{tw['grad'] * 1e6:.1f} / {ph['grad'] * 1e6:.1f} ({ph['grad'] / tw['grad']:.1f}x) | "
                    f"{tw['fit'] * 1e3:.2f} / {ph['fit'] * 1e3:.2f} ({ph['fit'] / tw['fit']:.1f}x) | "
                    f"{max(rel, 0.0):.1e} | {2 * (tw['min'] - ph['min']):+.1e} |")
    text = "\n".join([
        f"Machine: {platform.machine()}, {platform.processor() or platform.platform()}; medians of {a.reps} calls.",
        "",
        "| model | events | free pars | build ms: Tweed / pyhs3 PyTensor + JAX jit | NLL us: Tweed / pyhs3 "
        "PyTensor | NLL+grad us: Tweed / pyhs3 JAX | fit ms: Tweed / pyhs3 JAX + L-BFGS-B | NLL rel. diff "
        "| 2 dNLL at min (Tweed - pyhs3) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows, "", *(notes or ["All rows agree (NLL to 1e-9 relative; Tweed's minimum not above pyhs3+SciPy's)."])])
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 1 if any(n.startswith("DISAGREEMENT") for n in notes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
