"""Plots: files are written and the drawn numbers are the computed results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.models import rich_workspace, simple_workspace
from tweed.api import compile_module, read
from tweed.cli.main import cli
from tweed.runtime import infer, plots

pytest.importorskip("mplhep")


def by_gid(fig, gid):
    for ax in fig.axes:
        for artist in ax.get_children():
            if artist.get_gid() == gid:
                return artist
    raise AssertionError(f"nothing drawn with gid {gid}")


def all_by_gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_brazil_draws_the_scan(tmp_path):
    cm = compile_module(read(simple_workspace()).module)
    lim = infer.upper_limit(cm, scan=np.linspace(0, 6, 13))
    fig = plots.brazil(lim)
    pts = sorted(lim.scan, key=lambda h: h.mu)
    np.testing.assert_array_equal(by_gid(fig, "observed").get_ydata(), [h.CLs_obs for h in pts])
    np.testing.assert_array_equal(by_gid(fig, "expected").get_ydata(), [h.CLs_exp[2] for h in pts])
    plots.save(fig, tmp_path / "brazil.png")
    assert (tmp_path / "brazil.png").stat().st_size > 1000


def test_pulls_impacts_correlation_profile(tmp_path):
    cm = compile_module(read(rich_workspace()).module)
    rank = infer.ranking(cm, workers=1)
    fig = plots.pulls(rank)
    xs = by_gid(fig, "pulls").get_xdata()
    np.testing.assert_allclose(xs, [i.pull for i in rank.impacts if i.pull is not None])
    fig2 = plots.impacts(rank, top=5)
    heights = [p.get_width() for p in all_by_gid(fig2, "post_up")]
    np.testing.assert_allclose(heights, [i.postfit_up for i in rank.impacts[:5]])
    best = infer.fit(cm)
    fig3 = plots.correlation(best)
    free = np.flatnonzero(~best.fixed)
    np.testing.assert_allclose(by_gid(fig3, "correlation").get_array(), best.correlation()[np.ix_(free, free)])
    scan = infer.profile_scan(cm, ["mu"], [np.linspace(0, 2, 9)], refine=False)
    np.testing.assert_allclose(by_gid(plots.profile(scan), "profile").get_ydata(), scan.delta)
    for name, f in (("pulls", fig), ("impacts", fig2), ("corr", fig3)):
        plots.save(f, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").exists()


def test_cli_plots(tmp_path):
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(rich_workspace()))
    run = lambda *a: CliRunner().invoke(cli, list(a), catch_exceptions=False)  # noqa: E731
    assert run("limit", str(ws), "--plot", str(tmp_path / "b.png")).exit_code == 0
    assert run("ranking", str(ws), "--plot", str(tmp_path / "r.png"), "--pulls", str(tmp_path / "p.png"),
               "-o", str(tmp_path / "r.json")).exit_code == 0
    assert json.loads((tmp_path / "r.json").read_text())["impacts"][0]["name"]
    assert run("plot", "yields", str(ws), "--postfit", "-o", str(tmp_path / "y.png")).exit_code == 0
    assert run("plot", "correlation", str(ws), "-o", str(tmp_path / "c.png")).exit_code == 0
    r = run("scan-profile", str(ws), "--param", "mu", "--range", "0:2:5", "--plot", str(tmp_path / "s.png"))
    assert r.exit_code == 0 and len(json.loads(r.stdout)["twice_nll"]) == 5
    gof = json.loads(run("gof", str(ws)).stdout)
    assert {"q_saturated", "ndf", "p_value", "channels"} <= set(gof)
    for f in ("b", "r", "p", "y", "c", "s"):
        assert (tmp_path / f"{f}.png").stat().st_size > 1000


def test_yields_are_the_model_per_sample():
    loaded = read(rich_workspace())
    cm = compile_module(loaded.module)
    x = cm.inits()
    ys = loaded.sample_yields(x)
    total = np.concatenate([sum(ys[c.name].values()) for c in cm.channels])
    np.testing.assert_allclose(total, cm.expected_data(x)[: cm.n_main], rtol=1e-12)


def test_contour_from_scan_records(tmp_path):
    recs = []
    for m1 in np.linspace(100, 500, 5):
        for m2 in np.linspace(0, 200, 5):
            cls = float(np.exp(-(500 - m1) / 100 - m2 / 300))
            recs.append({"patch": f"p{m1}_{m2}", "values": {"m1": m1, "m2": m2}, "status": "ok",
                         "CLs_obs": cls, "CLs_exp": [cls * f for f in (0.3, 0.6, 1.0, 1.5, 2.0)]})
    f = tmp_path / "scan.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = CliRunner().invoke(cli, ["plot", "contour", str(f), "--x", "m1", "--y", "m2", "-o", str(tmp_path / "c.png")])
    assert r.exit_code == 0 and (tmp_path / "c.png").exists()
    fig = plots.contour(recs, "m1", "m2")
    np.testing.assert_allclose(by_gid(fig, "points").get_offsets()[:, 0], [r["values"]["m1"] for r in recs])
