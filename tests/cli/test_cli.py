"""The `tweed` command: outputs, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.models import rich_workspace, simple_workspace
from tweed.cli.main import cli
from tweed.compiler.frontends.histfactory.patches import digest


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


@pytest.fixture
def ws(tmp_path):
    return write(tmp_path, "ws.json", simple_workspace())


def test_cls_prints_pyhfs_keys(ws):
    r = run("cls", ws)
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert set(out) == {"CLs_obs", "CLs_exp"} and len(out["CLs_exp"]) == 5
    assert out["CLs_obs"] == pytest.approx(0.595026, abs=2e-6)


def test_cls_options(ws, tmp_path):
    patch = write(tmp_path, "p.json", [{"op": "replace", "path": "/channels/0/samples/0/data", "value": [10.0, 6.0]}])
    a = json.loads(run("cls", ws, "-p", patch, "--poi-value", "0.5").stdout)
    b = json.loads(run("cls", ws, "--poi-value", "0.5").stdout)
    assert a["CLs_obs"] < b["CLs_obs"]
    d = json.loads(run("cls", ws, "--details").stdout)
    assert {"CLsb_obs", "CLb_obs", "q_obs", "fits"} <= set(d)
    out = tmp_path / "out" / "cls.json"
    assert run("cls", ws, "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["CLs_obs"] == pytest.approx(0.595026, abs=2e-6)


def test_cls_reads_stdin():
    r = run("cls", "-", input=json.dumps(simple_workspace()))
    assert r.exit_code == 0 and json.loads(r.stdout)["CLs_obs"] == pytest.approx(0.595026, abs=2e-6)


def test_fit_json(ws):
    out = json.loads(run("fit", ws).stdout)
    assert out["parameters"] == ["mu", "uncorr_bkguncrt[0]", "uncorr_bkguncrt[1]"]
    assert {"bestfit", "uncertainties", "twice_nll", "status"} <= set(out)
    assert out["status"] == "ok"
    from tweed import api
    from tweed.runtime import infer

    assert out["twice_nll"] == pytest.approx(infer.fit(api.load(ws)).twice_nll, abs=1e-9)
    assert out["uncertainties"][0] > 0


def test_fit_table(ws):
    r = run("fit", ws, "--format", "table")
    assert r.exit_code == 0 and "uncorr_bkguncrt[1]" in r.stdout and "twice_nll" in r.stdout


def test_fit_background_only_workspace(tmp_path):
    w = simple_workspace()
    w["measurements"][0]["config"]["poi"] = "mu_SIG"  # a POI that only signal patches add
    r = run("fit", write(tmp_path, "bkg.json", w))
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "ok"


def test_limit(ws):
    out = json.loads(run("limit", ws).stdout)
    assert set(out) == {"upper_limit_obs", "upper_limit_exp"}
    assert out["upper_limit_obs"] == pytest.approx(3.4601, rel=1e-3)
    grid = json.loads(run("limit", ws, "--scan", "0:8:41", "--details").stdout)
    assert len(grid["points"]) == 41


def test_discovery(tmp_path):
    out = json.loads(run("discovery", write(tmp_path, "w.json", simple_workspace(obs=(70.0, 66.0)))).stdout)
    assert out["significance"] > 1.0 and 0 < out["p0"] < 0.5


def test_inspect(tmp_path):
    path = write(tmp_path, "rich.json", rich_workspace())
    info = json.loads(run("inspect", path, "--format", "json").stdout)
    assert [c["name"] for c in info["channels"]] == ["CR", "SR"]
    assert info["parameters_by_type"]["staterror"]["names"] == ["stat_SR"]
    assert info["n_parameters"] == 14 and info["poi"] == "mu"
    text = run("inspect", path, "--format", "text").stdout
    assert "SR: 3 bins, 4 samples" in text
    ir = run("inspect", path, "--ir", "optimised").stdout
    assert ir.startswith("tweed-ir 1") and "interp_factor" in ir


def test_patchset_options(tmp_path):
    w = simple_workspace()
    ps = {"version": "1.0.0",
          "metadata": {"references": {"hepdata": "ins1234567"}, "digests": {"sha256": digest(w)},
                       "labels": ["m"], "description": "d"},
          "patches": [{"metadata": {"name": "pt", "values": [1]}, "patch": [
              {"op": "replace", "path": "/channels/0/samples/0/data", "value": [10.0, 6.0]}]}]}
    wp, pp = write(tmp_path, "w.json", w), write(tmp_path, "ps.json", ps)
    r = run("cls", wp, "--patchset", pp, "--patch-name", "pt")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["CLs_obs"] < 0.595


# -- bad input: one line on stderr, exit code 2 ---------------------------------------------

def bad_cases(tmp_path):
    w = simple_workspace()
    cases = {}
    cases["invalid JSON"] = ([write(tmp_path, "a.json", '{"channels": [')], "invalid JSON")
    s = simple_workspace()
    s["channels"][0]["samples"][0]["modifiers"][0]["type"] = "normfactr"
    cases["schema"] = ([write(tmp_path, "b.json", s)], "/channels/0/samples/0/modifiers/0/type")
    s = simple_workspace()
    s["channels"][0]["samples"][1]["data"] = [1.0]
    cases["bins"] = ([write(tmp_path, "c.json", s)], "has 1 bins, but channel")
    s = simple_workspace()
    s["measurements"][0]["config"]["poi"] = "mu_SIG"
    cases["poi"] = ([write(tmp_path, "d.json", s)], "POI 'mu_SIG'")
    patch = write(tmp_path, "p.json", [{"op": "remove", "path": "/channels/4"}])
    cases["patch"] = ([write(tmp_path, "e.json", w), "-p", patch], "does not apply")
    other = simple_workspace(obs=(1.0, 2.0))
    ps = {"version": "1.0.0",
          "metadata": {"references": {"hepdata": "ins1234567"}, "digests": {"sha256": digest(other)},
                       "labels": ["m"], "description": "d"},
          "patches": [{"metadata": {"name": "pt", "values": [1]}, "patch": []}]}
    cases["digest"] = ([write(tmp_path, "f.json", w), "--patchset", write(tmp_path, "ps.json", ps),
                        "--patch-name", "pt"], "digest mismatch")
    s = simple_workspace()
    s["channels"][0]["samples"][0]["data"][0] = float("nan")
    cases["nan"] = ([write(tmp_path, "g.json", json.dumps(s))], "expected a finite number")
    s = simple_workspace()
    s["channels"][0]["samples"][1]["data"][0] = -1.0
    cases["negative"] = ([write(tmp_path, "h.json", s)], "negative")
    cases["missing file"] = ([str(tmp_path / "nope.json")], "no such file")
    return cases


@pytest.mark.parametrize("case", ["invalid JSON", "schema", "bins", "poi", "patch", "digest", "nan",
                                  "negative", "missing file"])
def test_bad_input(case, tmp_path):
    args, needle = bad_cases(tmp_path)[case]
    r = run("cls", *args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tweed: error: ") and needle in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_no_partial_output_on_error(tmp_path):
    args, _ = bad_cases(tmp_path)["schema"]
    out = tmp_path / "res.json"
    assert run("cls", *args, "-o", str(out)).exit_code == 2
    assert not out.exists()


def test_real_process_exit_code_and_no_traceback(tmp_path):
    bad = write(tmp_path, "x.json", "not json")
    p = subprocess.run([sys.executable, "-m", "tweed.cli.main", "cls", bad], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith(f"tweed: error: {bad}: at line 1 column 1: invalid JSON")


def test_demo_runs(tmp_path):
    out = tmp_path / "demo.json"
    r = run("demo", "-o", str(out))
    assert r.exit_code == 0 and "95% CLs upper limit" in r.stdout
    res = json.loads(out.read_text())
    assert res["fit"]["status"] == "ok" and 0 < res["cls"]["CLs_obs"] < 1
