"""The HistFactory front end against pyhf 0.7.6 (differential oracle) and the IR interpreter:
parameter order, bounds, inits, fixed flags, data layout, and the NLL at random points."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.models import rich_workspace, simple_workspace
from tests.strategies import random_points, workspaces
from tweed.api import compile_module, read
from tweed.ir.interpret import nll as interp_nll

pyhf = pytest.importorskip("pyhf")


def pyhf_model(ws, patches=()):
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model(patches=list(patches))
    return m, np.asarray(w.data(m))


def check_against_pyhf(ws, patches=(), rtol=1e-9, seed=0):
    pm, pdata = pyhf_model(ws, patches)
    loaded = read(ws, patches=list(patches))
    mod = loaded.module
    cm = compile_module(mod)
    assert list(cm.par_names) == list(pm.config.par_names)
    np.testing.assert_array_equal(cm.data, pdata)
    np.testing.assert_allclose(cm.inits(), pm.config.suggested_init())
    np.testing.assert_allclose(cm.bounds(), np.asarray(pm.config.suggested_bounds(), dtype=float))
    np.testing.assert_array_equal(cm.fixed(), pm.config.suggested_fixed())
    assert cm.poi_index == pm.config.poi_index
    rng = np.random.default_rng(seed)
    for x in [cm.inits()] + random_points(cm.inits(), cm.bounds(), cm.fixed(), rng):
        ref = -float(pm.logpdf(x, pdata)[0])
        if not np.isfinite(ref):
            continue
        np.testing.assert_allclose(interp_nll(mod, x), ref, rtol=rtol)
        np.testing.assert_allclose(cm.nll(x), ref, rtol=rtol)
        np.testing.assert_allclose(cm.expected_data(x), np.asarray(pm.expected_data(x)), rtol=1e-10)


def test_simple_model():
    check_against_pyhf(simple_workspace())


def test_every_modifier_type():
    check_against_pyhf(rich_workspace())


def test_signal_patch():
    ws = simple_workspace()
    patch = [{"op": "add", "path": "/channels/0/samples/-", "value": {
        "name": "extra", "data": [1.0, 2.0],
        "modifiers": [{"name": "mu", "type": "normfactor", "data": None},
                      {"name": "syst", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}}]
    check_against_pyhf(ws, patches=[patch])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(workspaces(with_signal_patch=True))
def test_generated_workspaces(case):
    ws, patch = case
    check_against_pyhf(ws)
    check_against_pyhf(ws, patches=[patch])


def test_parameter_order_is_pyhfs_not_alphabetical():
    """histfactory.md 5.2: normfactors zz (in A) and aa (in B), histosys+normsys yy, normsys bb."""
    ws = {
        "channels": [
            {"name": "A", "samples": [{"name": "s", "data": [5.0], "modifiers": [
                {"name": "zz", "type": "normfactor", "data": None},
                {"name": "yy", "type": "histosys", "data": {"hi_data": [6.0], "lo_data": [4.0]}},
                {"name": "yy", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                {"name": "bb", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]},
            {"name": "B", "samples": [{"name": "s", "data": [5.0], "modifiers": [
                {"name": "aa", "type": "normfactor", "data": None}]}]},
        ],
        "observations": [{"name": "A", "data": [5.0]}, {"name": "B", "data": [5.0]}],
        "measurements": [{"name": "m", "config": {"poi": "zz", "parameters": []}}],
        "version": "1.0.0",
    }
    assert list(compile_module(read(ws).module).par_names) == ["yy", "zz", "aa", "bb"]
    check_against_pyhf(ws)


def test_staterror_sigma_and_auto_fixed_bins():
    """histfactory.md 3.7: delta=(2,1) on n=(20,5) gives sigma = sqrt(5)/25; sigma 0 is fixed."""
    ws = {
        "channels": [{"name": "c", "samples": [
            {"name": "a", "data": [20.0, 3.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "st", "type": "staterror", "data": [2.0, 0.0]}]},
            {"name": "b", "data": [5.0, 0.0], "modifiers": [
                {"name": "st", "type": "staterror", "data": [1.0, 0.0]}]}]}],
        "observations": [{"name": "c", "data": [24.0, 2.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }
    mod = read(ws).module
    gauss = [t for t in mod.terms if t.op.value == "gauss"][0]
    np.testing.assert_allclose(gauss.attr("sigma").array, [np.sqrt(5) / 25, 1.0])
    assert mod.param_set("st").fixed == (False, True)
    check_against_pyhf(ws)


@pytest.mark.parametrize("normsys,histosys", [("code1", "code0"), ("code4", "code4p"), ("code1", "code4p")])
def test_interpolation_codes_match_pyhf(normsys, histosys):
    ws = rich_workspace()
    pm = pyhf.Workspace(ws).model(modifier_settings={"normsys": {"interpcode": normsys},
                                                     "histosys": {"interpcode": histosys}})
    data = np.asarray(pyhf.Workspace(ws).data(pm))
    cm = compile_module(read(ws, normsys_code=normsys, histosys_code=histosys).module)
    rng = np.random.default_rng(3)
    for x in random_points(cm.inits(), cm.bounds(), cm.fixed(), rng, n=4):
        x = x.copy()
        x[0] = 1.7  # push jes (the histosys+normsys alpha) outside |alpha| < 1 too
        np.testing.assert_allclose(cm.nll(x), -float(pm.logpdf(x, data)[0]), rtol=1e-9)
