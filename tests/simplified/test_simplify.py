"""Full -> simplified conversion (tweed simplify): the moments it writes, and how well the
simplified model reproduces the full model's CLs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS
from tests.models import simple_workspace
from tweed import api
from tweed.cli.main import cli
from tweed.runtime import infer
from tweed.runtime.simplify import simplify


def _normsys_workspace():
    """Two correlated systematics and MC statistics on a background in three bins, plus a signal."""
    return {
        "channels": [{"name": "sr", "samples": [
            {"name": "signal", "data": [4.0, 6.0, 3.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [40.0, 30.0, 12.0], "modifiers": [
                {"name": "jes", "type": "histosys", "data": {"hi_data": [43.0, 31.0, 13.0], "lo_data": [37.0, 29.0, 11.0]}},
                {"name": "xsec", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}},
                {"name": "stat", "type": "staterror", "data": [2.0, 1.5, 1.0]}]}]}],
        "observations": [{"name": "sr", "data": [45.0, 33.0, 11.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def test_moments_match_sampling_and_reproduce_cls():
    full = api.load(_normsys_workspace())
    doc = simplify(full, samples=20000, seed=3)
    # the covariance from the Hessian matches the spread of the yields under theta ~ MVN(theta_hat, V)
    # (symmetric variations: the yields are close to linear in theta)
    x0 = full.fit(poi_value=0.0).bestfit
    idx = [i for i in range(full.n_params) if i != full.poi_index]
    V = np.linalg.inv(full.hessian(x0)[np.ix_(idx, idx)])
    rng = np.random.default_rng(0)
    ys = []
    for z in rng.multivariate_normal(x0[idx], V, size=20000):
        p = x0.copy()
        p[idx] = z
        ys.append(full.expected_data(p, False))
    assert np.asarray(doc["covariance"]) == pytest.approx(np.cov(np.array(ys).T), rel=0.05)
    assert np.asarray(doc["background"]) == pytest.approx(full.expected_data(x0, False), rel=1e-12)
    assert doc["signal"] == pytest.approx([4.0, 6.0, 3.0], rel=1e-12)  # mu scales the signal only
    sl = api.load(doc)
    assert sl.meta["model"] == "third_moment_expansion"
    ref = infer.hypotest(full, 1.0).CLs_obs
    # prefit: the full model's priors, summarised: close (4% here)
    pre = api.load(simplify(full, mode="prefit", samples=20000, seed=3))
    assert infer.hypotest(pre, 1.0).CLs_obs == pytest.approx(ref, rel=0.05)
    # postfit: the data narrowed the background before the simplified likelihood sees them
    # again, so it excludes more (13% lower here; docs/simplified.md)
    post = infer.hypotest(sl, 1.0).CLs_obs
    assert 0.8 * ref < post < ref


def test_cli_writes_a_valid_file(tmp_path):
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(simple_workspace()))
    out = tmp_path / "sl.json"
    r = CliRunner().invoke(cli, ["simplify", str(ws), "-o", str(out), "--samples", "2000"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["simplified_likelihood"] == "1.0.0" and len(doc["observed"]) == 2
    assert doc["bins"] == ["singlechannel[0]", "singlechannel[1]"]
    full = api.load(simple_workspace())
    # shapesys (Poisson-constrained gammas) vs Gaussian covariance: within 15%
    assert infer.hypotest(api.load(str(out)), 1.0).CLs_obs == pytest.approx(
        infer.hypotest(full, 1.0).CLs_obs, rel=0.15)
    bad = CliRunner().invoke(cli, ["simplify", str(ws), "-o", str(tmp_path / "x.json"), "--samples", "5"])
    assert bad.exit_code == 2 and not (tmp_path / "x.json").exists()


def test_1lbb_simplified_is_as_good_as_atlas_own():
    """ATLAS-SUSY-2019-08 (1Lbb): Tweed's simplified likelihood vs the full model, compared
    with the simplified likelihood its authors published (eschanet/simplify: one total
    background per bin and one correlated uncertainty). Both drop the signal systematics."""
    d = CORPUS / "atlas-pyhf" / "SUSY-2019-08_1Lbb"
    e = CORPUS / "atlas-pyhf" / "simplified-likelihoods_eschanet" / "1Lbb"
    if not (d / "BkgOnly.json").is_file() or not (e / "simplified_BkgOnly.json").is_file():
        pytest.skip("../shared corpus (1Lbb) not found")
    ps = str(d / "patchset.json.gz")
    base = api.load(str(d / "BkgOnly.json"), patchset=ps, patch_name="C1N2_Wh_hbb_500_0")
    doc = simplify(base, samples=2000)
    for point in ("C1N2_Wh_hbb_700_150", "C1N2_Wh_hbb_300_150", "C1N2_Wh_hbb_1000_0"):
        full = api.load(str(d / "BkgOnly.json"), patchset=ps, patch_name=point)
        from tweed.runtime.simplify import signal_yields

        ours = infer.hypotest(api.load(dict(doc, signal=signal_yields(full).tolist())), 1.0).CLs_obs
        atlas = infer.hypotest(api.load(str(e / "simplified_BkgOnly.json"), patchset=str(e / "simplified_patchset.json"),
                                        patch_name=point, digest_check=False), 1.0).CLs_obs
        ref = infer.hypotest(full, 1.0).CLs_obs
        assert abs(np.log(ours / ref)) <= abs(np.log(atlas / ref)) + 0.05, (point, ours, atlas, ref)
        assert abs(np.log(ours / ref)) < np.log(3.0)
