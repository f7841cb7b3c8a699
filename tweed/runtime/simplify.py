"""Full -> simplified: a HistFactory model (or any compiled model) summarised as a simplified
likelihood (docs/simplified.md, "Full to simplified").

1. Fit the background-only model (POI fixed at 0) to the observed data ("postfit") or take
   the nominal parameters ("prefit").
2. Covariance of the nuisance parameters: V = H^-1, H the exact Hessian of the NLL there.
3. Covariance of the expected yields by linear propagation, Sigma = J V J^T, J the rate
   Jacobian (exact, compiled); background = the yields at the fit.
4. Third moments of the yields by sampling theta ~ MVN(theta_hat, V) (no Poisson counts: the
   simplified likelihood's Poisson terms carry the counting fluctuations).
5. Signal = yields at POI 1 minus yields at POI 0, nuisance parameters at the fit.

compare() then reports the full and the simplified models' CLs for some signal points.
"""

from __future__ import annotations

import numpy as np

from tweed.errors import FitError
from tweed.runtime.fit import fit


def _signal(model, x0: np.ndarray) -> np.ndarray:
    i = model.poi_index
    up, dn = x0.copy(), x0.copy()
    up[i], dn[i] = 1.0, 0.0
    return model.expected_data(up, False) - model.expected_data(dn, False)


def background_fit(model, mode: str = "postfit") -> np.ndarray:
    """The parameters of the background-only model: fitted (postfit) or nominal (prefit)."""
    if mode not in ("postfit", "prefit"):
        raise ValueError(f"fit mode must be postfit or prefit, not {mode!r}")
    x0 = model.inits()
    if model.poi_index is not None:
        x0[model.poi_index] = 0.0
    if mode == "prefit":
        return x0
    res = fit(model, poi_value=0.0 if model.poi_index is not None else None, hessian=False)
    if not res.success:
        raise FitError(f"background-only fit did not converge ({res.status}): {res.message}", result=res)
    return res.bestfit


def simplify(model, mode: str = "postfit", samples: int = 10000, seed: int = 0, name: str = "simplified",
             bin_names: list[str] | None = None) -> dict:
    """The simplified-likelihood document (Tweed's schema) of a compiled model."""
    x0 = background_fit(model, mode)
    free = ~model.fixed()
    if model.poi_index is not None:
        free[model.poi_index] = False
    idx = np.flatnonzero(free)
    H = model.hessian(x0)[np.ix_(idx, idx)]
    V = np.linalg.inv(H)
    V = 0.5 * (V + V.T)
    J = model.kernels.rate_jacobian(x0)[: model.n_main][:, idx]
    b = model.expected_data(x0, False)
    cov = J @ V @ J.T
    cov = 0.5 * (cov + cov.T)
    # a bin no nuisance parameter moves has no variance: give it a negligible one
    floor = (1e-8 * np.maximum(b, 1e-3)) ** 2
    cov[np.diag_indices_from(cov)] = np.maximum(np.diag(cov), floor)
    w, U = np.linalg.eigh(V)
    L = U * np.sqrt(np.clip(w, 0.0, None))
    rng = np.random.default_rng(seed)
    ys = []
    full = x0.copy()
    for z in rng.standard_normal((samples, idx.size)):
        full[idx] = x0[idx] + L @ z
        y = model.expected_data(full, False)
        if np.all(np.isfinite(y)):
            ys.append(y)
    ys = np.array(ys)
    m3 = np.mean((ys - ys.mean(axis=0)) ** 3, axis=0)
    doc = {
        "simplified_likelihood": "1.0.0",
        "name": name,
        "description": f"simplified from the full model by tweed simplify ({mode} background fit, "
                       f"covariance by linear propagation of the Hessian, third moments from {len(ys)} "
                       f"samples of the nuisance parameters, seed {seed})",
        "bins": list(bin_names) if bin_names else [f"bin{i}" for i in range(model.n_main)],
        "observed": model.data[: model.n_main].tolist(),
        "background": b.tolist(),
        "covariance": cov.tolist(),
        "third_moment": m3.tolist(),
    }
    if model.poi_index is not None:
        doc["signal"] = _signal(model, x0).tolist()
    return doc


def signal_yields(model, mode: str = "postfit") -> np.ndarray:
    """A full model's signal yields as a simplified likelihood takes them (see simplify)."""
    return _signal(model, background_fit(model, mode))


def compare(full_models: dict, doc: dict, mu: float = 1.0, mode: str = "postfit") -> list[dict]:
    """CLs of the full model and of the simplified likelihood (third-moment and plain
    correlated) for each named full model (signal point) at POI value mu."""
    from tweed import api
    from tweed.runtime import infer

    rows = []
    for name, full in full_models.items():
        sl = dict(doc, signal=signal_yields(full, mode).tolist())
        row = {"point": name, "CLs_full": infer.hypotest(full, mu).CLs_obs}
        for model in ("third_moment_expansion", "correlated_background"):
            row[f"CLs_{model}"] = infer.hypotest(api.load(sl, model=model), mu).CLs_obs
        rows.append(row)
    return rows
