"""Fits give the same numbers whatever the BLAS thread count (a `tweed scan` worker runs one
BLAS thread, a `tweed cls` as many as the machine has): the Hessian factorisations run on
one thread (runtime/blas.py)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tweed.api import compile_module, read
from tweed.runtime import infer


def many_bins_workspace(n=160):
    rng = np.random.default_rng(3)
    bkg = rng.uniform(20.0, 80.0, n)
    sig = rng.uniform(0.5, 5.0, n)
    return {
        "channels": [{"name": "SR", "samples": [
            {"name": "signal", "data": sig.tolist(),
             "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": bkg.tolist(), "modifiers": [
                {"name": "stat", "type": "staterror", "data": (0.1 * bkg).tolist()},
                {"name": "norm", "type": "normsys", "data": {"hi": 1.05, "lo": 0.96}}]}]}],
        "observations": [{"name": "SR", "data": np.round(bkg + 0.5 * sig + rng.normal(0, 3, n)).tolist()}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def test_hypotest_does_not_depend_on_blas_threads():
    if max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1) < 2:
        pytest.skip("BLAS runs one thread on this machine: nothing to compare")
    model = compile_module(read(many_bins_workspace()))
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            h = infer.hypotest(model, 1.0)
            fit = infer.fit(model)
        results.append((h.CLs_obs, tuple(h.CLs_exp), tuple(fit.bestfit), tuple(fit.uncertainties)))
    assert results[0] == results[1]
