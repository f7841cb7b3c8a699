"""Profile scans against Hessian errors, impacts against brute-force refits, goodness of fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from tests.models import rich_workspace, simple_workspace
from tweed.api import compile_module, read
from tweed.runtime import infer
from tweed.runtime.gof import saturated_nll


def model(ws, **kw):
    return compile_module(read(ws, **kw).module)


def gaussian_like():
    # large counts: the likelihood is close to Gaussian in mu
    return simple_workspace(signal=(60.0, 50.0), bkg=(500.0, 520.0), unc=(5.0, 7.0), obs=(575.0, 560.0))


def test_profile_interval_matches_hessian_error():
    cm = model(gaussian_like())
    best = infer.fit(cm)
    mu, err = best.bestfit[0], best.uncertainties[0]
    scan = infer.profile_scan(cm, ["mu"], [np.linspace(mu - 3 * err, mu + 3 * err, 13)])
    lo, hi = scan.intervals["68%"][0]
    assert lo == pytest.approx(mu - err, rel=0.03) and hi == pytest.approx(mu + err, rel=0.03)
    lo95, hi95 = scan.intervals["95%"][0]
    assert hi95 - lo95 == pytest.approx(2 * 1.96 * err, rel=0.05)
    assert np.nanmin(scan.delta) == pytest.approx(0.0, abs=1e-3) and scan.failed == 0
    d = scan.to_dict()
    assert len(d["twice_nll"]) == 13 and d["intervals"]["68%"][0][0] == lo


def test_profile_2d():
    cm = model(rich_workspace())
    best = infer.fit(cm)
    i, j = cm.par_names.index("mu"), cm.par_names.index("k_bkg")
    scan = infer.profile_scan(cm, ["mu", "k_bkg"], [np.linspace(0, 2, 5),
                                                   np.linspace(0.8, 1.2, 4)], refine=False)
    assert scan.twice_nll.shape == (5, 4) and np.all(scan.delta >= -1e-6)
    # a grid point's value is the POI- and k-fixed fit there
    r = infer.fit(cm, fix={i: 1.0, j: 0.8 + 0.4 / 3}, hessian=False)
    assert scan.twice_nll[2, 1] == pytest.approx(r.twice_nll, abs=1e-6)


def test_impacts_agree_with_brute_force_refits():
    cm = model(rich_workspace())
    rank = infer.ranking(cm, workers=2)
    best = infer.fit(cm)
    poi = cm.poi_index
    assert rank.poi_hat == pytest.approx(best.bestfit[poi])
    for imp in rank.impacts[:4]:
        i = cm.par_names.index(imp.name)
        up = infer.fit(cm, fix={i: best.bestfit[i] + best.uncertainties[i]}, hessian=False)
        assert imp.postfit_up == pytest.approx(up.bestfit[poi] - best.bestfit[poi], abs=1e-5)
    sizes = [im.size for im in rank.impacts]
    assert sizes == sorted(sizes, reverse=True)
    jes = next(im for im in rank.impacts if im.name == "jes")
    assert jes.prefit_width == 1.0 and jes.pull == pytest.approx(best.bestfit[0])
    theory = next(im for im in rank.impacts if im.name == "theory")  # aux shifted to 0.1
    assert theory.pull == pytest.approx(best.bestfit[cm.par_names.index("theory")] - 0.1)
    assert all(im.status == "ok" for im in rank.impacts)


def test_saturated_gof():
    cm = model(rich_workspace())
    g = infer.goodness_of_fit(cm)
    assert g.q_saturated == pytest.approx(2 * (g.best.nll - saturated_nll(cm)))
    assert g.p_value == pytest.approx(chi2.sf(g.q_saturated, g.ndf))
    assert g.ndf == cm.n_data - int(np.sum(~cm.fixed()))
    assert [c["channel"] for c in g.channels] == ["CR", "SR"]
    # a model that is its own data fits perfectly: q = 0
    asimov = cm.expected_data(cm.inits())
    assert infer.goodness_of_fit(cm, data=asimov).q_saturated == pytest.approx(0.0, abs=1e-6)
