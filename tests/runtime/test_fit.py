import numpy as np
import pytest

from tests.models import rich_workspace, simple_workspace
from tweed.api import compile_module, read
from tweed.errors import FitError
from tweed.runtime import infer
from tweed.runtime.fit import fit

pyhf = pytest.importorskip("pyhf")


def model(ws, **kw):
    return compile_module(read(ws, **kw).module)


def pyhf_fit(ws, fixed_poi=None):
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model()
    d = w.data(m)
    if fixed_poi is None:
        return pyhf.infer.mle.fit(d, m, return_fitted_val=True)
    return pyhf.infer.mle.fixed_poi_fit(fixed_poi, d, m, return_fitted_val=True)


@pytest.mark.parametrize("ws", [simple_workspace(), rich_workspace()])
@pytest.mark.parametrize("poi", [None, 1.5])
def test_fit_matches_pyhf(ws, poi):
    cm = model(ws)
    res = fit(cm, poi_value=poi)
    best, twice_nll = pyhf_fit(ws, poi)
    assert res.success
    assert res.twice_nll <= float(twice_nll) + 1e-6
    np.testing.assert_allclose(res.bestfit, best, atol=2e-3)
    if poi is not None:
        assert res.bestfit[cm.poi_index] == poi and res.fixed[cm.poi_index]


def test_uncertainties_are_the_inverse_hessian():
    cm = model(rich_workspace())
    res = fit(cm)
    free = ~cm.fixed()
    x = res.bestfit
    eps = 1e-5
    n = cm.n_params
    H = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        H[:, i] = (cm.nll_and_grad(x + e)[1] - cm.nll_and_grad(x - e)[1]) / (2 * eps)
    Hf = H[np.ix_(free, free)]
    np.testing.assert_allclose(res.covariance[np.ix_(free, free)], np.linalg.inv(Hf), rtol=1e-4, atol=1e-9)
    assert np.all(res.uncertainties[~free] == 0)
    corr = res.correlation()
    np.testing.assert_allclose(np.diag(corr)[free], 1.0)


def test_profile_interval_agrees_with_hessian_error_for_a_gaussian_like_model():
    ws = simple_workspace(signal=(50.0, 40.0), bkg=(500.0, 520.0), unc=(5.0, 7.0), obs=(560.0, 570.0))
    cm = model(ws)
    res = fit(cm)
    mu_hat, sigma = res.bestfit[cm.poi_index], res.uncertainties[cm.poi_index]
    # the profile likelihood rises by 1 (twice_nll) at about one sigma
    up = fit(cm, poi_value=mu_hat + sigma).twice_nll - res.twice_nll
    assert up == pytest.approx(1.0, rel=0.05)


def test_result_dict_and_status():
    cm = model(simple_workspace())
    d = fit(cm).to_dict()
    assert d["parameters"] == ["mu", "uncorr_bkguncrt[0]", "uncorr_bkguncrt[1]"]
    assert d["status"] == "ok" and len(d["bestfit"]) == 3 and len(d["uncertainties"]) == 3


def test_fit_reports_parameters_at_bounds():
    ws = simple_workspace(obs=(40.0, 45.0))  # fewer events than background: mu_hat at 0
    res = fit(model(ws))
    assert res.success and "mu" in res.at_bounds and res.bestfit[0] == 0.0


def test_nan_start_is_a_failed_fit_not_a_number():
    ws = simple_workspace()
    ws["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "jes", "type": "histosys", "data": {"hi_data": [60.0, 62.0], "lo_data": [10.0, 12.0]}})
    cm = model(ws, histosys_code="code0")
    x = cm.inits()
    j = cm.par_names.index("jes")
    x[j] = -5.0  # a linear shift of -5 x 40 events: expected rates go negative
    fixed = cm.fixed()
    fixed[j] = True
    res = fit(cm, init=x, fixed=fixed)
    assert res.status == "nan" and not res.success
    with pytest.raises(FitError):
        res.require_success()


def test_init_outside_bounds_is_an_error():
    cm = model(simple_workspace())
    x = cm.inits()
    x[0] = 50.0
    with pytest.raises(ValueError, match="outside its bounds"):
        fit(cm, init=x)


def test_infer_fit_is_the_same():
    cm = model(simple_workspace())
    assert infer.fit(cm).twice_nll == fit(cm).twice_nll
