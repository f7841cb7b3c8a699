"""`tweed demo`: the whole pipeline on the example workspace shipped in tweed/data."""

from __future__ import annotations

import time
from importlib import resources

import click

from tweed.cli.output import emit_json


def demo_path() -> str:
    return str(resources.files("tweed.data").joinpath("demo_workspace.json"))


def run_demo(output: str | None = None) -> dict:
    from tweed import api
    from tweed.codegen.numba_backend import KERNELS
    from tweed.runtime import infer

    path = demo_path()
    t0 = time.perf_counter()
    model = api.load(path)
    t_build = time.perf_counter() - t0
    click.echo(f"Tweed demo: {path}")
    how = ("compiled at install" if KERNELS == "aot"
           else "numba JIT: compiled on first use, then cached on disk")
    click.echo(f"  compiled {model.n_params} parameters, {model.n_main} bins in {t_build:.2f} s "
               f"(kernels: {how})")
    fit = infer.fit(model)
    click.echo(f"\nMaximum-likelihood fit: twice_nll = {fit.twice_nll:.6f}, status {fit.status}")
    for name, x, u in zip(fit.par_names, fit.bestfit, fit.uncertainties):
        click.echo(f"  {name:24s} {x:+.4f} +- {u:.4f}")
    hyp = infer.hypotest(model, 1.0)
    click.echo(f"\nAsymptotic CLs at {model.poi_name} = 1 (q~mu):")
    click.echo(f"  CLs_obs = {hyp.CLs_obs:.6f}")
    click.echo("  CLs_exp = [" + ", ".join(f"{x:.6f}" for x in hyp.CLs_exp) + "]  (-2s .. +2s)")
    lim = infer.upper_limit(model)
    click.echo(f"\n95% CLs upper limit on {model.poi_name}:")
    click.echo(f"  observed {lim.upper_limit_obs:.4f}")
    click.echo("  expected [" + ", ".join(f"{x:.4f}" for x in lim.upper_limit_exp) + "]  (-2s .. +2s)")
    result = {"fit": fit.to_dict(), "cls": hyp.to_dict(), "limit": lim.to_dict()}
    if output:
        emit_json(result, output, indent=2)
    return result
