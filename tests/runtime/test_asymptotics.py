"""Asymptotic CLs, expected bands, upper limits and discovery against pyhf."""

import numpy as np
import pytest

from tests.models import rich_workspace, simple_workspace
from tweed.api import compile_module, read
from tweed.runtime import infer

pyhf = pytest.importorskip("pyhf")


def model(ws):
    return compile_module(read(ws).module)


def test_numbers_from_the_inference_notes():
    """../shared/docs/formats/inference.md 4.5 (pyhf 0.7.6 on uncorrelated_background)."""
    cm = model(simple_workspace())
    h = infer.hypotest(cm, 1.0)
    assert h.CLs_obs == pytest.approx(0.595026, abs=2e-6)
    assert h.CLsb_obs == pytest.approx(0.368045, abs=2e-6)
    assert h.CLb_obs == pytest.approx(0.618537, abs=2e-6)
    np.testing.assert_allclose(h.CLs_exp, [0.18292, 0.31919, 0.52303, 0.76196, 0.93456], atol=1e-5)
    ul = infer.upper_limit(cm)
    assert ul.upper_limit_obs == pytest.approx(3.4601, rel=1e-3)
    np.testing.assert_allclose(ul.upper_limit_exp, [1.6568, 2.2366, 3.1319, 4.4146, 6.0169], rtol=1e-3)


def pyhf_hypotest(ws, mu, test_stat, bounds=None):
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model()
    d = w.data(m)
    kw = {} if bounds is None else {"par_bounds": bounds}
    obs, exp = pyhf.infer.hypotest(mu, d, m, test_stat=test_stat, return_expected_set=True, **kw)
    return float(obs), [float(e) for e in exp], m


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.5])
def test_qtilde_matches_pyhf(mu):
    ws = rich_workspace()
    obs, exp, _ = pyhf_hypotest(ws, mu, "qtilde")
    h = infer.hypotest(model(ws), mu)
    assert h.CLs_obs == pytest.approx(obs, abs=1e-4)
    np.testing.assert_allclose(h.CLs_exp, exp, atol=1e-4)


def test_q_with_negative_poi_range_matches_pyhf():
    ws = rich_workspace()
    ws["measurements"][0]["config"]["parameters"][2]["bounds"] = [[-5.0, 8.0]]
    obs, exp, _ = pyhf_hypotest(ws, 1.0, "q")
    h = infer.hypotest(model(ws), 1.0, test_stat="q")
    assert h.CLs_obs == pytest.approx(obs, abs=1e-4)
    np.testing.assert_allclose(h.CLs_exp, exp, atol=1e-4)


def test_discovery_matches_pyhf_q0():
    ws = simple_workspace(obs=(70.0, 66.0))
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model()
    p0, p0_exp = pyhf.infer.hypotest(0.0, w.data(m), m, test_stat="q0", return_expected=True)
    r = infer.discovery(model(ws))
    assert r.p0 == pytest.approx(float(p0), rel=1e-4)
    assert r.p0_exp == pytest.approx(float(p0_exp), rel=1e-4)
    assert r.significance == pytest.approx(np.sqrt(r.q0), rel=1e-9)


def test_asimov_data_match_pyhf():
    ws = rich_workspace()
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model()
    ref = pyhf.infer.calculators.generate_asimov_data(0.0, w.data(m), m, m.config.suggested_init(),
                                                     m.config.suggested_bounds(), m.config.suggested_fixed())
    np.testing.assert_allclose(model(ws).asimov_data(0.0), ref, rtol=2e-4, atol=2e-4)


def test_upper_limit_grid_scan_agrees_with_root_finding():
    cm = model(simple_workspace())
    exact = infer.upper_limit(cm)
    grid = infer.upper_limit(cm, scan=np.linspace(0, 8, 81))
    assert grid.upper_limit_obs == pytest.approx(exact.upper_limit_obs, rel=5e-3)
    np.testing.assert_allclose(grid.upper_limit_exp, exact.upper_limit_exp, rtol=1e-2)
    for h in exact.scan:  # every scanned point is a complete hypotest
        assert len(h.CLs_exp) == 5


