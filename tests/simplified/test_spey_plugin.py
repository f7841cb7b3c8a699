"""Tweed as a Spey backend: Spey's API on Tweed's compiled models gives Spey's numbers for
simplified likelihoods and pyhf's (= Tweed's) for HistFactory workspaces."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import simple_workspace
from tests.simplified.conftest import generated, spey_model
from tests.simplified.test_spey_nll import cms
from tweed import api
from tweed.runtime import infer


@pytest.fixture(scope="module")
def backends(spey):
    from importlib.metadata import EntryPoint

    for name, cls in (("tweed.simplified", "TweedSimplified"), ("tweed.histfactory", "TweedHistFactory")):
        if name not in spey.AvailableBackends():  # a checkout not installed: the entry point by hand
            spey._backend_entries[name] = EntryPoint(name, f"tweed.spey_plugin:{cls}", "spey.backend.plugins")
    return spey.get_backend("tweed.simplified"), spey.get_backend("tweed.histfactory")


def test_simplified_backend_reproduces_spey_default(spey, backends):
    factory, _ = backends
    doc = generated(30, seed=11)
    ours = factory(signal_yields=doc["signal"], background_yields=doc["background"], data=doc["observed"],
                   covariance_matrix=doc["covariance"], third_moment=doc["third_moment"], analysis="gen30")
    ref = spey_model(spey, doc, "third_moment_expansion")
    p = np.concatenate([[0.8], np.random.default_rng(0).normal(0, 0.2, 30)])
    assert ours.backend.get_logpdf_func()(p) == pytest.approx(ref.backend.get_logpdf_func()(p), rel=1e-12)
    assert ours.exclusion_confidence_level(1.0)[0] == pytest.approx(ref.exclusion_confidence_level(1.0)[0], abs=1e-3)
    apri = spey.ExpectationType.apriori
    assert ours.exclusion_confidence_level(1.0, expected=apri) == pytest.approx(
        ref.exclusion_confidence_level(1.0, expected=apri), abs=1e-3)
    assert ours.poi_upper_limit() == pytest.approx(ref.poi_upper_limit(), rel=1e-2)
    assert ours.chi2(0.5) == pytest.approx(ref.chi2(0.5), rel=1e-3, abs=1e-5)
    assert ours.sigma_mu(1.0) == pytest.approx(ref.sigma_mu(1.0), rel=1e-3)


def test_simplified_backend_from_a_file(spey, backends):
    factory, _ = backends
    doc = cms("CMS-SUS-20-004_SLv2_TChiHH_mH450.json")
    stat = factory(source=doc["_path"])
    model = api.load(doc["_path"])
    assert 1 - stat.exclusion_confidence_level(1.0)[0] == pytest.approx(infer.hypotest(model, 1.0).CLs_obs, abs=1e-6)


def test_histfactory_backend_gives_pyhf_conventions(backends):
    _, factory = backends
    ws = simple_workspace()
    stat = factory(workspace=ws)
    model = api.load(ws)
    r = infer.hypotest(model, 1.0)
    assert 1 - stat.exclusion_confidence_level(1.0)[0] == pytest.approx(r.CLs_obs, abs=1e-6)
    expected = stat.exclusion_confidence_level(1.0, expected=__import__("spey").ExpectationType.aposteriori)
    assert 1 - np.array(expected) == pytest.approx(r.CLs_exp, abs=1e-6)
    muhat, nll = stat.maximize_likelihood()
    fit = model.fit()
    assert muhat == pytest.approx(fit.bestfit[model.poi_index], abs=1e-5)
    assert nll == pytest.approx(fit.twice_nll / 2, rel=1e-10)
