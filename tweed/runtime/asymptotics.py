"""Asymptotic CLs with pyhf's conventions (../shared/docs/formats/inference.md §3-4).

The Asimov data are the expected data at the POI-fixed fit (mu' = 0, or 1 for q0) to the
observed data, nuisance parameters profiled. The test statistic is moved to "-mu_hat/sigma"
space, where the s+b and b-only distributions are unit normals shifted by -sqrt(q_A) and 0.
The free fits and the Asimov data do not depend on the tested mu, so they are computed once
per calculator and reused across a limit scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tweed.errors import FitError
from tweed.runtime.fit import FitResult, fit
from tweed.runtime.teststat import test_statistic

# expected band: test-statistic values n = +2..-2 give CLs from -2 sigma to +2 sigma
BAND = (2.0, 1.0, 0.0, -1.0, -2.0)
# Combine's band (AsymptoticLimits): the 2.5%, 16%, 50%, 84%, 97.5% quantiles, n = -Phi^-1(q)
COMBINE_BAND = (1.959963984540054, 0.994457883209753, 0.0, -0.994457883209753, -1.959963984540054)


def pvalue(t: float, shift: float) -> float:
    """P(T >= t) for a unit normal shifted by `shift` (tail computed without cancellation)."""
    return 0.5 * math.erfc((t - shift) / math.sqrt(2.0))


@dataclass
class AsymptoticResult:
    mu: float
    test_stat: str
    teststat: float  # in -mu_hat/sigma space
    q_obs: float
    q_asimov: float
    CLsb_obs: float
    CLb_obs: float
    CLs_obs: float
    CLsb_exp: list[float]
    CLb_exp: list[float]
    CLs_exp: list[float]
    fits: dict[str, FitResult]


class AsymptoticCalculator:
    def __init__(self, model, test_stat: str = "qtilde", data=None, init=None, bounds=None,
                 fixed=None, allow_failed_fits: bool = False):
        if model.poi_index is None:
            raise ValueError("the model has no POI: nothing to test")
        if (model.fixed() if fixed is None else np.asarray(fixed))[model.poi_index]:
            raise ValueError(f"the POI {model.poi_name!r} is fixed; a hypothesis test needs it free")
        self.model = model
        self.test_stat = test_stat
        self.data = model.data if data is None else np.asarray(data, dtype=float)
        # Spey's conventions (simplified likelihoods): the tilde statistics fit mu >= 0 whatever
        # the model's range, and the Asimov data keep the constraint centres at their nominal
        # values instead of moving them to the conditional fit (docs/simplified.md)
        self.spey = model.meta.get("conventions") == "spey"
        self.band = COMBINE_BAND if model.meta.get("conventions") == "combine" else BAND
        if self.spey and test_stat in ("qtilde", "tmu_tilde"):
            bounds = (model.bounds() if bounds is None else np.array(bounds, dtype=float)).copy()
            bounds[model.poi_index, 0] = max(bounds[model.poi_index, 0], 0.0)
            if init is not None or model.inits()[model.poi_index] < 0:
                init = (model.inits() if init is None else np.array(init, dtype=float)).copy()
                init[model.poi_index] = max(init[model.poi_index], 0.0)
        self.kw = dict(init=init, bounds=bounds, fixed=fixed)
        self.allow_failed = allow_failed_fits
        self._free_obs: FitResult | None = None
        self._asimov: tuple[np.ndarray, FitResult, FitResult] | None = None

    def bounds(self) -> np.ndarray:
        """The parameter ranges the fits use."""
        b = self.kw["bounds"]
        return self.model.bounds() if b is None else np.array(b, dtype=float)

    def _check(self, name: str, res: FitResult) -> FitResult:
        if not res.success and not self.allow_failed:
            raise FitError(f"{name} did not converge ({res.status}): {res.message}", result=res)
        return res

    @property
    def asimov_mu(self) -> float:
        return 1.0 if self.test_stat == "q0" else 0.0

    def free_fit_observed(self) -> FitResult:
        if self._free_obs is None:
            self._free_obs = self._check(
                "free fit to the data", fit(self.model, self.data, hessian=False, **self.kw))
        return self._free_obs

    def asimov(self) -> tuple[np.ndarray, FitResult, FitResult]:
        """(Asimov data, the fit that made them, the free fit to them)."""
        if self._asimov is None:
            gen = self._check(
                f"POI-fixed fit (mu={self.asimov_mu}) generating the Asimov data",
                fit(self.model, self.data, poi_value=self.asimov_mu, hessian=False, **self.kw))
            data = self.model.expected_data(gen.bestfit)
            if self.spey:
                data[self.model.n_main:] = self.data[self.model.n_main:]
            free = self._check("free fit to the Asimov data",
                               fit(self.model, data, hessian=False, **self.kw))
            self._asimov = (data, gen, free)
        return self._asimov

    def _asimov_statistic(self, mu: float):
        adata, gen, afree = self.asimov()
        asi = test_statistic(self.test_stat, self.model, mu, adata, free=afree, warn=False, **self.kw)
        self._check(f"POI-fixed fit (mu={mu}) to the Asimov data", asi.fixed)
        return asi, gen, afree

    def _band(self, s_a: float) -> tuple[list[float], list[float], list[float]]:
        """(CLs+b, CLb, CLs) of the expected band: functions of the Asimov statistic alone."""
        sb_exp = [pvalue(n, -s_a) for n in self.band]
        b_exp = [pvalue(n, 0.0) for n in self.band]
        if self.test_stat == "q0":  # pyhf's convention: the "CLs" of q0 is the p-value p0 = CLs+b
            return sb_exp, b_exp, sb_exp
        return sb_exp, b_exp, [a / b for a, b in zip(sb_exp, b_exp)]

    def sqrt_q_asimov(self, mu: float) -> float:
        """sqrt(q_mu,A): the expected band at mu is a function of it alone (_band)."""
        asi, _, _ = self._asimov_statistic(mu)
        return float(np.sqrt(asi.value))

    def expected(self, mu: float) -> list[float]:
        """The expected CLs band at mu, from the Asimov data only (one POI-fixed fit, not the
        two of run(); equal to run(mu).CLs_exp)."""
        return self._band(self.sqrt_q_asimov(mu))[2]

    def band_thresholds(self, level: float) -> list[float] | None:
        """Per band entry, the sqrt(q_mu,A) at which its CLs equals `level`: CLs_exp(n) =
        erfc((n + s)/sqrt 2) / erfc(n/sqrt 2) solved for s. None for q0 (no CLs ratio)."""
        if self.test_stat == "q0":
            return None
        from scipy.special import erfcinv

        return [math.sqrt(2.0) * float(erfcinv(level * math.erfc(n / math.sqrt(2.0)))) - n
                for n in self.band]

    def run(self, mu: float) -> AsymptoticResult:
        obs = test_statistic(self.test_stat, self.model, mu, self.data, free=self.free_fit_observed(),
                             warn=False, **self.kw)
        self._check(f"POI-fixed fit (mu={mu}) to the data", obs.fixed)
        asi, gen, afree = self._asimov_statistic(mu)
        s, s_a = np.sqrt(obs.value), np.sqrt(asi.value)
        if self.test_stat in ("q", "q0") or s <= s_a or s_a == 0:
            t = s - s_a
        else:
            t = (obs.value - asi.value) / (2.0 * s_a)
        clsb, clb = pvalue(t, -s_a), pvalue(t, 0.0)
        sb_exp, b_exp, cls_exp = self._band(float(s_a))
        cls_obs = clsb if self.test_stat == "q0" else clsb / clb
        return AsymptoticResult(
            mu=mu, test_stat=self.test_stat, teststat=float(t), q_obs=obs.value, q_asimov=asi.value,
            CLsb_obs=clsb, CLb_obs=clb, CLs_obs=cls_obs,
            CLsb_exp=sb_exp, CLb_exp=b_exp, CLs_exp=cls_exp,
            fits={"free_data": obs.free, "fixed_data": obs.fixed, "asimov_generation": gen,
                  "free_asimov": afree, "fixed_asimov": asi.fixed},
        )