def test_expected_band_from_the_asimov_fits_alone_equals_the_full_hypotest():
    from tweed.runtime.asymptotics import AsymptoticCalculator

    cm = model(rich_workspace())
    calc = AsymptoticCalculator(cm)
    for mu in (0.5, 1.0, 2.5):
        assert calc.expected(mu) == calc.run(mu).CLs_exp  # bit for bit
    ul = infer.upper_limit(cm)
    for k, v in enumerate(ul.upper_limit_exp):  # each expected limit sits at its CLs level
        assert infer.hypotest(cm, v).CLs_exp[k] == pytest.approx(0.05, abs=1e-6)


def test_band_thresholds_give_the_level():
    """sqrt(q_mu,A) thresholds: the band's CLs there is exactly the level."""
    from tweed.runtime.asymptotics import AsymptoticCalculator

    calc = AsymptoticCalculator(model(simple_workspace()))
    for level in (0.05, 0.1, 0.32):
        for k, s in enumerate(calc.band_thresholds(level)):
            assert calc._band(s)[2][k] == pytest.approx(level, rel=1e-13)
    assert AsymptoticCalculator(model(simple_workspace()), test_stat="q0").band_thresholds(0.05) is None


@pytest.mark.parametrize("test_stat", ["qtilde", "q"])
def test_limits_take_few_hypotests_and_sit_on_their_levels(test_stat, monkeypatch):
    """The band is solved on sqrt(q_mu,A) (Asimov fits only), the observed limit near the band:
    each of the six limits has CLs = level, from about ten full hypotests."""
    from tweed.runtime.asymptotics import AsymptoticCalculator

    runs, asimov = [], []
    real_run, real_asi = AsymptoticCalculator.run, AsymptoticCalculator.sqrt_q_asimov
    monkeypatch.setattr(AsymptoticCalculator, "run", lambda self, mu: runs.append(mu) or real_run(self, mu))
    monkeypatch.setattr(AsymptoticCalculator, "sqrt_q_asimov",
                        lambda self, mu: asimov.append(mu) or real_asi(self, mu))
    cm = model(rich_workspace())
    ul = infer.upper_limit(cm, test_stat=test_stat)
    assert len(runs) <= 10 and len(asimov) <= 25, (len(runs), len(asimov))
    h = infer.hypotest(cm, ul.upper_limit_obs, test_stat=test_stat)
    assert h.CLs_obs == pytest.approx(0.05, abs=1e-7)
    for k, v in enumerate(ul.upper_limit_exp):
        assert infer.hypotest(cm, v, test_stat=test_stat).CLs_exp[k] == pytest.approx(0.05, abs=1e-7)


def test_limit_level_is_honoured():
    cm = model(simple_workspace())
    ul = infer.upper_limit(cm, level=0.1)
    assert infer.hypotest(cm, ul.upper_limit_obs).CLs_obs == pytest.approx(0.1, abs=1e-6)


def test_hypotest_refuses_a_fixed_poi_and_a_model_without_poi():
    ws = simple_workspace()
    ws["measurements"][0]["config"]["parameters"] = [{"name": "mu", "fixed": True}]
    with pytest.raises(ValueError, match="fixed"):
        infer.hypotest(model(ws), 1.0)
    ws = simple_workspace()
    ws["measurements"][0]["config"]["poi"] = "nope"
    cm = compile_module(read(ws, require_poi=False).module)
    with pytest.raises(ValueError, match="no POI"):
        infer.hypotest(cm, 1.0)


def test_sampling_shapes_and_means():
    cm = model(rich_workspace())
    x = cm.inits()
    toys = cm.sample(x, 4000, np.random.default_rng(1))
    assert toys.shape == (4000, cm.n_data)
    lam = cm.expected_data(x)
    err = 5 * np.sqrt(toys.var(axis=0) / toys.shape[0]) + 1e-12
    assert np.all(np.abs(toys.mean(axis=0) - lam) <= err)
    main = toys[:, : cm.n_main]
    assert np.all(main == np.round(main))
