"""`tweed scan` on a dask LocalCluster with 2 workers: results, identity with `tweed cls`,
and resuming after a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tests.models import simple_workspace
from tweed.cli.main import cli
from tweed.compiler.frontends.histfactory.patches import digest
from tweed.scan import finished_points

pytest.importorskip("distributed")


def make_inputs(tmp_path, n=6):
    ws = simple_workspace()
    patches = []
    for i in range(n):
        m1 = 100 + 50 * i
        patches.append({"metadata": {"name": f"pt_{m1}", "values": [m1, 0]}, "patch": [
            {"op": "add", "path": "/channels/0/samples/-", "value": {
                "name": "sig_extra", "data": [0.5 + i, 1.0 + 0.5 * i],
                "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}}]})
    ps = {"version": "1.0.0",
          "metadata": {"references": {"hepdata": "ins1234567"}, "digests": {"sha256": digest(ws)},
                       "labels": ["m1", "m2"], "description": "test grid"},
          "patches": patches}
    wp, pp = tmp_path / "ws.json", tmp_path / "ps.json"
    wp.write_text(json.dumps(ws))
    pp.write_text(json.dumps(ps))
    return str(wp), str(pp), [p["metadata"]["name"] for p in patches]


def read_lines(path):
    return [json.loads(l) for l in open(path)]


def test_scan_matches_single_point_cls(tmp_path):
    wp, pp, names = make_inputs(tmp_path)
    out = tmp_path / "scan.jsonl"
    r = CliRunner().invoke(cli, ["scan", wp, pp, "-o", str(out), "--workers", "2", "--limits"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    recs = {rec["patch"]: rec for rec in read_lines(out)}
    assert sorted(recs) == sorted(names)
    rec = recs["pt_200"]
    assert rec["values"] == {"m1": 200, "m2": 0} and rec["status"] == "ok"
    assert "upper_limit_obs" in rec and len(rec["upper_limit_exp"]) == 5
    single = CliRunner().invoke(cli, ["cls", wp, "--patchset", pp, "--patch-name", "pt_200"])
    one = json.loads(single.stdout)
    assert rec["CLs_obs"] == one["CLs_obs"] and rec["CLs_exp"] == one["CLs_exp"]  # to the last digit


def test_scan_resumes_after_a_killed_run(tmp_path):
    wp, pp, names = make_inputs(tmp_path, n=8)
    out = tmp_path / "scan.jsonl"
    cmd = [sys.executable, "-m", "tweed.cli.main", "scan", wp, pp, "-o", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_lines(out)
    assert 2 <= len(first) <= len(names)
    with open(out, "a") as fh:  # a line torn by the kill
        fh.write('{"patch": "pt_9')
    assert finished_points(out) == {r["patch"] for r in first}  # the torn line is dropped
    r = CliRunner().invoke(cli, ["scan", wp, pp, "-o", str(out), "--workers", "2"], catch_exceptions=False)
    assert r.exit_code == 0
    assert f"{len(first)} already in" in r.stderr
    final = read_lines(out)
    assert sorted(rec["patch"] for rec in final) == sorted(names)  # each point exactly once
    assert final[: len(first)] == first  # nothing already written was lost or changed


def test_scan_bad_input(tmp_path):
    wp, pp, _ = make_inputs(tmp_path)
    r = CliRunner().invoke(cli, ["scan", wp, str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = CliRunner().invoke(cli, ["scan", wp, pp, "--patch-name", "nope", "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "no patch named 'nope'" in r.stderr


def test_a_worker_checks_only_what_patches_add(tmp_path, monkeypatch):
    """Each task gets a new copy of the scattered workspace: the digest says it is known
    (and valid: the client checked it), so only the patches' values are validated."""
    import copy

    from tweed import scan as scan_mod
    from tweed.compiler.frontends import histfactory
    from tweed.compiler.frontends.histfactory import load_patchset_file

    wp, pp, names = make_inputs(tmp_path, n=3)
    ws, ps = json.loads(open(wp).read()), load_patchset_file(pp)
    full = []
    real = histfactory.validate
    monkeypatch.setattr(histfactory, "validate", lambda doc, kind, src: full.append(kind) or real(doc, kind, src))
    monkeypatch.setattr(scan_mod, "_WORKSPACES", {})
    token = digest(ws)
    recs = [scan_mod.run_point(copy.copy(ws), wp, token, ps.patch(n), scan_mod.ScanOptions()) for n in names]
    assert [r["status"] for r in recs] == ["ok"] * 3 and full == []


def test_scan_of_a_bad_workspace_fails_before_any_point(tmp_path):
    wp, pp, _ = make_inputs(tmp_path)
    ws = json.loads(open(wp).read())
    ws["channels"][0]["samples"][1]["data"][0] = -1.0
    open(wp, "w").write(json.dumps(ws))
    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(cli, ["scan", wp, pp, "-o", str(out), "--no-digest-check"])
    assert r.exit_code == 2 and "/channels/0/samples/1/data/0" in r.stderr and "negative" in r.stderr
    assert not out.exists()
