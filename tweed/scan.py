"""Scans of many signal points (a patchset) on dask.distributed, streamed to a JSON-lines file.

Each point is computed by exactly the code path of a single-point `tweed cls` (api.load, then
infer.hypotest / infer.upper_limit), so a scan line and a `tweed cls` agree to the last digit.
Results are appended to the output as they finish (one JSON object per line, flushed and
synced); re-running with the same output skips the points already there, so an interrupted
scan loses nothing. The background-only workspace is validated in the client and sent to
each worker once (scattered); a point parses, lowers and fuses only what its patch adds
(the front end and the passes reuse every unchanged background sample, see
histfactory.ast._SAMPLES). The kernels are loaded once per worker process (compiled at
install), never compiled per point.
"""

from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tweed.compiler.frontends.histfactory import load_patchset_file
from tweed.compiler.frontends.histfactory.patches import Patch, PatchSet, digest
from tweed.compiler.frontends.source import read_json
from tweed.errors import InputError, TweedError


@dataclass
class ScanOptions:
    mu: float = 1.0
    test_stat: str = "qtilde"
    limits: bool = False
    measurement: str | None = None
    normsys_code: str | None = None
    histosys_code: str | None = None


@dataclass
class ScanSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)


_KEEP: list = []

# The background-only workspace by its digest, once per worker process. The scattered
# document reaches every task as a new (shallow) copy, so identity cannot say that it was
# seen before; the digest the client computed can. scan() validated it in the client.
_WORKSPACES: dict[str, dict] = {}


def _known_workspace(workspace: dict, token: str) -> dict:
    """The first copy of this workspace the worker saw, marked valid, so that patches are
    checked part by part (see histfactory.validate_patched)."""
    from tweed.compiler.frontends import histfactory

    known = _WORKSPACES.get(token)
    if known is None:
        histfactory._remember_valid(workspace)
        _WORKSPACES.clear()
        _WORKSPACES[token] = known = workspace
    return known


def run_point(workspace: dict, source: str, token: str, patch: Patch, options: ScanOptions) -> dict:
    """One scan point: the same calls as `tweed cls` (and `tweed limit` with limits).
    `token` identifies the workspace (its digest, validated by scan) across the tasks of a
    worker."""
    from tweed import api
    from tweed.runtime import infer

    workspace = _known_workspace(workspace, token)
    out: dict[str, Any] = {"patch": patch.name}
    t0 = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # building a model allocates many small objects and no cycles worth chasing
    try:
        loaded = api.read(workspace, patches=[patch], measurement=options.measurement,
                          normsys_code=options.normsys_code, histosys_code=options.histosys_code,
                          digest_check=False, source_name=source)
        model = api.compile_module(loaded)
        # keep this point's IR alive until the next point is built: hash-consing then hands
        # the next point the same nodes for every unchanged sample, and the memoised passes
        # skip them
        _KEEP[:] = [loaded.module]
        h = infer.hypotest(model, options.mu, test_stat=options.test_stat)
        out.update(CLs_obs=h.CLs_obs, CLs_exp=list(h.CLs_exp))
        if options.limits:
            u = infer.upper_limit(model, test_stat=options.test_stat)
            out.update(upper_limit_obs=u.upper_limit_obs, upper_limit_exp=list(u.upper_limit_exp))
        out["status"] = "ok"
    except (TweedError, ValueError, ArithmeticError) as exc:
        out["status"] = "failed"
        out["error"] = str(exc).replace("\n", " ")
    finally:
        if gc_was_enabled:
            gc.enable()
    out["seconds"] = time.perf_counter() - t0
    return out


def finished_points(output: Path) -> set[str]:
    """Patch names already in the output; a torn last line (killed mid-write) is dropped."""
    if not output.exists():
        return set()
    good_lines, names = [], set()
    text = output.read_text(encoding="utf-8")
    for line in text.splitlines(keepends=True):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if line.endswith("\n") and isinstance(rec, dict) and "patch" in rec:
            good_lines.append(line)
            names.add(rec["patch"])
    if "".join(good_lines) != text:  # rewrite without the torn line, atomically
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text("".join(good_lines), encoding="utf-8")
        os.replace(tmp, output)
    return names


def select_points(ps: PatchSet, names: list[str] | None) -> list[Patch]:
    if not names:
        return [ps.patch(n) for n in ps.names]
    return [ps.patch(n) for n in names]


def _record(patch: Patch, labels: list[str], result: dict) -> dict:
    values = dict(zip(labels, patch.values or ()))
    rec = {"patch": patch.name, "values": values}
    rec.update({k: v for k, v in result.items() if k != "patch"})
    return rec


def make_client(scheduler: str | None, workers: int | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    n = workers or os.cpu_count() or 1
    # one process per core, one thread each: no nested thread pools fighting for the cores
    # (the fits' factorisations run on one BLAS thread anyway, see runtime/blas.py, so a
    # point equals a `tweed cls` to the last digit)
    env = {"TWEED_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40, env=env)
    return Client(cluster), cluster


def scan(
    workspace_path: str,
    patchset_path: str,
    output: str,
    options: ScanOptions = ScanOptions(),
    names: list[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    digest_check: bool = True,
    progress: bool = True,
) -> ScanSummary:
    """Run (or resume) a scan; results go to `output` as JSON lines."""
    from dask.distributed import as_completed

    doc, source = read_json(workspace_path)
    ps = load_patchset_file(patchset_path)
    if digest_check:
        ps.verify(doc, source)
    from tweed.compiler.frontends.histfactory import parse_workspace

    parse_workspace(doc, source)  # a bad workspace fails here, before a cluster starts
    token = digest(doc)
    points = select_points(ps, names)
    out = Path(output)
    done = finished_points(out)
    todo = [p for p in points if p.name not in done]
    summary = ScanSummary(skipped=len(points) - len(todo))
    if not todo:
        return summary
    t0 = time.perf_counter()
    client, cluster = make_client(scheduler, workers)
    try:
        ws_future = client.scatter(doc, broadcast=True)
        futures = {client.submit(run_point, ws_future, source, token, p, options, pure=False): p for p in todo}
        bar = _progress(len(points), summary.skipped) if progress else None
        with open(out, "a", encoding="utf-8") as fh:
            for fut in as_completed(futures):
                patch = futures[fut]
                result = fut.result()
                rec = _record(patch, ps.labels, result)
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                summary.done += 1
                if result.get("status") != "ok":
                    summary.failed += 1
                    summary.failures.append((patch.name, result.get("error")))
                if bar:
                    bar[0].advance(bar[1])
        if bar:
            bar[0].stop()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _progress(total: int, completed: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    p = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                 TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
    p.start()
    task = p.add_task("scan", total=total, completed=completed)
    return p, task


def check_inputs(workspace_path: str, patchset_path: str) -> None:
    """Fail fast in the client with a clear message (before any cluster starts)."""
    if not Path(workspace_path).exists():
        raise InputError("no such file", source=workspace_path)
    if not Path(patchset_path).exists():
        raise InputError("no such file", source=patchset_path)
