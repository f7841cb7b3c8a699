"""Interpolation codes in plain NumPy: the definition the numba kernels are tested against.

Factor codes return f(alpha) with f(0)=1, f(+1)=hi, f(-1)=lo (normsys). Shift codes return
the shift d(alpha) added to the nominal, with nom+d(+1)=hi, nom+d(-1)=lo (histosys).
Formulas: ../shared/docs/formats/histfactory.md section 4 (pyhf; ROOT where pyhf is wrong).
"""

from __future__ import annotations

import numpy as np

# A^-1 of pyhf's code4 polynomial system for alpha0 = 1 (histfactory.md section 4).
CODE4_AINV = np.array(
    [
        [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
        [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
        [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
        [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
        [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
        [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
    ]
)


def code4_coefficients(lo, hi):
    """The six polynomial coefficients a_1..a_6 per entry (shape (..., 6)) for ratios lo, hi."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnu, lnd = np.log(hi), np.log(lo)
    r = np.stack([hi - 1.0, lo - 1.0, lnu * hi, -lnd * lo, lnu**2 * hi, lnd**2 * lo], axis=-1)
    return r @ CODE4_AINV.T


def _code4_factor(alpha, lo, hi):
    a = code4_coefficients(lo, hi)
    powers = np.stack([alpha**i for i in range(1, 7)], axis=-1)
    poly = 1.0 + np.sum(a * powers, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        up = np.power(hi, alpha)
        down = np.power(lo, -alpha)
    return np.where(alpha >= 1.0, up, np.where(alpha <= -1.0, down, poly))


def interp_factor(code: str, alpha, lo, hi):
    alpha, lo, hi = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (alpha, lo, hi)))
    if code == "0":
        return np.where(alpha > 0, 1.0 + alpha * (hi - 1.0), 1.0 + alpha * (1.0 - lo))
    if code == "1":
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(alpha >= 0, np.power(hi, alpha), np.power(lo, -alpha))
    if code == "2":
        return 1.0 + interp_shift("2", alpha, lo, 1.0, hi)
    if code == "4":
        return _code4_factor(alpha, lo, hi)
    raise ValueError(f"interp_factor: unknown code {code!r}")


def interp_shift(code: str, alpha, lo, nom, hi):
    alpha, lo, nom, hi = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (alpha, lo, nom, hi))
    )
    if code == "0":
        return np.where(alpha > 0, alpha * (hi - nom), alpha * (nom - lo))
    if code == "2":
        # ROOT's code 2 (quadratic inside, linear outside, continuous at |alpha| = 1).
        a = 0.5 * (hi + lo) - nom
        b = 0.5 * (hi - lo)
        inside = a * alpha**2 + b * alpha
        above = (b + 2 * a) * (alpha - 1.0) + (hi - nom)
        below = (b - 2 * a) * (alpha + 1.0) + (lo - nom)
        return np.where(alpha > 1.0, above, np.where(alpha < -1.0, below, inside))
    if code == "4p":
        dplus = hi - nom
        dminus = nom - lo
        s = 0.5 * (dplus + dminus)
        a = 0.0625 * (dplus - dminus)
        a2 = alpha * alpha
        inside = alpha * s + a2 * a * (15.0 + a2 * (-10.0 + 3.0 * a2))
        return np.where(alpha > 1.0, alpha * dplus, np.where(alpha < -1.0, alpha * dminus, inside))
    if code == "4":
        # Bin-wise multiplicative code 4 on the ratios (ROOT PiecewiseInterpolation code 5).
        safe = np.where(nom != 0, nom, 1.0)
        f = _code4_factor(alpha, lo / safe, hi / safe)
        return np.where(nom != 0, nom * (f - 1.0), 0.0)
    raise ValueError(f"interp_shift: unknown code {code!r}")
