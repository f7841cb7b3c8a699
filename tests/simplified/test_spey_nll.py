"""Simplified-likelihood NLLs against Spey 0.2.7's log-densities, and the IR interpreter.

Convention: Tweed's NLL is Spey's -logpdf exactly (same constants: continuous Poisson with
lgamma, the full normal and multivariate-normal normalisations), so the tolerance is relative
1e-12 (the acceptance bar is 1e-8).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import CORPUS
from tests.simplified.conftest import generated, spey_model
from tweed import api
from tweed.compiler.frontends.simplified import third_moment_coefficients
from tweed.ir.interpret import nll as interpret_nll

RTOL = 1e-12


def variants(doc: dict) -> dict[str, dict]:
    cov = np.asarray(doc["covariance"])
    sd = np.sqrt(np.diag(cov))
    return {
        "uncorrelated_background": dict(doc, uncertainties=sd.tolist()),
        "correlated_background": doc,
        "third_moment_expansion": doc,
        "effective_sigma": dict(doc, correlation=(cov / np.outer(sd, sd)).tolist(),
                                uncertainty_envelopes=np.c_[1.3 * sd, 0.8 * sd].tolist()),
        "poisson": doc,
        "normal": dict(doc, uncertainties=sd.tolist()),
        "multivariate_normal": doc,
    }


def random_points(model, k: int, seed: int, spread: float = 0.4):
    """k random points where every expected rate is positive (Spey floors a negative rate at
    1e-20, Tweed calls it NaN: docs/simplified.md)."""
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(50 * k):
        p = np.concatenate([[rng.uniform(0.0, 1.5)], rng.normal(0.0, spread, model.n_params - 1)])
        if np.all(model.expected_data(p, include_auxdata=False) > 0):
            found += 1
            yield p
            if found == k:
                return
    raise AssertionError("no valid random points")


def assert_same_nll(model, spey_stat, seed=1, k=6, spread=0.4, module=None, rtol=RTOL):
    logpdf = spey_stat.backend.get_logpdf_func()
    for p in random_points(model, k, seed, spread):
        ref = -float(logpdf(p))
        assert model.nll(p) == pytest.approx(ref, rel=rtol)
        if module is not None:
            assert interpret_nll(module, p) == pytest.approx(ref, rel=rtol)


@pytest.mark.parametrize("name", list(variants(generated(4))))
def test_every_model_matches_spey(spey, name):
    doc = variants(generated(12, seed=3))[name]
    loaded = api.read(doc, model=name)
    model = api.compile_module(loaded)
    assert model.meta["model"] == name
    assert_same_nll(model, spey_model(spey, doc, name), module=loaded.module)


@pytest.mark.parametrize("name", ["correlated_background", "third_moment_expansion", "uncorrelated_background"])
def test_signal_uncertainties_match_spey(spey, name):
    doc = variants(generated(10, seed=5))[name]
    s = np.asarray(doc["signal"])
    mods = [{"type": "normalization", "uncertainties": (0.1 * s).tolist(), "name": "xs"},
            {"type": "shape", "uncertainties": [[0.2 * x, 0.15 * x] for x in s], "name": "mc"}]
    model = api.load(dict(doc, signal_uncertainties=mods), model=name)
    stat = spey_model(spey, doc, name, modifiers=mods)
    assert model.n_params == len(stat.backend.config().suggested_init) == 1 + 10 + 1 + 10
    assert model.par_names[11] == "theta_sig_xs" and model.par_names[-1] == "theta_sig_mc[9]"
    assert_same_nll(model, stat, spread=0.8)


@pytest.mark.parametrize("nbins", [50, 200])
def test_generated_50_and_200_bins(spey, nbins):
    doc = generated(nbins, seed=nbins)
    for name in ("correlated_background", "third_moment_expansion"):
        assert_same_nll(api.load(doc, model=name), spey_model(spey, doc, name), seed=nbins)


CMS = ["CMS-SUS-20-004_SLv2_TChiHH_mH300.json", "CMS-SUS-20-004_SLv2_TChiHH_mH450.json",
       "CMS-SUS-20-004_SLv2_TChiHH_mH750.json", "CMS-NOTE-2017-001_dummy_model.json",
       "SLtools_generated_model_90bins.json"]


def cms(name: str) -> dict:
    path = CORPUS / "cms-simplified" / name
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared absent)")
    doc = json.loads(path.read_text())
    doc["_path"] = str(path)
    return doc


@pytest.mark.parametrize("name", CMS)
def test_published_cms_inputs(spey, name):
    doc = cms(name)
    model = api.load(doc["_path"])
    expected = "third_moment_expansion" if "third_moment" in doc else "correlated_background"
    assert model.meta["model"] == expected
    stat = spey_model(spey, doc, expected)
    # both invert the correlation matrix: rounding grows with its condition number
    # (7e7 for CMS-NOTE-2017-001's 8 bins), within the 1e-8 acceptance bar
    cov = np.asarray(doc["covariance"])
    sd = np.sqrt(np.diag(cov))
    rtol = max(RTOL, 1e-16 * np.linalg.cond(cov / np.outer(sd, sd)))
    assert rtol <= 1e-8
    assert_same_nll(model, stat, spread=0.3, rtol=rtol)
    if expected == "third_moment_expansion":  # the plain correlated model too
        assert_same_nll(api.load(doc["_path"], model="correlated_background"),
                        spey_model(spey, doc, "correlated_background"), rtol=rtol)


def test_third_moment_coefficients_check_values():
    # docs/formats/simplified.md §2.3, checked there with spey 0.2.7
    a, b, c, rho = third_moment_coefficients([5.0, 7.0], [[9.0, 2.0], [2.0, 16.0]], [10.0, -20.0])
    assert c == pytest.approx([0.18566, -0.20871], abs=1e-5)
    assert b == pytest.approx([2.98849, 3.98909], abs=1e-5)
    assert a == pytest.approx([5.0 - c[0], 7.0 - c[1]])
    assert rho[0, 0] != 1.0 and rho[0, 0] == pytest.approx(1.0, abs=1e-5)  # Spey's 1e-5 shift
    # the quadratic model reproduces the variance and the third moment
    t = np.random.default_rng(0).normal(size=400_000)
    x = b[0] * t + c[0] * t**2 - c[0]
    assert np.var(x) == pytest.approx(9.0, rel=1e-2)
    assert np.mean(x**3) == pytest.approx(10.0, rel=0.1)


def test_third_moment_too_large_falls_back_with_warning():
    doc = {"observed": [10.0, 12.0], "background": [9.0, 11.0], "covariance": [[4.0, 1.0], [1.0, 4.0]],
           "third_moment": [1000.0, 2.0], "signal": [1.0, 1.0]}
    with pytest.warns(UserWarning, match="too large"):
        a, b, c, _ = third_moment_coefficients(doc["background"], doc["covariance"], doc["third_moment"])
    assert c[0] == 0.0 and c[1] != 0.0


def test_layout_parameters_and_data():
    doc = generated(3, third=False)
    loaded = api.read(doc)
    mod = loaded.module
    assert mod.par_names == ["mu", "theta[0]", "theta[1]", "theta[2]"]
    assert mod.data.array.tolist() == doc["observed"] + [0.0, 0.0, 0.0]
    lo, hi = mod.bounds()[0]
    s, b = np.asarray(doc["signal"]), np.asarray(doc["background"])
    assert lo == pytest.approx(-np.min(b / s)) and hi == 10.0  # Spey's POI range
    model = api.compile_module(loaded)
    assert np.allclose(model.apriori_data()[:3], doc["background"])
