"""Differential fuzzing: generated workspaces (every modifier, shared parameters, patches,
several channels, extreme but valid values) against pyhf 0.7.6 and the IR interpreter.

Profiles: the CI profile runs in the suite; the nightly profile (10,000 examples) is one command:

    TWEED_FUZZ=nightly python -m pytest tests/test_fuzz.py -q

and its last result is recorded in docs/fuzzing.md.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.strategies import random_points, workspaces
from tweed.api import compile_module, read
from tweed.ir.interpret import nll as interpret_nll

pyhf = pytest.importorskip("pyhf")

NIGHTLY = os.environ.get("TWEED_FUZZ") == "nightly"
EXAMPLES = 10_000 if NIGHTLY else 40
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None if NIGHTLY else settings.default.database,
                    suppress_health_check=list(HealthCheck))


def compare(ws, patches=()):
    pyhf.set_backend("numpy")
    w = pyhf.Workspace(ws)
    m = w.model(patches=list(patches))
    data = np.asarray(w.data(m))
    loaded = read(ws, patches=list(patches))
    cm = compile_module(loaded.module)
    assert list(cm.par_names) == list(m.config.par_names)
    np.testing.assert_array_equal(cm.data, data)
    rng = np.random.default_rng(0)
    for x in [cm.inits()] + random_points(cm.inits(), cm.bounds(), cm.fixed(), rng, n=2):
        ref = -float(m.logpdf(x, data)[0])
        ours, interp = cm.nll(x), interpret_nll(loaded.module, x)
        if np.any(cm.expected_data(x)[: cm.n_main] < 0):
            assert np.isnan(ours) and np.isnan(interp)  # negative rates: NaN by definition
            continue
        if not np.isfinite(ref):
            assert not np.isfinite(ours)
            continue
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(interp, ref, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(workspaces(with_signal_patch=True))
def test_fuzz_regular(case):
    ws, patch = case
    compare(ws, [patch])


@SETTINGS
@given(workspaces(with_signal_patch=True, extreme=True))
def test_fuzz_extreme(case):
    ws, patch = case
    compare(ws)
    compare(ws, [patch])
