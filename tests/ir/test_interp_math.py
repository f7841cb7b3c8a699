"""Interpolation codes against pyhf's own interpolators, and the code2 disagreement."""

import numpy as np
import pytest

from tweed.ir import interp_math

pyhf = pytest.importorskip("pyhf")

ALPHAS = np.array([-3.1, -1.5, -1.0, -0.7, -0.2, 0.0, 0.3, 0.99, 1.0, 1.4, 2.6])


def pyhf_interp(code, lo, nom, hi, alphas):
    """pyhf's interpolator on one histogram set: returns its raw output per alpha."""
    pyhf.set_backend("numpy")
    histoset = [[[lo, nom, hi]]]  # (sys, sample, 3, bins)
    key = code[4:]
    cls = pyhf.interpolators.get(key if key == "4p" else int(key))
    interp = cls(histoset, subscribe=False)
    return np.asarray(interp(np.array([list(alphas)])))[0, 0, :, :]


def test_factor_codes_match_pyhf_normsys():
    lo, hi = 0.87, 1.21
    for code, ours in (("code1", "1"), ("code4", "4")):
        ref = pyhf_interp(code, [lo], [1.0], [hi], ALPHAS)[:, 0]
        got = interp_math.interp_factor(ours, ALPHAS, lo, hi)
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_shift_codes_match_pyhf_histosys():
    lo, nom, hi = np.array([8.0, 19.0]), np.array([10.0, 20.0]), np.array([13.0, 20.5])
    for code, ours in (("code0", "0"), ("code4p", "4p")):
        ref = pyhf_interp(code, lo, nom, hi, ALPHAS)
        got = np.array([interp_math.interp_shift(ours, a, lo, nom, hi) for a in ALPHAS])
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_code2_agrees_with_pyhf_inside_and_is_continuous_outside():
    """pyhf's code2 drops the offsets outside |alpha| <= 1 (pyhf #2729); we follow ROOT."""
    lo, nom, hi = np.array([8.0]), np.array([10.0]), np.array([13.0])
    inside = ALPHAS[np.abs(ALPHAS) <= 1]
    ref = pyhf_interp("code2", lo, nom, hi, inside)[:, 0]
    got = np.array([interp_math.interp_shift("2", a, lo, nom, hi)[0] for a in inside])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    for edge in (1.0, -1.0):
        left = interp_math.interp_shift("2", edge - 1e-9, lo, nom, hi)
        right = interp_math.interp_shift("2", edge + 1e-9, lo, nom, hi)
        assert abs(left - right)[0] < 1e-7
    # and pyhf's is discontinuous there: it misses hi - nom at alpha -> 1+
    ref_out = pyhf_interp("code2", lo, nom, hi, [1.5])[0, 0]
    ours_out = interp_math.interp_shift("2", 1.5, lo, nom, hi)[0]
    assert ours_out - ref_out == pytest.approx(hi[0] - nom[0])


@pytest.mark.parametrize("code", ["0", "1", "2", "4"])
def test_factor_codes_hit_the_templates(code):
    lo, hi = 0.8, 1.3
    f = interp_math.interp_factor(code, np.array([-1.0, 0.0, 1.0]), lo, hi)
    np.testing.assert_allclose(f, [lo, 1.0, hi], rtol=1e-12)


@pytest.mark.parametrize("code", ["0", "2", "4", "4p"])
def test_shift_codes_hit_the_templates(code):
    lo, nom, hi = np.array([7.0]), np.array([10.0]), np.array([12.5])
    for a, want in ((-1.0, lo - nom), (0.0, 0.0), (1.0, hi - nom)):
        np.testing.assert_allclose(interp_math.interp_shift(code, a, lo, nom, hi), want, atol=1e-12)


def test_code4_is_twice_continuously_differentiable_at_the_boundary():
    lo, hi = 0.75, 1.4
    h = 1e-5
    f = lambda a: interp_math.interp_factor("4", np.array(a), lo, hi)
    for edge in (-1.0, 1.0):
        d_in = (f(edge) - f(edge - np.sign(edge) * h)) / h
        d_out = (f(edge + np.sign(edge) * h) - f(edge)) / h
        assert abs(d_in - d_out) < 1e-3
