"""HS3 in and out: the pyhs3 test models against pyhf's logpdf references, HistFactory and
simplified likelihoods through HS3 and back, our files read by pyhs3 0.4.2, ROOT's legacy
rf515 file, and errors that name the unsupported element."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import CORPUS, REFERENCE, SHARED
from tests.models import simple_workspace
from tweed import api
from tweed.compiler.exporters.hs3 import hs3_name
from tweed.errors import InputError
from tweed.runtime.diff import diff

HS3 = CORPUS / "hs3"


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} not found (../shared absent)")
    return path


@pytest.mark.parametrize("name", ["simplemodel_uncorrelated-background", "simplemodel_correlated-background"])
def test_pyhs3_test_models_give_pyhf_logpdf(name):
    ref = json.loads(_need(SHARED / "corpus" / "reference-results" / "HS3_simplemodel_pyhf_logpdf_reference.json").read_text())
    m = api.load(str(_need(HS3 / "pyhs3-tests" / f"{name}_hs3.json")))
    assert m.poi_name == "mu" and m.fixed()[m.par_names.index("Lumi")]
    checked = 0
    for pt in ref["points"]:
        if not pt["model"].startswith(name):
            continue
        x = m.inits()
        for n, v in zip(pt["par_names"], pt["pars"]):  # pyhs3's names: u[0] -> u_0, alpha_ for normsys
            hn = n.replace("[", "_").replace("]", "")
            x[m.par_names.index(hn if hn in m.par_names else "alpha_" + n)] = v
        assert -m.nll(x) == pytest.approx(pt["pyhf_logpdf"], rel=1e-12)
        checked += 1
    assert checked >= 6


def test_root_legacy_file_loads():
    m = api.load(str(_need(HS3 / "root" / "rf515_hfJSON.json")))
    assert m.poi_name == "mu"
    assert {"alpha_syst1", "alpha_syst2", "alpha_syst3"} <= set(m.par_names)
    # by hand at the initial values: two bins, Poisson staterror constraints (ROOT's default)
    lam = np.array([20 + 100, 10 + 100])  # every factor 1
    n = np.array([122.0, 112.0])
    from math import lgamma, log, pi

    nll = float(np.sum(lam - n * np.log(lam)) + sum(lgamma(k + 1) for k in n))
    nll += 3 * 0.5 * log(2 * pi)  # three unit Gaussians at 0
    # staterror: rel errors 5/100 and 10/100 -> tau = 400 and 100: Pois(tau | tau)
    for tau in (400.0, 100.0):
        nll += tau - tau * log(tau) + lgamma(tau + 1)
    assert m.nll(m.inits()) == pytest.approx(nll, rel=1e-12)


@pytest.mark.parametrize("name,message", [
    ("pyhs3-tests/rf501_simultaneouspdf.json", "no likelihoods"),
    ("pyhs3-tests/combine_long_exercise_part1_nosys.json", "no likelihoods"),
    ("pyhs3-tests/nondefault_points_domains.json", "no likelihoods"),
])
def test_files_we_cannot_read_say_why(name, message):
    with pytest.raises(InputError, match=message):
        api.load(str(_need(HS3 / name)))


def test_unsupported_elements_are_named():
    doc = api.convert(api.read(simple_workspace()), "hs3")
    bad = json.loads(json.dumps(doc))
    bad["distributions"][0]["samples"][0]["modifiers"][0]["type"] = "shapebogus"
    with pytest.raises(InputError) as err:
        api.load(bad)
    assert "/distributions/0/samples/0/modifiers/0/type" in err.value.one_line()
    bad = json.loads(json.dumps(doc))
    bad["likelihoods"][0]["distributions"][0] = "nope"
    with pytest.raises(InputError, match="undefined distribution 'nope'"):
        api.load(bad)
    bad = json.loads(json.dumps(doc))
    bad["distributions"].append({"name": "g", "type": "crystalball_dist"})
    bad["likelihoods"][0]["aux_distributions"] = ["g"]
    with pytest.raises(InputError, match="'crystalball_dist' is not supported"):
        api.load(bad)
    bad = json.loads(json.dumps(doc))
    bad["functions"] = [{"name": "f", "type": "generic_function", "expression": "mu > 1 ? 2 : 3"}]
    bad["distributions"][0]["samples"][0]["modifiers"].append({"name": "f", "type": "normfactor", "parameter": "f"})
    with pytest.raises(InputError, match="comparisons, logic and ternaries"):
        api.load(bad)


def _pyhs3_nll(doc, values):
    pyhs3 = pytest.importorskip("pyhs3")
    pytensor = pytest.importorskip("pytensor")
    from pytensor.graph.basic import Constant, graph_inputs

    ws = pyhs3.Workspace(**doc)
    model = ws.model(ws.analyses[0], progress=False)
    lp = model.log_prob
    ins = [v for v in graph_inputs([lp]) if not isinstance(v, Constant)]
    f = pytensor.function(ins, lp)
    vals = dict(values)
    vals.update(model.data)
    return -float(np.asarray(f(*[np.atleast_1d(vals[v.name]).astype(float) if v.type.ndim else np.float64(vals[v.name])
                                 for v in ins])).ravel()[0])


def test_our_hs3_loads_in_pyhs3_with_the_same_nll():
    for loaded in (api.read(simple_workspace()),
                   api.read({"observed": [51.0, 48.0, 20.0], "background": [50.0, 52.0, 18.0],
                             "uncertainties": [5.0, 7.0, 3.0], "signal": [12.0, 11.0, 4.0]})):
        doc = api.convert(loaded, "hs3")
        m = api.compile_module(loaded)
        x = m.inits() + 0.07
        values = {n: v for n, v in zip(m.par_names, x)}
        values.update({hs3_name(n): v for n, v in zip(m.par_names, x)})
        got = _pyhs3_nll(doc, values)
        # pyhs3 agrees to 4e-7 relative on shapesys models (its Poisson constraint guard), exactly otherwise
        assert got == pytest.approx(m.nll(x), rel=1e-6)


@pytest.mark.parametrize("model", ["correlated_background", "third_moment_expansion", "uncorrelated_background", "poisson"])
def test_simplified_through_hs3(model):
    doc = {"observed": [51.0, 48.0, 20.0], "background": [50.0, 52.0, 18.0],
           "covariance": [[25.0, 5.0, 1.0], [5.0, 49.0, 2.0], [1.0, 2.0, 9.0]], "third_moment": [10.0, -20.0, 3.0],
           "uncertainties": [5.0, 7.0, 3.0], "signal": [12.0, 11.0, 4.0]}
    if model == "poisson":
        doc.pop("uncertainties")
    loaded = api.read(doc, model=model)
    m = api.compile_module(loaded)
    back = api.load(api.convert(loaded, "hs3"))
    r = diff(m, back, points=5)
    assert r.same, r.to_dict()


@pytest.mark.slow
def test_every_corpus_workspace_through_hs3_and_histfactory():
    """JSON -> HS3 -> IR and JSON -> HistFactory JSON -> IR: the same NLL (1e-10) and the same
    parameter table for every HistFactory workspace in the corpus."""
    root = _need(CORPUS / "atlas-pyhf")
    n = 0
    for f in sorted(root.rglob("*.json")):
        try:
            d = json.loads(f.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not (isinstance(d, dict) and {"channels", "measurements", "observations"} <= set(d)):
            continue
        try:
            loaded = api.read(str(f), require_poi=False)
        except InputError:
            continue  # files the HistFactory reader rejects are checked in the error tests
        m = api.compile_module(loaded)
        for target in ("hs3", "histfactory"):
            other = api.load(api.convert(loaded, target), require_poi=False)
            r = diff(m, other, points=3, fits=False)
            assert r.same, (str(f), target, r.max_rel)
            assert np.all(other.bounds() == m.bounds()) and np.all(other.fixed() == m.fixed())
        hf = api.convert(loaded, "histfactory")
        assert json.dumps(hf, sort_keys=True) == json.dumps(loaded.spec.doc, sort_keys=True)
        n += 1
    assert n >= 40


CARD = """imax 1
jmax 2
kmax *
bin SR
observation 12
bin SR SR SR
process sig bkg other
process 0 1 2
rate 3.5 10.2 1.5
lumi_13TeV lnN 1.025 1.025 -
bkgsys lnN - 0.8/1.3 -
othersys lnU - - 2.0
stat gmN 20 - - 0.075
bkgnorm rateParam SR bkg 1.0 [0.5,2]
"""


def _same_model(a, b, n=6, seed=2):
    assert list(b.par_names) == list(a.par_names)
    np.testing.assert_allclose(b.inits(), a.inits())
    np.testing.assert_allclose(b.bounds(), a.bounds())
    np.testing.assert_array_equal(b.fixed(), a.fixed())
    rng = np.random.default_rng(seed)
    lo, hi = a.bounds()[:, 0], a.bounds()[:, 1]
    for k in range(n):
        x = a.inits() if k == 0 else np.clip(a.inits() + rng.normal(0, 0.4, a.n_params), lo, hi)
        assert b.nll(x) == pytest.approx(a.nll(x), rel=1e-10, abs=1e-12)


def test_any_model_through_hs3_functions(tmp_path):
    """Datacards (lnN symmetric and asymmetric, lnU, gmN, rateParam) have no histfactory_dist
    form: they are written with HS3 functions (compiler/exporters/hs3_generic.py) and read back
    to the same parameter table and NLL."""
    p = tmp_path / "card.txt"
    p.write_text(CARD)
    loaded = api.read(str(p))
    doc = api.convert(loaded, "hs3")
    assert {d["type"] for d in doc["distributions"]} >= {"poisson_dist", "gaussian_dist"}
    _same_model(api.compile_module(loaded), api.load(json.loads(json.dumps(doc))))


@pytest.mark.parametrize("card", ["cms-datacards/CMS-SUS-20-004/2DTChiHH600_LSP150.txt"])
def test_corpus_datacard_through_hs3(card):
    loaded = api.read(str(_need(CORPUS / card)))
    _same_model(api.compile_module(loaded), api.load(api.convert(loaded, "hs3")))


def test_histfactory_through_the_generic_hs3_writer():
    """Every interpolation code as an HS3 expression (normsys code 0/1/2/4, histosys 0/2/4/4p):
    the generic writer on HistFactory models gives the same NLL as the model itself."""
    from tweed.compiler.exporters.hs3_generic import from_module
    from tests.models import rich_workspace

    for ncode, hcode in (("code0", "code0"), ("code1", "code2"), ("code2", "code4"), ("code4", "code4p")):
        loaded = api.read(rich_workspace(), normsys_code=ncode, histosys_code=hcode)
        _same_model(api.compile_module(loaded), api.load(from_module(loaded.module)), n=8, seed=3)
    root = _need(CORPUS / "atlas-pyhf" / "SUSY-2018-31_sbottom-multib" / "RegionA")
    loaded = api.read(str(root / "BkgOnly.json"), patches=[str(root / "patch.sbottom_900_250_60.json")])
    _same_model(api.compile_module(loaded), api.load(from_module(loaded.module)), n=3)
