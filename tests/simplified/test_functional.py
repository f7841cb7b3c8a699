"""Functional signal yields: expressions in the JSON, --expr reparametrisation of any scalar
parameter (HistFactory normfactors included), several POIs, 2D profile scans, and signal
yields from a Python callable (T2K-style oscillation fit: 5 channels x 40 bins)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.models import simple_workspace
from tweed import api
from tweed.cli.main import cli
from tweed.errors import InputError
from tweed.runtime import infer

EFT = {"observed": [12.0, 9.0, 4.0], "background": [10.0, 8.0, 3.0],
       "covariance": [[4.0, 1.0, 0.2], [1.0, 3.0, 0.1], [0.2, 0.1, 1.0]],
       "signal": {"expression": "a * c1**2 + b * c2**2 + c * c1 * c2",
                  "coefficients": {"a": [1.0, 0.5, 0.2], "b": [0.3, 0.6, 0.9], "c": [0.2, 0.1, 0.3]},
                  "parameters": {"c1": {"init": 0.5, "bounds": [-3, 3]}, "c2": {"init": 0.5, "bounds": [-3, 3]}}}}


def _numeric(doc, c1, c2):
    coef = doc["signal"]["coefficients"]
    s = np.asarray(coef["a"]) * c1**2 + np.asarray(coef["b"]) * c2**2 + np.asarray(coef["c"]) * c1 * c2
    return dict({k: v for k, v in doc.items() if k != "signal"}, signal=s.tolist())


def test_expression_signal_equals_numbers():
    model = api.load(EFT)
    assert model.par_names[:2] == ("c1", "c2") and model.poi_name == "c1"
    fixed = api.load(_numeric(EFT, 0.7, -1.2))  # mu * s with mu = 1
    x = model.inits()
    x[:2] = 0.7, -1.2
    y = fixed.inits()
    y[0] = 1.0
    y[1:] = x[2:] = [0.3, -0.2, 0.1]
    assert model.nll(x) == pytest.approx(fixed.nll(y), rel=1e-14)
    f, g = model.nll_and_grad(x)
    fd = [(model.nll(x + 1e-6 * e) - model.nll(x - 1e-6 * e)) / 2e-6 for e in np.eye(model.n_params)]
    assert g == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_two_poi_fit_and_2d_profile_scan(tmp_path):
    p = tmp_path / "eft.json"
    p.write_text(json.dumps(EFT))
    model = api.load(str(p))
    best = model.fit()
    assert best.success
    grid = np.linspace(-2, 2, 5)
    scan = infer.profile_scan(model, ["c1", "c2"], [grid, grid])
    assert np.min(scan.twice_nll) >= best.twice_nll - 1e-7
    # the profile is symmetric under (c1, c2) -> (-c1, -c2): only even terms and c1*c2
    T = np.asarray(scan.twice_nll)
    assert T == pytest.approx(T[::-1, ::-1], abs=1e-6)
    out, png = tmp_path / "scan.json", tmp_path / "scan.png"
    r = CliRunner().invoke(cli, ["scan-profile", str(p), "--param", "c1", "--param", "c2", "--range=-2:2:5",
                                 "--range=-2:2:5", "-o", str(out), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 1000
    assert np.asarray(json.loads(out.read_text())["twice_nll"]) == pytest.approx(T, abs=1e-6)


def test_expr_reparametrises_a_histfactory_normfactor():
    ws = simple_workspace()
    base = api.load(ws)
    model = api.load(ws, expressions={"mu": "sqrt(k)"}, param_ranges={"k": (0.0, 25.0, 1.0)})
    assert model.poi_name == "k" and "mu" not in model.par_names
    i_mu, i_k = base.par_names.index("mu"), model.par_names.index("k")
    x = base.inits()
    x[i_mu] = 1.7
    y = np.delete(x, i_mu)
    y = np.insert(y, i_k, 1.7**2)
    assert model.nll(y) == pytest.approx(base.nll(x), rel=1e-14)
    fb, fm = base.fit(), model.fit()
    assert fm.bestfit[i_k] == pytest.approx(fb.bestfit[i_mu] ** 2, rel=1e-5)
    assert fm.twice_nll == pytest.approx(fb.twice_nll, rel=1e-10)


def test_expr_cli_on_a_simplified_likelihood(tmp_path):
    p = tmp_path / "sl.json"
    p.write_text(json.dumps({"observed": [51, 48], "background": [50.0, 52.0],
                             "covariance": [[25.0, 5.0], [5.0, 49.0]], "signal": [12.0, 11.0]}))
    run = CliRunner()
    plain = json.loads(run.invoke(cli, ["cls", str(p)]).output)
    r = run.invoke(cli, ["cls", str(p), "--expr", "mu=k**2", "--param-range", "k=0:5:0.5"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["CLs_obs"] == pytest.approx(plain["CLs_obs"], rel=1e-6)  # k = 1 <=> mu = 1
    bad = run.invoke(cli, ["cls", str(p), "--expr", "nope=k"])
    assert bad.exit_code == 2 and "no parameter named 'nope'" in bad.stderr


def test_expr_errors():
    ws = simple_workspace()
    with pytest.raises(InputError, match="expected NAME=EXPRESSION"):
        from tweed.compiler.reparametrize import parse_assignment

        parse_assignment("mu")
    with pytest.raises(InputError, match="per-bin parameter set"):
        api.read(ws, expressions={"uncorr_bkguncrt": "k"})
    with pytest.raises(InputError, match="not a new parameter"):
        api.read(ws, expressions={"mu": "k"}, param_ranges={"q": (0, 1, None)})


# -- a callable signal: a T2K-style oscillation fit ------------------------------------------
E = np.tile(np.linspace(0.2, 3.0, 40), 5)
FLUX = np.repeat([120.0, 80.0, 60.0, 40.0, 30.0], 40) * np.exp(-((E - 0.7) ** 2) / 0.3)
BKG = 5.0 + 20.0 * np.exp(-E)


def oscillated(phi):
    s2t, dm2 = phi
    return FLUX * s2t * np.sin(1.267e-3 * dm2 * 295.0 / E) ** 2


@pytest.fixture(scope="module")
def t2k():
    obs = np.random.default_rng(4).poisson(BKG + oscillated([0.5, 2.5])).astype(float)
    model = api.simplified(obs, BKG, oscillated, model="uncorrelated_background", uncertainties=0.1 * BKG,
                           n_signal_parameters=2, signal_parameter_bounds=[(0.0, 1.0), (0.5, 5.0)],
                           signal_parameter_names=["sin2_2theta", "dm2"])
    doc = {"observed": obs.tolist(), "background": BKG.tolist(), "uncertainties": (0.1 * BKG).tolist(),
           "signal": {"expression": "mu * flux * s2t * sin(1.267e-3 * dm2 * LE) ** 2",
                      "coefficients": {"flux": FLUX.tolist(), "LE": (295.0 / E).tolist()},
                      "parameters": {"mu": {"bounds": [-10, 10]}, "s2t": {"bounds": [0, 1]},
                                     "dm2": {"bounds": [0.5, 5]}}}}
    return model, api.load(doc, model="uncorrelated_background")


def test_callable_signal_matches_the_compiled_expression(t2k):
    model, compiled = t2k
    assert model.n_params == compiled.n_params == 1 + 2 + 200
    assert model.par_names[:3] == ("mu", "sin2_2theta", "dm2")
    x = model.inits()
    x[1:3] = 0.4, 2.2
    x[3:] = np.random.default_rng(0).normal(0, 0.3, 200)
    assert model.nll(x) == pytest.approx(compiled.nll(x), rel=1e-13)
    g1, g2 = model.nll_and_grad(x)[1], compiled.nll_and_grad(x)[1]
    assert g1 == pytest.approx(g2, rel=1e-6, abs=1e-6)  # finite-difference Jacobian of the callable
    fit1, fit2 = model.fit(fix={0: 1.0}), compiled.fit(fix={0: 1.0})
    assert fit1.success and fit2.success
    assert fit1.twice_nll == pytest.approx(fit2.twice_nll, abs=1e-6)
    assert fit1.bestfit[1:3] == pytest.approx(fit2.bestfit[1:3], abs=1e-4)
    assert fit1.bestfit[1:3] == pytest.approx([0.5, 2.5], abs=0.1)  # the truth, within its precision
    # profile over the oscillation parameters, and a CLs on mu through the same runtime
    scan = infer.profile_scan(model, ["sin2_2theta"], [np.linspace(0.3, 0.7, 3)], refine=False)
    assert np.all(np.isfinite(scan.twice_nll))
    assert 0.0 <= infer.hypotest(model, 1.0).CLs_obs <= 1.0


def test_callable_signal_bad_length():
    with pytest.raises(ValueError, match="returned 3 yields"):
        m = api.simplified([1.0, 2.0], [1.0, 1.0], lambda phi: np.ones(3), n_signal_parameters=1,
                           uncertainties=[0.1, 0.1], model="uncorrelated_background")
        m.nll(m.inits())
