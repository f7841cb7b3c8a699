"""Toy-based CLs: pyhf's reference numbers (within statistical errors), reproducibility per
seed, merging of split runs, accounting of failed toys."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS, need_shared
from tests.models import simple_workspace
from tweed.api import compile_module, read
from tweed.cli.main import cli
from tweed.runtime import infer
from tweed.runtime.toys import ToyResult


def model(ws, **kw):
    return compile_module(read(ws, **kw).module)


def test_same_seed_same_result_and_merge_equals_full_run(tmp_path):
    cm = model(simple_workspace())
    full = infer.toy_hypotest(cm, 1.0, ntoys=300, seed=5)
    again = infer.toy_hypotest(cm, 1.0, ntoys=300, seed=5)
    np.testing.assert_array_equal(full.q_sb, again.q_sb)
    np.testing.assert_array_equal(full.q_b, again.q_b)
    other = infer.toy_hypotest(cm, 1.0, ntoys=300, seed=6)
    assert not np.array_equal(full.q_sb, other.q_sb)
    a = infer.toy_hypotest(cm, 1.0, ntoys=100, seed=5)
    b = infer.toy_hypotest(cm, 1.0, ntoys=200, seed=5, first_toy=100)
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    merged = ToyResult.merge([ToyResult.load(tmp_path / "b.json"), ToyResult.load(tmp_path / "a.json")])
    np.testing.assert_array_equal(merged.q_sb, full.q_sb)
    np.testing.assert_array_equal(merged.q_b, full.q_b)
    assert merged.to_dict() == full.to_dict()


def test_toys_agree_with_asymptotics_for_a_large_sample():
    """With 100+ expected events the asymptotic formulae hold: toys must agree closely."""
    ws = simple_workspace(signal=(20.0, 15.0), bkg=(200.0, 210.0), unc=(10.0, 12.0), obs=(215.0, 205.0))
    cm = model(ws)
    asym = infer.hypotest(cm, 1.0)
    toys = infer.toy_hypotest(cm, 1.0, ntoys=4000, seed=1)
    assert toys.CLs_obs == pytest.approx(asym.CLs_obs, abs=4 * toys.uncertainty() + 0.01)
    np.testing.assert_allclose(toys.CLs_exp[1:4], asym.CLs_exp[1:4], atol=0.05)


def _bootstrap_band_error(res: ToyResult, n=100, seed=0):
    rng = np.random.default_rng(seed)
    sb, b = res.q_sb[~np.isnan(res.q_sb)], res.q_b[~np.isnan(res.q_b)]
    bands = []
    for _ in range(n):
        r = ToyResult(res.mu, res.test_stat, 0, 0, res.q_obs, rng.choice(sb, sb.size), rng.choice(b, b.size))
        bands.append(r.CLs_exp)
    return np.std(bands, axis=0)


def test_pyhf_validation_toys_reference():
    """../shared/corpus/reference-results/pyhf_validation_toys_CLs.json, case *_toys (pyhf 2000
    toys, seed 0): within the statistical error of both samples (3 sigma)."""
    need_shared()
    ref = json.loads((CORPUS / "reference-results" / "pyhf_validation_toys_CLs.json").read_text())
    case = next(c for c in ref["cases"] if c["calctype"] == "toybased")
    cm = model(str(CORPUS / case["workspace"]), normsys_code="code1")
    res = infer.toy_hypotest(cm, case["mu_test"], ntoys=4000, seed=0, test_stat=case["test_stat"])
    assert sum(res.failed.values()) == 0
    obs_err = np.hypot(res.uncertainty(), np.sqrt(case["expected"]["obs"] * (1 - case["expected"]["obs"]) / 2000))
    assert abs(res.CLs_obs - case["expected"]["obs"]) <= 3 * obs_err
    band_err = _bootstrap_band_error(res) * np.sqrt(1 + 4000 / 2000)  # ours and pyhf's samples
    diff = np.abs(np.array(res.CLs_exp) - np.array(case["expected"]["exp"]))
    assert np.all(diff <= 3 * band_err + 1e-3), (res.CLs_exp, case["expected"]["exp"], band_err)


def test_failed_toys_are_counted_and_left_out():
    q = np.array([0.1, np.nan, 2.0, 5.0])
    r = ToyResult(1.0, "qtilde", 0, 0, 1.0, q, np.array([0.0, 0.5, np.nan, 3.0]))
    assert r.failed == {"sb": 1, "b": 1}
    clsb, clb, cls = r.pvalues(1.0)
    assert clsb == pytest.approx(2 / 3) and clb == pytest.approx(1 / 3) and cls == pytest.approx(2.0)


def test_cli_toys_and_merge(tmp_path):
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(simple_workspace()))
    run = lambda *a: CliRunner().invoke(cli, list(a), catch_exceptions=False)  # noqa: E731
    r = run("cls", str(ws), "--toys", "200", "--seed", "3", "--save-toys", str(tmp_path / "all.json"))
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert set(out) == {"CLs_obs", "CLs_exp"} and len(out["CLs_exp"]) == 5
    run("cls", str(ws), "--toys", "80", "--seed", "3", "--save-toys", str(tmp_path / "p1.json"))
    run("cls", str(ws), "--toys", "120", "--seed", "3", "--first-toy", "80", "--save-toys", str(tmp_path / "p2.json"))
    merged = run("merge-toys", str(tmp_path / "p1.json"), str(tmp_path / "p2.json"))
    assert json.loads(merged.stdout) == out
    bad = run("merge-toys", str(tmp_path / "p2.json"), str(tmp_path / "all.json"))
    assert bad.exit_code == 2 and "do not follow" in bad.stderr


def test_toys_on_dask_equal_the_single_process_run(tmp_path):
    """Chunks of toys on a 2-worker LocalCluster (model shipped as IR text, compiled once per
    worker), merged: exactly the toys of one process with the same seed; also from the CLI."""
    loaded = read(simple_workspace())
    cm = compile_module(loaded.module)
    local = infer.toy_hypotest(cm, 1.0, ntoys=120, seed=3, first_toy=10)
    dist = infer.toy_hypotest_distributed(loaded, 1.0, ntoys=120, seed=3, first_toy=10, chunk=25, workers=2)
    assert dist.first_toy == 10 and dist.ntoys == 120
    np.testing.assert_array_equal(dist.q_sb, local.q_sb)
    np.testing.assert_array_equal(dist.q_b, local.q_b)
    assert dist.to_dict() == local.to_dict()
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(simple_workspace()))
    r = CliRunner().invoke(cli, ["cls", str(ws), "--toys", "120", "--seed", "3", "--first-toy", "10",
                                 "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == local.to_dict()  # JSON floats round-trip exactly
    r = CliRunner().invoke(cli, ["cls", str(ws), "--workers", "2"])
    assert r.exit_code == 2 and "--toys" in r.output
