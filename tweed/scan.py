"""Scans of many signal points (a patchset) on dask.distributed, streamed to a JSON-lines file.

Each point is computed by exactly the code path of a single-point `tweed cls` (api.load, then
infer.hypotest / infer.upper_limit), so a scan line and a `tweed cls` agree to the last digit.
Results are appended to the output as they finish (one JSON object per line, flushed and
synced); re-running with the same output skips the points already there, so an interrupted
scan loses nothing. The background-only workspace is sent to each worker once (scattered);
the numba kernels are loaded from the on-disk cache once per worker process, never compiled
per point.
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
from tweed.compiler.frontends.histfactory.patches import Patch, PatchSet
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


def _valid_workspace(workspace: dict, source: str) -> dict:
    """Validate the background-only workspace once per worker (then patches are checked
    part by part, see histfactory.validate_patched)."""
    from tweed.compiler.frontends import histfactory

    if histfactory._VALID.get(id(workspace)) is not workspace:
        histfactory.parse_workspace(workspace, source)
        histfactory._remember_valid(workspace)
    return workspace


def run_point(workspace: dict, source: str, patch: Patch, options: ScanOptions) -> dict:
    """One scan point: the same calls as `tweed cls` (and `tweed limit` with limits)."""
    from tweed import api
    from tweed.runtime import infer

    workspace = _valid_workspace(workspace, source)
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
        futures = {client.submit(run_point, ws_future, source, p, options, pure=False): p for p in todo}
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
