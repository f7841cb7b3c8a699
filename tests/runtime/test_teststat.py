"""The test statistics against pyhf's functions of the same name."""

import numpy as np
import pytest

from tests.models import rich_workspace
from tweed.api import compile_module, read
from tweed.runtime.teststat import test_statistic as statistic

pyhf = pytest.importorskip("pyhf")


@pytest.fixture(scope="module")
def both():
    ws = rich_workspace()
    ws["measurements"][0]["config"]["parameters"][2]["bounds"] = [[-3.0, 8.0]]
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model()
    return compile_module(read(ws).module), m, w.data(m)


@pytest.mark.parametrize("name,pyhf_name", [("q", "qmu"), ("tmu", "tmu")])
@pytest.mark.parametrize("mu", [-0.5, 0.3, 1.0, 2.0])
def test_with_negative_poi_range(both, name, pyhf_name, mu):
    cm, m, d = both
    fn = getattr(pyhf.infer.test_statistics, pyhf_name)
    ref = float(fn(mu, d, m, m.config.suggested_init(), m.config.suggested_bounds(), m.config.suggested_fixed()))
    assert statistic(name, cm, mu).value == pytest.approx(ref, abs=2e-5)


@pytest.mark.parametrize("name,pyhf_name", [("qtilde", "qmu_tilde"), ("tmu_tilde", "tmu_tilde")])
@pytest.mark.parametrize("mu", [0.3, 1.0, 2.0])
def test_tilde_with_poi_bounded_at_zero(both, name, pyhf_name, mu):
    cm, m, d = both
    bounds = m.config.suggested_bounds()
    bounds[m.config.poi_index] = (0.0, 8.0)
    fn = getattr(pyhf.infer.test_statistics, pyhf_name)
    ref = float(fn(mu, d, m, m.config.suggested_init(), bounds, m.config.suggested_fixed()))
    ours = statistic(name, cm, mu, bounds=np.array(bounds, dtype=float)).value
    assert ours == pytest.approx(ref, abs=2e-5)


def test_q0(both):
    cm, m, d = both
    bounds = m.config.suggested_bounds()
    bounds[m.config.poi_index] = (0.0, 8.0)
    ref = float(pyhf.infer.test_statistics.q0(0.0, d, m, m.config.suggested_init(), bounds,
                                              m.config.suggested_fixed()))
    assert statistic("q0", cm, 0.0, bounds=np.array(bounds, dtype=float)).value == pytest.approx(ref, abs=2e-5)


def test_unknown_statistic(both):
    with pytest.raises(ValueError, match="unknown test statistic"):
        statistic("qq", both[0], 1.0)
