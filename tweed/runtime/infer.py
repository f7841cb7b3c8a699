"""Inference on any compiled model: fits, hypothesis tests, upper limits, discovery.

Reads naturally in a notebook::

    m = tweed.load("BkgOnly.json", patches=["patch.json"])
    tweed.infer.fit(m)
    tweed.infer.hypotest(m, 1.0).CLs_obs
    tweed.infer.upper_limit(m).to_dict()

Results are small dataclasses with to_dict(). The conventions are pyhf's
(../shared/docs/formats/inference.md); CLs_exp lists the band from -2 sigma to +2 sigma.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from tweed.errors import FitError
from tweed.runtime.asymptotics import AsymptoticCalculator, AsymptoticResult
from tweed.runtime.fit import FitResult
from tweed.runtime.fit import fit as _fit
from tweed.runtime.toys import ToyResult, toy_hypotest, toy_hypotest_distributed  # noqa: F401


def profile_scan(model, params, grids, data=None, refine: bool = True):
    """Profile-likelihood scan over one or two parameters (tweed.runtime.profile)."""
    from tweed.runtime.profile import profile_scan as _scan

    return _scan(model, list(params), list(grids), data=data, refine=refine)


def ranking(model, data=None, parameters=None, workers=None):
    """Impacts of the nuisance parameters on the POI (tweed.runtime.ranking)."""
    from tweed.runtime.ranking import ranking as _ranking

    return _ranking(model, data=data, parameters=parameters, workers=workers)


def goodness_of_fit(model, data=None):
    """Saturated-model goodness of fit and chi2 per channel (tweed.runtime.gof)."""
    from tweed.runtime.gof import goodness_of_fit as _gof

    return _gof(model, data=data)

__all__ = ["fit", "hypotest", "toy_hypotest", "toy_hypotest_distributed", "upper_limit", "discovery", "profile_scan", "ranking",
           "goodness_of_fit", "HypotestResult", "UpperLimitResult", "DiscoveryResult", "FitResult",
           "ToyResult"]


def fit(model, data=None, poi_value: float | None = None, **options) -> FitResult:
    """Maximum-likelihood fit (all parameters free but the fixed ones; or the POI held at
    poi_value). Uncertainties come from the exact Hessian."""
    return _fit(model, data=data, poi_value=poi_value, **options)


@dataclass
class HypotestResult:
    mu: float
    test_stat: str
    CLs_obs: float
    CLs_exp: list[float]
    CLsb_obs: float
    CLb_obs: float
    q_obs: float
    q_asimov: float
    details: AsymptoticResult = field(repr=False)

    def to_dict(self) -> dict:
        return {"CLs_obs": self.CLs_obs, "CLs_exp": list(self.CLs_exp)}

    def to_full_dict(self) -> dict:
        d = self.details
        return {
            "mu": self.mu, "test_stat": self.test_stat, "CLs_obs": self.CLs_obs,
            "CLs_exp": list(self.CLs_exp), "CLsb_obs": self.CLsb_obs, "CLb_obs": self.CLb_obs,
            "CLsb_exp": d.CLsb_exp, "CLb_exp": d.CLb_exp, "q_obs": self.q_obs,
            "q_asimov": self.q_asimov,
            "fits": {k: {"twice_nll": f.twice_nll, "status": f.status} for k, f in d.fits.items()},
        }


def _result(r: AsymptoticResult) -> HypotestResult:
    return HypotestResult(mu=r.mu, test_stat=r.test_stat, CLs_obs=r.CLs_obs, CLs_exp=r.CLs_exp,
                          CLsb_obs=r.CLsb_obs, CLb_obs=r.CLb_obs, q_obs=r.q_obs,
                          q_asimov=r.q_asimov, details=r)


def hypotest(model, mu: float = 1.0, test_stat: str = "qtilde", data=None,
             calculator: AsymptoticCalculator | None = None, apriori: bool = False,
             **options) -> HypotestResult:
    """Asymptotic CLs at POI value mu with the expected band (pyhf's hypotest).

    options: init, bounds, fixed (arrays in model order), allow_failed_fits.
    apriori: fit the background-only expectation instead of the data (model.apriori_data());
    the expected band is then Spey's "apriori" band, the default one its "aposteriori" band.
    For test_stat="q0", CLs_obs is the discovery p-value (pyhf's convention); see discovery().
    """
    if apriori:
        data = model.apriori_data()
    calc = calculator or AsymptoticCalculator(model, test_stat=test_stat, data=data, **options)
    return _result(calc.run(float(mu)))


@dataclass
class UpperLimitResult:
    upper_limit_obs: float
    upper_limit_exp: list[float]
    level: float
    test_stat: str
    scan: list[HypotestResult] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict:
        return {"upper_limit_obs": self.upper_limit_obs, "upper_limit_exp": list(self.upper_limit_exp)}

    def to_full_dict(self) -> dict:
        out = self.to_dict()
        out.update(level=self.level, test_stat=self.test_stat,
                   points=[{"mu": h.mu, "CLs_obs": h.CLs_obs, "CLs_exp": h.CLs_exp}
                           for h in sorted(self.scan, key=lambda h: h.mu)])
        return out


class _Curves:
    """Cached hypotests; curve 0 is CLs_obs, curves 1..5 the expected band (-2..+2 sigma).

    Each curve is a function whose root is that limit and whose sign is that of CLs - level.
    The band's CLs are functions of sqrt(q_mu,A) alone, so curve i is threshold_i -
    sqrt(q_mu,A): nearly linear in mu, the root finder needs a few Asimov fits per entry. The
    observed curve is Phi^-1(CLs) - Phi^-1(level), the same root on a gentler function."""

    def __init__(self, calc: AsymptoticCalculator, level: float):
        self.calc = calc
        self.level = level
        self.cache: dict[float, HypotestResult] = {}
        self.s_asimov: dict[float, float] = {}  # sqrt(q_mu,A), from either kind of call
        self.thresholds = calc.band_thresholds(level)
        self.band: dict[float, list[float]] = {}  # without thresholds (q0): expected CLs

    def at(self, mu: float) -> HypotestResult:
        mu = float(mu)
        if mu not in self.cache:
            r = self.calc.run(mu)
            self.s_asimov[mu] = float(np.sqrt(r.q_asimov))
            self.cache[mu] = _result(r)
        return self.cache[mu]

    def f(self, mu: float, i: int) -> float:
        mu = float(mu)
        if i == 0:
            return _probit(self.at(mu).CLs_obs) - _probit(self.level)
        if self.thresholds is None:
            if mu not in self.cache and mu not in self.band:
                self.band[mu] = self.calc.expected(mu)
            return (self.cache[mu].CLs_exp if mu in self.cache else self.band[mu])[i - 1] - self.level
        if mu not in self.s_asimov:
            self.s_asimov[mu] = self.calc.sqrt_q_asimov(mu)
        return self.thresholds[i - 1] - self.s_asimov[mu]

    def bracket(self, i: int) -> tuple[float, float]:
        mus = list(self.cache) + ([m for m in {**self.s_asimov, **self.band} if m not in self.cache] if i else [])
        above = [mu for mu in mus if self.f(mu, i) >= 0]
        below = [mu for mu in mus if self.f(mu, i) < 0]
        lo = max(above)
        hi = min((mu for mu in below if mu > lo), default=max(below))
        return lo, hi


def _probit(p: float) -> float:
    """Phi^-1(p), finite for every CLs (0 and 1 are clipped)."""
    return NormalDist().inv_cdf(min(max(p, 1e-300), 1.0 - 1e-16))


START_MAX = 10.0


def upper_limit(model, level: float = 0.05, test_stat: str = "qtilde", data=None,
                bracket: tuple[float, float] | None = None, scan=None, rtol: float = 1e-6,
                apriori: bool = False, **options) -> UpperLimitResult:
    """Observed and expected (-2..+2 sigma) upper limits on the POI at CLs = level.

    Default: root finding from the POI's bounds, the bracket widened until it holds all six
    curves (as pyhf's toms748_scan): the expected limits on sqrt(q_mu,A), the observed one
    from the band outwards, each by the secant method with TOMS 748 as the fallback
    (docs/inference.md). With scan (a sequence of POI values): hypotests on that grid and
    linear interpolation (pyhf's linear_grid_scan).
    """
    if apriori:
        data = model.apriori_data()
    calc = AsymptoticCalculator(model, test_stat=test_stat, data=data, **options)
    curves = _Curves(calc, level)
    if scan is not None:
        grid = np.asarray(sorted(float(x) for x in scan))
        results = [curves.at(mu) for mu in grid]
        obs = np.array([r.CLs_obs for r in results])
        exp = np.array([r.CLs_exp for r in results])
        lim_obs = float(np.interp(level, obs[::-1], grid[::-1]))
        lim_exp = [float(np.interp(level, exp[::-1, i], grid[::-1])) for i in range(5)]
        return UpperLimitResult(lim_obs, lim_exp, level, test_stat, results)
    if bracket is not None:
        lo, hi = (float(x) for x in bracket)
    else:
        lo, hi = (float(x) for x in calc.bounds()[model.poi_index])
        # a POI bounded at, say, 1e30 is no bracket: start at 10 and widen as needed; an upper
        # limit on a signal strength is not negative (a POI bounded below 0 brackets from 0)
        hi = min(hi, START_MAX)
        lo = max(lo, 0.0)
    for _ in range(60):
        if min(curves.f(lo, i) for i in range(6)) >= 0 or lo <= 0:
            break
        lo = lo / 2
    for _ in range(60):
        if max(curves.f(hi, i) for i in range(6)) < 0:
            break
        hi = hi * 2
    else:
        raise ValueError(f"CLs stays above {level} up to POI = {hi}: no upper limit in range")
    limits = {}
    for i in (1, 2, 3, 4, 5, 0):
        if i == 0:
            _near_the_band(curves, [limits[k] for k in (3, 4, 5, 2, 1)])
        a, b = curves.bracket(i)
        limits[i] = a if curves.f(a, i) == 0 else _root(curves, i, a, b, rtol)
    return UpperLimitResult(limits[0], [limits[k] for k in range(1, 6)], level, test_stat,
                            list(curves.cache.values()))


def _near_the_band(curves: _Curves, band: list[float]) -> None:
    """Hypotests at the expected limits (median first, then outwards on the side the observed
    CLs points to) until the observed limit is bracketed between two of them, or the band
    ends: the observed root is then searched in a narrow bracket."""
    median, up, down = band[0], band[1:3], band[3:]
    if curves.f(median, 0) == 0:
        return
    for mu in (up if curves.f(median, 0) > 0 else down):
        if (curves.f(mu, 0) > 0) != (curves.f(median, 0) > 0):
            return


class _LeftTheBracket(Exception):
    pass


def _root(curves: _Curves, i: int, a: float, b: float, rtol: float) -> float:
    """The root of curve i in its bracket [a, b]: the secant method from the bracket ends
    (the curves are nearly linear there: 3-5 hypotests), TOMS 748 if the secant would step
    out of the bracket (no hypotest is run there) or does not converge."""
    from scipy.optimize import root_scalar, toms748  # imported here: only limits need them

    lo, hi = min(a, b), max(a, b)

    def inside(mu: float, k: int) -> float:
        if not lo <= mu <= hi:
            raise _LeftTheBracket
        return curves.f(mu, k)

    try:
        r = root_scalar(inside, args=(i,), method="secant", x0=a, x1=b, xtol=2e-12, rtol=rtol, maxiter=12)
        if r.converged and lo <= r.root <= hi:
            return float(r.root)
    except (_LeftTheBracket, ValueError, ArithmeticError, FitError):
        pass
    return float(toms748(curves.f, a, b, args=(i,), k=2, xtol=2e-12, rtol=rtol))


@dataclass
class DiscoveryResult:
    q0: float
    p0: float
    significance: float
    p0_exp: float
    significance_exp: float

    def to_dict(self) -> dict:
        return {"q0": self.q0, "p0": self.p0, "significance": self.significance,
                "p0_exp": self.p0_exp, "significance_exp": self.significance_exp}


def discovery(model, data=None, **options) -> DiscoveryResult:
    """Discovery test of mu = 0 with q0: observed and expected (Asimov mu' = 1) p-values."""
    r = AsymptoticCalculator(model, test_stat="q0", data=data, **options).run(0.0)
    p0 = r.CLsb_obs
    p0_exp = r.CLsb_exp[2]
    return DiscoveryResult(q0=r.q_obs, p0=p0, significance=_z(p0), p0_exp=p0_exp,
                           significance_exp=_z(p0_exp))


def _z(p: float) -> float:
    """Significance of a one-sided p-value: Z = Phi^-1(1 - p); sqrt(q0) when p comes from q0."""
    if p >= 0.5:
        return 0.0 if p >= 1 else -NormalDist().inv_cdf(p)
    return -NormalDist().inv_cdf(p)


@dataclass
class Chi2Result:
    chi2: float
    mu: float
    mu_hat: float
    twice_nll_min: float
    twice_nll_mu: float

    def to_dict(self) -> dict:
        return {"chi2": self.chi2, "poi_value": self.mu, "poi_hat": self.mu_hat,
                "twice_nll_min": self.twice_nll_min, "twice_nll_poi": self.twice_nll_mu}


def chi2(model, mu: float = 1.0, data=None, mu_denominator: float | None = None,
         allow_negative_signal: bool = False, **options) -> Chi2Result:
    """Spey's chi2: 2 (NLL(mu) - NLL(mu_den)) with nuisance parameters profiled; mu_den is the
    best fit (POI >= 0 unless allow_negative_signal) or the given mu_denominator."""
    if model.poi_index is None:
        raise ValueError("the model has no POI")
    bounds = options.pop("bounds", None)
    bounds = model.bounds() if bounds is None else np.array(bounds, dtype=float)
    init = options.pop("init", None)
    init = model.inits() if init is None else np.array(init, dtype=float)
    if not allow_negative_signal:
        bounds[model.poi_index, 0] = max(bounds[model.poi_index, 0], 0.0)
    init[model.poi_index] = np.clip(init[model.poi_index], *bounds[model.poi_index])
    kw = dict(bounds=bounds, init=init, hessian=False, **options)
    num = _fit(model, data, poi_value=mu, **kw)
    den = _fit(model, data, poi_value=mu_denominator, **kw)
    for name, r in (("POI-fixed fit", num), ("denominator fit", den)):
        r.require_success(name)
    return Chi2Result(chi2=num.twice_nll - den.twice_nll, mu=float(mu),
                      mu_hat=float(den.bestfit[model.poi_index]), twice_nll_min=den.twice_nll,
                      twice_nll_mu=num.twice_nll)


def sigma_mu(model, mu: float = 1.0, data=None, **options) -> float:
    """Hessian-based POI uncertainty at the conditional fit at mu (Spey's sigma_mu):
    sqrt([H^-1]_mu,mu) with H the Hessian of the NLL over the free parameters and the POI."""
    if model.poi_index is None:
        raise ValueError("the model has no POI")
    cond = _fit(model, data, poi_value=mu, hessian=False, **options).require_success("POI-fixed fit")
    free = ~(model.fixed() if options.get("fixed") is None else np.asarray(options["fixed"], bool))
    free[model.poi_index] = True
    idx = np.flatnonzero(free)
    H = model.hessian(cond.bestfit, data)[np.ix_(idx, idx)]
    k = int(np.flatnonzero(idx == model.poi_index)[0])
    return float(np.sqrt(np.linalg.inv(H)[k, k]))


@dataclass
class ProfileLimitResult:
    limit: float
    poi_hat: float
    level: float
    threshold: float

    def to_dict(self) -> dict:
        return {"upper_limit": self.limit, "poi_hat": self.poi_hat, "cl": self.level,
                "delta_twice_nll": self.threshold}


def profile_limit(model, cl: float = 0.95, data=None, **options) -> ProfileLimitResult:
    """Upper end of the profile-likelihood interval: the POI above the best fit where twice the
    NLL rises by the chi2(1 dof) quantile of cl (3.84 for 95%) (Combine's ProfileLikelihood)."""
    from scipy.optimize import brentq
    from scipy.stats import chi2 as chi2_dist

    if model.poi_index is None:
        raise ValueError("the model has no POI")
    thr = float(chi2_dist.ppf(cl, 1))
    free = _fit(model, data, hessian=False, **options).require_success("free fit")
    i = model.poi_index
    mu_hat = float(free.bestfit[i])

    def d(mu):
        r = _fit(model, data, poi_value=mu, hessian=False, **options).require_success(f"fit at {mu}")
        return r.twice_nll - free.twice_nll - thr

    lo, hi = mu_hat, max(mu_hat, 0.0) + max(1.0, abs(mu_hat))
    for _ in range(60):
        if d(hi) > 0:
            break
        lo, hi = hi, hi * 2
    else:
        raise ValueError("the profile likelihood does not cross the threshold: no upper limit")
    return ProfileLimitResult(float(brentq(d, lo, hi, xtol=1e-10, rtol=1e-10)), mu_hat, cl, thr)
