"""Goodness of fit: the saturated-model likelihood ratio and chi2 per channel.

q_sat = 2 (NLL(theta_hat) - NLL_sat), where the saturated model expects every datum exactly
(each bin's rate equals its count, each constraint sits on its auxiliary measurement). With
n_data data entries (bins and auxiliary data) and n_free fitted parameters, q_sat is
asymptotically chi2-distributed with n_data - n_free degrees of freedom (each constrained
parameter fits its own auxiliary datum, so ndf = bins - unconstrained free parameters).
Per channel: Pearson chi2 sum (n - lambda)^2 / lambda and the Poisson deviance
2 sum (lambda - n + n ln(n / lambda)) at the best fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import xlogy
from scipy.stats import chi2

from tweed.errors import InputError
from tweed.runtime.fit import FitResult, fit
from tweed.runtime.model import poisson_saturation


@dataclass
class GoodnessOfFit:
    q_saturated: float
    ndf: int
    p_value: float
    channels: list[dict] = field(default_factory=list)
    best: FitResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"q_saturated": self.q_saturated, "ndf": self.ndf, "p_value": self.p_value,
                "channels": self.channels}


def saturated_nll(model, data=None) -> float:
    """NLL of the saturated model: each Poisson datum at its own rate, each Gaussian at its mean."""
    d = model.data if data is None else np.asarray(data, dtype=float)
    par, didx, kind, scale = model.kernels.constraints(parameters_only=False)
    pois = np.ones(d.size, dtype=bool)
    pois[didx[kind == 0]] = False
    total = 0.0
    sig = scale[kind == 0]
    total += float(np.sum(np.log(sig) + 0.5 * np.log(2 * np.pi)))
    for _, didx, _, const in model.kernels.mvn_blocks():
        pois[didx] = False
        total += const
    logn = model._kind == 4  # lognormal: at its own median
    pois[logn] = False
    total += float(np.sum(np.log(d[logn]) + np.log(model._width[logn]) + 0.5 * np.log(2 * np.pi)))
    n = d[pois]
    return total + float(np.sum(poisson_saturation(n)))


def goodness_of_fit(model, data=None) -> GoodnessOfFit:
    if model.unbinned:
        raise InputError("the saturated-model goodness of fit is not defined for unbinned terms")
    d = model.data if data is None else np.asarray(data, dtype=float)
    best = fit(model, data, hessian=False).require_success("fit for the goodness of fit")
    q = max(2.0 * (best.nll - saturated_nll(model, d)), 0.0)
    n_free = int(np.sum(~best.fixed))
    ndf = int(d.size - n_free)
    lam = model.expected_data(best.bestfit)[: model.n_main]
    n = d[: model.n_main]
    channels = []
    for ch in model.channels or ():
        sl = slice(ch.start, ch.stop)
        l, k = lam[sl], n[sl]
        pearson = float(np.sum((k - l) ** 2 / l))
        deviance = float(2 * np.sum(l - k + xlogy(k, k) - xlogy(k, l)))
        channels.append({"channel": ch.name, "bins": ch.stop - ch.start, "chi2_pearson": pearson,
                         "deviance": deviance, "p_value_pearson": float(chi2.sf(pearson, ch.stop - ch.start))})
    return GoodnessOfFit(q_saturated=q, ndf=ndf, p_value=float(chi2.sf(q, ndf)) if ndf > 0 else float("nan"),
                         channels=channels, best=best)
