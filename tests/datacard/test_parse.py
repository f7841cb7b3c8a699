"""Datacard parsing and lowering on cards written for the tests: Combine's comment rules,
every supported directive, and the likelihood it builds checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tweed import api
from tweed.errors import InputError

CARD = """# a comment before the header
imax 1  number of channels
jmax 2  number of backgrounds
kmax *
-------
bin          SR
observation  12
-------
bin          SR     SR    SR
process      sig    bkg   fake
process      0      1     2
rate         3.5    10.2  2.0
-------
lumi    lnN     1.025      1.025   -     free text is ignored here
bkgsys  lnN     -          0.85/1.20   -   # and so are comments
cr      gmN 4   -          -       0.5
bkgnorm rateParam SR bkg 1 [0,5]
"""


def write(tmp_path, text, name="card.txt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_counting_card_likelihood_by_hand(tmp_path):
    loaded = api.read(write(tmp_path, CARD))
    m = api.compile_module(loaded)
    assert m.par_names == ("r", "lumi", "bkgsys", "cr", "bkgnorm")
    assert m.poi_name == "r" and tuple(m.bounds()[0]) == (0.0, 20.0)
    assert m.inits()[3] == 5.0  # gmN starts at N + 1, as Combine
    x = np.array([0.7, 0.3, -0.4, 3.6, 1.3])
    # Combine's asymmetric lnN: exp(theta K(theta)), K smooth for |theta| < 1/2
    t = -0.4
    c = max(-1, min(1, 2 * t))
    lu, ld = math.log(1.20), math.log(0.85)
    k_asym = math.exp(t * (0.5 * (lu - ld) + 0.5 * (lu + ld) * (3 * c**5 - 10 * c**3 + 15 * c) / 8))
    lam = 3.5 * 0.7 * 1.025**0.3 + 10.2 * k_asym * 1.025**0.3 * 1.3 + 0.5 * 3.6
    n = 12.0
    nll = lam - n * math.log(lam) + math.lgamma(n + 1)
    nll += 0.5 * (0.3**2 + 0.4**2) + math.log(2 * math.pi)  # two unit Gaussians
    nll += 3.6 - 4 * math.log(3.6) + math.lgamma(5)  # Pois(4 | n)
    assert m.nll(x) == pytest.approx(nll, rel=1e-12)


def test_asymmetric_lnn_is_smooth_and_hits_its_kappas():
    from tweed.compiler.frontends.datacard.lower import ASYM_LNN
    from tweed.ir import expr

    tree = expr.parse(ASYM_LNN)
    a, b = 0.5 * (math.log(1.2) - math.log(0.85)), 0.5 * (math.log(1.2) + math.log(0.85))

    def f(t):
        return float(expr.evaluate(tree, {"x0": np.float64(t), "x1": a, "x2": b}))

    assert f(1.0) == pytest.approx(1.2) and f(-1.0) == pytest.approx(0.85) and f(0.0) == 1.0
    for t0 in (-0.5, 0.5):  # C1 at the joins
        left = (f(t0) - f(t0 - 1e-6)) / 1e-6
        right = (f(t0 + 1e-6) - f(t0)) / 1e-6
        assert left == pytest.approx(right, rel=1e-4)


def test_nuisance_edits_and_names(tmp_path):
    text = CARD + "nuisance edit rename lumi lumi_13TeV\nnuisance edit freeze bkgsys\n"
    m = api.load(write(tmp_path, text))
    assert "lumi_13TeV" in m.par_names and "lumi" not in m.par_names
    assert m.fixed()[m.par_names.index("bkgsys")]
    digits = CARD.replace("lumi    lnN", "1    lnN")
    assert "theta1" in api.load(write(tmp_path, digits, "d.txt")).par_names  # Combine prefixes digits


def test_formula_rateparam_and_param(tmp_path):
    text = CARD.replace("bkgnorm rateParam SR bkg 1 [0,5]\n", "") + (
        "a extArg 1.0 [0,4]\n"
        "b param 1.0 0.1\n"
        "scale rateParam SR bkg (@0*@1) a,b\n")
    m = api.load(write(tmp_path, text))
    assert {"a", "b"} <= set(m.par_names)
    i, j = m.par_names.index("a"), m.par_names.index("b")
    assert tuple(m.bounds()[j]) == pytest.approx((0.6, 1.4))  # param without range: mean +- 4 sigma
    x = m.inits()
    x[i], x[j] = 2.0, 1.5
    y = m.inits()
    y[i], y[j] = 3.0, 1.0  # the same product a*b
    # the Gaussian constraint on b differs; the rates do not
    assert m.expected_data(x)[0] == pytest.approx(m.expected_data(y)[0], rel=1e-14)


@pytest.mark.parametrize("edit,message,where", [
    (lambda t: t.replace("rate         3.5    10.2  2.0", "rate         3.5    10.2"), "rates: 2 columns", "line 12"),
    (lambda t: t.replace("1.025      1.025   -", "1.025      1.025"), "cannot parse 'free'", "line 14, column 38"),
    (lambda t: t + "short lnN 1.1 1.1\n", "has 2 values, but there are 3 columns", "line 18"),
    (lambda t: t.replace("0.85/1.20", "0.85/-1.2"), "must both be > 0", "line 15, column 28"),
    (lambda t: t.replace("process      0      1     2", "process      0      1     x"), "integer process ids",
     "line 11"),
    (lambda t: t.replace("jmax 2", "jmax 5"), "jmax 5, but the card has 3 processes", "line 3"),
    (lambda t: t + "x lnN -1 1 1\n", "a lnN value must be >= 0", "line 18, column 7"),
    (lambda t: t + "y lnN 1.1 1.1 1.1x\n", "cannot parse '1.1x'", "line 18, column 15"),
    (lambda t: t + "q trG 1 1 1\n", "'trG' is not supported", "column 3"),
    (lambda t: t + "nuisance edit merge a b c d\n", "nuisance edit 'merge' is not supported", "line 18"),
    (lambda t: t.replace("observation  12", "observation  12 13"), "observation has 2 values", "line 7"),
    (lambda t: t.replace("process      0      1     2", "process      1      1     2"), "no signal process", None),
])
def test_errors_name_line_and_column(tmp_path, edit, message, where):
    with pytest.raises(InputError) as err:
        api.load(write(tmp_path, edit(CARD)))
    text = err.value.one_line()
    assert message in text and "card.txt" in text
    if where:
        assert where in text


SHAPE_CARD = """imax 1
jmax 1
kmax *
shapes * * in.root $PROCESS $PROCESS_$SYSTEMATIC
bin ch
observation -1
bin ch ch
process sig bkg
process 0 1
rate -1 -1
"""


def shape_inputs(tmp_path, nom, variations: dict):
    """in.root with bkg (nom), bkg_<name>Up/Down for each variation, sig and data_obs."""
    uproot = pytest.importorskip("uproot")
    edges = np.arange(nom.size + 1, dtype=float)
    with uproot.recreate(tmp_path / "in.root") as f:
        f["bkg"] = (nom, edges)
        for name, (up, down) in variations.items():
            f[f"bkg_{name}Up"] = (up, edges)
            f[f"bkg_{name}Down"] = (down, edges)
        f["sig"] = (np.array([1.0, 2.0, 1.0]), edges)
        f["data_obs"] = (np.array([11.0, 23.0, 30.0]), edges)


def test_shape_card_with_templates(tmp_path):
    nom = np.array([10.0, 20.0, 30.0])
    up, down = np.array([12.0, 21.0, 30.0]), np.array([8.0, 19.0, 31.0])
    shape_inputs(tmp_path, nom, {"alpha": (up, down)})
    card = SHAPE_CARD + "alpha shape - 1\n"
    m = api.load(write(tmp_path, card))
    assert m.n_main == 3 and list(m.data[:3]) == [11.0, 23.0, 30.0]
    x = m.inits()
    ia = m.par_names.index("alpha")
    for a in (1.0, -1.0):
        x[ia] = a
        x[0] = 0.0
        tpl = up if a > 0 else down
        # at alpha = +-1 the fraction is the variation's and the normalisation its integral
        assert m.expected_data(x)[:3] == pytest.approx(tpl, rel=1e-12)
    with pytest.raises(InputError, match="no betaUp/Down templates for bkg in ch"):
        api.load(write(tmp_path, card.replace("alpha shape", "beta shape"), "b.txt"))


def test_shapen_morphs_log_fractions(tmp_path):
    """shapeN (datacards.md 5.4): the code-4p morph of ln f with d+- = ln(f+-/f0), exponentiated,
    renormalised, times the asymmetric-lnN normalisation; hits the templates at +-1."""
    nom = np.array([10.0, 20.0, 30.0])
    up, down = np.array([13.0, 21.0, 29.0]), np.array([8.0, 19.0, 33.0])
    shape_inputs(tmp_path, nom, {"alpha": (up, down), "beta": (up, down)})
    card = SHAPE_CARD + "alpha shapeN - 1\n"
    m = api.load(write(tmp_path, card))
    ia, ir = m.par_names.index("alpha"), m.par_names.index("r")
    assert tuple(m.bounds()[ia]) == (-7.0, 7.0)
    x = m.inits()
    x[ir] = 0.0
    f0, fu, fd = nom / nom.sum(), up / up.sum(), down / down.sum()
    for a in (1.0, -1.0, 0.4, -0.7, 2.5):
        x[ia] = a
        dp, dm = np.log(fu / f0), np.log(fd / f0)  # signed, as datacards.md writes d+-
        S = np.sign(a) if abs(a) >= 1 else (3 * a**5 - 10 * a**3 + 15 * a) / 8
        f = f0 * np.exp(0.5 * a * ((dp - dm) + (dp + dm) * S))
        f /= f.sum()
        ku, kd = up.sum() / nom.sum(), down.sum() / nom.sum()
        norm = ku**a if a >= 1 else kd**(-a) if a <= -1 else None
        got = m.expected_data(x)[:3]
        assert got / got.sum() == pytest.approx(f, rel=1e-12)
        if norm is not None:
            assert got.sum() == pytest.approx(nom.sum() * norm, rel=1e-12)
        if abs(a) == 1.0:
            assert got == pytest.approx(up if a > 0 else down, rel=1e-12)
    bad = card + "beta shape - 1\n"
    with pytest.raises(InputError, match="both shape and shapeN"):
        api.load(write(tmp_path, bad, "b.txt"))
