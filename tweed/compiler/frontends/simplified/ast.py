"""The simplified-likelihood AST: a checked view of a simplified-likelihood document.

parse() turns a schema-valid document into SimplifiedSpec and checks what the schema cannot:
equal lengths, finite numbers, non-negative backgrounds, symmetric positive-definite
covariances and correlations, third moments a Gaussian-plus-quadratic can produce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tweed.errors import InputError

MODELS = ("uncorrelated_background", "correlated_background", "third_moment_expansion",
          "effective_sigma", "poisson", "normal", "multivariate_normal")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    init: float
    lo: float
    hi: float
    fixed: bool = False


@dataclass(frozen=True)
class SignalUncertainty:
    type: str  # normalization | shape
    name: str
    up: np.ndarray
    down: np.ndarray


@dataclass
class SimplifiedSpec:
    source: str
    observed: np.ndarray
    background: np.ndarray
    model: str
    covariance: np.ndarray | None = None
    correlation: np.ndarray | None = None
    uncertainties: np.ndarray | None = None
    envelopes: np.ndarray | None = None  # (N, 2): up, down
    third_moment: np.ndarray | None = None
    signal: np.ndarray | None = None
    signal_expression: str | None = None
    signal_callable: bool = False  # yields from a Python callable (api.simplified), read as parameters
    coefficients: dict = field(default_factory=dict)
    signal_parameters: list[ParamSpec] = field(default_factory=list)
    signal_uncertainties: list[SignalUncertainty] = field(default_factory=list)
    poi: ParamSpec | None = None
    bins: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def nbins(self) -> int:
        return self.observed.size


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str):
        raise InputError(msg, source=self.source, location=where)

    def vector(self, doc, key, n=None, nonneg=False) -> np.ndarray:
        arr = np.asarray(doc[key], dtype=float)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            self.fail(f"/{key}/{bad[0]}", f"{key} value is {arr[bad[0]]}, expected a finite number")
        if n is not None and arr.size != n:
            self.fail(f"/{key}", f"{key} has {arr.size} entries, but there are {n} bins (from 'observed')")
        if nonneg:
            neg = np.flatnonzero(arr < 0)
            if neg.size:
                self.fail(f"/{key}/{neg[0]}", f"{key} value is negative ({arr[neg[0]]}), expected >= 0")
        return arr

    def matrix(self, doc, key, n, positive=True) -> np.ndarray:
        rows = doc[key]
        if len(rows) != n or any(len(r) != n for r in rows):
            self.fail(f"/{key}", f"{key} must be {n}x{n} (one row and column per bin)")
        M = np.asarray(rows, dtype=float)
        bad = np.argwhere(~np.isfinite(M))
        if bad.size:
            i, j = bad[0]
            self.fail(f"/{key}/{i}/{j}", f"{key} value is {M[i, j]}, expected a finite number")
        if not np.allclose(M, M.T, rtol=1e-9, atol=1e-12 * max(1.0, float(np.abs(M).max()))):
            i, j = np.argwhere(~np.isclose(M, M.T))[0]
            self.fail(f"/{key}/{i}/{j}", f"{key} is not symmetric ({M[i, j]} vs {M[j, i]})")
        if positive:
            try:
                np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                w = np.linalg.eigvalsh(M)
                self.fail(f"/{key}", f"{key} is not positive definite (smallest eigenvalue {w.min():.4g})")
        return M


def _param(ck, doc, where, name, init=1.0, lo=-math.inf, hi=math.inf) -> ParamSpec:
    b = doc.get("bounds", [lo, hi])
    lo = -math.inf if b[0] is None else float(b[0])
    hi = math.inf if b[1] is None else float(b[1])
    if lo > hi:
        ck.fail(f"{where}/bounds", f"lower bound {lo} is above upper bound {hi}")
    x = float(doc.get("init", init))
    if not lo <= x <= hi:
        ck.fail(f"{where}/init", f"init {x} of {doc.get('name', name)!r} is outside its bounds [{lo}, {hi}]")
    return ParamSpec(doc.get("name", name), x, lo, hi, bool(doc.get("fixed", False)))


def default_model(doc: dict) -> str:
    if "third_moment" in doc:
        return "third_moment_expansion"
    if "uncertainty_envelopes" in doc:
        return "effective_sigma"
    if "covariance" in doc:
        return "correlated_background"
    if "uncertainties" in doc:
        return "uncorrelated_background"
    return "poisson"


NEEDS = {
    "uncorrelated_background": ("uncertainties",),
    "correlated_background": ("covariance",),
    "third_moment_expansion": ("covariance", "third_moment"),
    "effective_sigma": ("correlation", "uncertainty_envelopes"),
    "poisson": (),
    "normal": ("uncertainties",),
    "multivariate_normal": ("covariance",),
}


def parse(doc: dict, source: str, model: str | None = None) -> SimplifiedSpec:
    ck = _Checker(source)
    obs = ck.vector(doc, "observed", nonneg=True)
    n = obs.size
    model = model or doc.get("model") or default_model(doc)
    if model not in MODELS:
        raise InputError(f"unknown simplified-likelihood model {model!r}; expected one of {', '.join(MODELS)}",
                         source=source)
    spec = SimplifiedSpec(source=source, observed=obs, background=ck.vector(doc, "background", n, nonneg=True),
                          model=model, bins=list(doc.get("bins", [])))
    if spec.bins and len(spec.bins) != n:
        ck.fail("/bins", f"bins has {len(spec.bins)} names, but there are {n} bins")
    if model == "uncorrelated_background" and "uncertainties" not in doc and "covariance" in doc:
        cov = ck.matrix(doc, "covariance", n)
        spec.uncertainties = np.sqrt(np.diag(cov))
    for key in NEEDS[model]:
        if key not in doc and not (key == "uncertainties" and spec.uncertainties is not None):
            ck.fail("/", f"model {model} needs {key!r}")
    if "covariance" in doc:
        spec.covariance = ck.matrix(doc, "covariance", n)
    if "correlation" in doc:
        spec.correlation = ck.matrix(doc, "correlation", n)
        if not np.allclose(np.diag(spec.correlation), 1.0):
            ck.fail("/correlation", "the diagonal of a correlation matrix must be 1")
    if "uncertainties" in doc:
        spec.uncertainties = ck.vector(doc, "uncertainties", n, nonneg=True)
    if "uncertainty_envelopes" in doc:
        env = np.abs(np.asarray(doc["uncertainty_envelopes"], dtype=float))
        if env.shape != (n, 2):
            ck.fail("/uncertainty_envelopes", f"uncertainty_envelopes must hold {n} pairs (up, down)")
        if not np.all(np.isfinite(env)):
            ck.fail("/uncertainty_envelopes", "uncertainty_envelopes must be finite")
        spec.envelopes = env
    if "third_moment" in doc:
        spec.third_moment = ck.vector(doc, "third_moment", n)
    if model in ("normal", "uncorrelated_background") and spec.uncertainties is not None:
        zero = np.flatnonzero(spec.uncertainties <= 0)
        if model == "normal" and zero.size:
            ck.fail(f"/uncertainties/{zero[0]}", "a normal data model needs uncertainties > 0")
    sig = doc.get("signal")
    if isinstance(sig, list):
        spec.signal = ck.vector(doc, "signal", n)
    elif isinstance(sig, dict):
        from tweed.ir import expr

        tree = expr.parse(sig["expression"])
        coeffs = {}
        for name, vals in sig.get("coefficients", {}).items():
            arr = np.asarray(vals, dtype=float)
            if arr.size != n or not np.all(np.isfinite(arr)):
                ck.fail(f"/signal/coefficients/{name}", f"coefficient {name!r} must be {n} finite numbers")
            coeffs[name] = arr
        pars = sig.get("parameters", {})
        for v in expr.variables(tree):
            if v not in coeffs and v not in pars:
                pars = dict(pars, **{v: {}})  # a free parameter with defaults
        spec.signal_expression = sig["expression"]
        spec.coefficients = coeffs
        spec.signal_parameters = [_param(ck, p, f"/signal/parameters/{k}", k) for k, p in pars.items()
                                  if k in expr.variables(tree)]
    for k, mod in enumerate(doc.get("signal_uncertainties", [])):
        where = f"/signal_uncertainties/{k}"
        vals = mod["uncertainties"]
        if len(vals) != n:
            ck.fail(f"{where}/uncertainties", f"has {len(vals)} entries, but there are {n} bins")
        up = np.array([v[0] if isinstance(v, list) else v for v in vals], dtype=float)
        down = np.array([v[1] if isinstance(v, list) else v for v in vals], dtype=float)
        if not (np.all(np.isfinite(up)) and np.all(np.isfinite(down))):
            ck.fail(f"{where}/uncertainties", "signal uncertainties must be finite")
        if spec.signal is None:
            ck.fail(where, "signal uncertainties need numeric signal yields")
        spec.signal_uncertainties.append(SignalUncertainty(mod["type"], mod.get("name", f"mod{k}"), up, down))
    if "poi" in doc:
        spec.poi = _param(ck, doc["poi"], "/poi", "mu")
    spec.meta = {k: v for k, v in doc.items() if isinstance(v, (str, int, float)) and k not in ("model",)}
    return spec
