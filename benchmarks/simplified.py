"""Simplified likelihoods: Tweed side by side with Spey 0.2.7 (its default backends).

    python benchmarks/simplified.py --out /tmp/simplified.md [--bins 50,100,200] [--reps 3]

Models: seeded synthetic correlated_background and third_moment_expansion inputs with 50,
100 and 200 bins (as ../shared/reference/spey), plus CMS-SUS-20-004 (22 bins, third moments)
when ../shared is present. Per (tool, model): build (from arrays to a model that evaluates),
one observed CLs at mu = 1 (asymptotic, q~mu, with Spey's apriori band: two hypotests), and
the observed upper limit. Each (tool, model) pair runs in its own process, timings are medians
over --reps fresh calls (the first, cold call is reported separately for Tweed, whose kernels
are cached on disk), and results are compared: 1 - CLs within 1e-3, limits within 1%.
Spey is a benchmark- and test-only dependency.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def synthetic(n: int, seed: int = 2024) -> dict:
    rng = np.random.default_rng(seed + n)
    b = rng.uniform(5.0, 80.0, n)
    sd = 0.12 * b + rng.uniform(0.5, 2.0, n)
    A = rng.normal(size=(n, n))
    M = A @ A.T + n * np.eye(n)
    corr = M / np.sqrt(np.outer(np.diag(M), np.diag(M)))
    return {"observed": rng.poisson(b).astype(float).tolist(), "background": b.tolist(),
            "covariance": (corr * np.outer(sd, sd)).tolist(), "signal": rng.uniform(0.0, 3.0, n).tolist(),
            "third_moment": (0.3 * sd**3 * rng.uniform(-1, 1, n)).tolist()}


def cases(bins) -> dict:
    out = {}
    for n in bins:
        doc = synthetic(n)
        out[f"corr{n}"] = ("correlated_background", {k: v for k, v in doc.items() if k != "third_moment"})
        out[f"tme{n}"] = ("third_moment_expansion", doc)
    cms = SHARED / "corpus" / "cms-simplified" / "CMS-SUS-20-004_SLv2_TChiHH_mH300.json"
    if cms.is_file():
        d = json.loads(cms.read_text())
        out["cms-sus-20-004"] = ("third_moment_expansion", {k: d[k] for k in
                                 ("observed", "background", "covariance", "third_moment", "signal")})
    return out


def _median(f, reps):
    ts, val = [], None
    for _ in range(reps):
        t = time.perf_counter()
        val = f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), val


def worker(tool: str, model: str, doc: dict, reps: int) -> dict:
    """Runs in a fresh process."""
    import warnings

    warnings.simplefilter("ignore")
    res = {"tool": tool}
    if tool == "tweed":
        from tweed import api
        from tweed.runtime import infer

        t = time.perf_counter()
        m = api.load(doc, model=model)
        m.nll(m.inits())
        res["build_cold"] = time.perf_counter() - t
        res["build"], m = _median(lambda: api.load(doc, model=model), reps)
        m.nll(m.inits())
        res["cls"], r = _median(lambda: 1 - infer.hypotest(api.load(doc, model=model), 1.0).CLs_obs, reps)
        res["cls_value"] = r
        res["limit"], ul = _median(lambda: infer.upper_limit(api.load(doc, model=model)).upper_limit_obs, reps)
        res["limit_value"] = ul
    else:
        import logging

        import spey

        logging.getLogger("Spey").setLevel(logging.ERROR)
        kw = dict(signal_yields=doc["signal"], background_yields=doc["background"], data=doc["observed"],
                  covariance_matrix=doc["covariance"])
        if model == "third_moment_expansion":
            kw["third_moment"] = doc["third_moment"]
        make = lambda: spey.get_backend(f"default.{model}")(**kw)  # noqa: E731
        t = time.perf_counter()
        s = make()
        s.backend.get_logpdf_func()(np.ones(len(doc["observed"]) + 1))
        res["build_cold"] = time.perf_counter() - t
        res["build"], s = _median(make, reps)
        res["cls"], r = _median(lambda: make().exclusion_confidence_level(1.0)[0], reps)
        res["cls_value"] = r
        res["limit"], ul = _median(lambda: make().poi_upper_limit(), max(1, reps // 2))
        res["limit_value"] = ul
    return res


def run_one(tool, name, reps, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, name, "--reps", str(reps)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "error": f"timeout after {timeout} s"}
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode or not lines:
        return {"tool": tool, "error": (p.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(lines[-1])


def fmt(x):
    if x is None:
        return "-"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="Markdown file for the table.")
    ap.add_argument("--json", help="Raw results.")
    ap.add_argument("--bins", default="50,100,200")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "CASE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    all_cases = cases([int(x) for x in a.bins.split(",")])
    if a.worker:
        tool, name = a.worker
        model, doc = all_cases[name]
        print(json.dumps(worker(tool, model, doc, a.reps)), flush=True)
        return
    rows, raw = [], {}
    for name, (model, _) in all_cases.items():
        r = {tool: run_one(tool, name, a.reps, a.timeout) for tool in ("tweed", "spey")}
        raw[name] = r
        t, s = r["tweed"], r["spey"]
        print(name, json.dumps(r), file=sys.stderr, flush=True)
        note = []
        if "cls_value" in t and "cls_value" in s and abs(t["cls_value"] - s["cls_value"]) > 1e-3:
            note.append(f"1-CLs differ: {t['cls_value']:.5f} vs {s['cls_value']:.5f}")
            print(f"DISAGREEMENT {name}: {note[-1]}", file=sys.stderr)
        if "limit_value" in t and "limit_value" in s and abs(t["limit_value"] / s["limit_value"] - 1) > 0.01:
            note.append(f"limits differ: {t['limit_value']:.4g} vs {s['limit_value']:.4g}")
            print(f"DISAGREEMENT {name}: {note[-1]}", file=sys.stderr)
        for metric in ("build", "cls", "limit"):
            tv, sv = t.get(metric), s.get(metric)
            ratio = f"{sv / tv:.0f}x" if tv and sv else "-"
            rows.append(f"| {name} | {model} | {metric} | {fmt(tv)} | {fmt(sv)} | {ratio} | {'; '.join(note) if metric == 'limit' else ''} |")
    head = ["| model | Spey backend | metric | Tweed | Spey 0.2.7 | Spey / Tweed | agreement |",
            "|---|---|---|---|---|---|---|"]
    cmd = "python benchmarks/simplified.py " + " ".join(argv or sys.argv[1:])
    text = "\n".join([
        f"Command: `{cmd.strip()}`  ",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"medians over {a.reps} runs (limits: {max(1, a.reps // 2)}); each tool in its own process.",
        "", *head, *rows, "",
        "Cold Tweed build (first model in a fresh process, kernels from the on-disk cache): "
        + ", ".join(f"{k} {fmt(v['tweed'].get('build_cold'))}" for k, v in raw.items()) + ".",
        "Every row's 1 - CLs agrees within 1e-3 and its limit within 1% unless the agreement column says otherwise.",
        ""])
    if a.out:
        Path(a.out).write_text(text)
    if a.json:
        Path(a.json).write_text(json.dumps(raw, indent=1))
    print(text)


if __name__ == "__main__":
    main()
