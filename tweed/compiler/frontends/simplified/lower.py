"""Lower a simplified-likelihood AST to IR with Spey's semantics (docs/formats/simplified.md).

Parameter order, as Spey's: [mu, signal parameters, theta (one per bin), eta (signal
uncertainties)]. Data: the observed counts, then one zero per constrained nuisance (the
constraint centres; simplified likelihoods have no auxiliary measurements).

    uncorrelated_background  rate = mu s f + b + sigma theta,       theta ~ N(0, 1) per bin
    correlated_background    rate = mu s f + b + sigma theta,       theta ~ MVN(0, rho)
    third_moment_expansion   rate = mu s f + a + b' theta + c theta^2, theta ~ MVN(0, rho')
    effective_sigma          rate = mu s f + b + theta sigma_eff(theta), theta ~ MVN(0, rho)
    poisson                  rate = mu s + b (+ sigma theta with theta unconstrained)
    normal                   n ~ N(mu s + b, sigma) per bin
    multivariate_normal      n ~ MVN(mu s + b, Sigma)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from tweed.compiler.frontends.simplified.ast import SimplifiedSpec
from tweed.errors import InputError
from tweed.ir import expr
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.build import const as _const
from tweed.ir.build import param as _param
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

# nuisance parameters are unbounded in Spey; a wide finite range keeps the IR printable
THETA_RANGE = 1.0e4
POI_HI = 10.0  # Spey's default upper bound on mu
EFFECTIVE_SIGMA_FLOOR = 1e-10  # Spey's floor on sigma_eff^2
C_REGULARISATION = 1e-5  # Spey's shift of the third-moment c coefficients inside rho




def third_moment_coefficients(m1, m2, m3, source: str = "<simplified>"):
    """(a, b, c, rho) of the quadratic background model a + b theta + c theta^2 whose mean,
    covariance and diagonal third moments are m1, m2, m3 (arXiv:1809.05548 §2), with Spey's
    conventions: c = 0 (and a warning) where 8 m2_ii^3 < m3_i^2, c shifted by 1e-5 in rho."""
    m1, m2, m3 = (np.asarray(x, dtype=float) for x in (m1, m2, m3))
    d = np.diag(m2)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = -np.sign(m3) * np.sqrt(2.0 * d) * np.cos(
            4.0 * np.pi / 3.0 + np.arctan(np.sqrt(8.0 * d**3 / m3**2 - 1.0)) / 3.0)
    bad = np.flatnonzero(~np.isfinite(c))
    if bad.size:
        warnings.warn(
            f"{source}: third moments of bins {bad.tolist()} are too large for the quadratic "
            "expansion (8 var^3 < m3^2): those bins use the plain simplified likelihood", stacklevel=3)
        c = np.where(np.isfinite(c), c, 0.0)
    b = np.sqrt(d - 2.0 * c**2)
    a = m1 - c
    cr = np.where(c >= 0, c + C_REGULARISATION, c - C_REGULARISATION)
    bb = np.outer(b, b)
    cc = np.outer(cr, cr)
    rho = (np.sqrt(np.abs(bb**2 + 8.0 * cc * m2)) - bb) / (4.0 * cc)
    return a, b, c, rho


def _mvn_attrs(cov: np.ndarray, what: str, source: str) -> dict:
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0 or not np.isfinite(logdet):
        raise InputError(f"the {what} is not positive definite", source=source)
    return {"precision": Const(np.linalg.inv(cov).ravel()), "logdet": float(logdet)}


def _signal_factor(spec: SimplifiedSpec, params: list[ParamSet]) -> Node | None:
    """exp(sum of Spey's signal-uncertainty exponents), or None without modifiers."""
    s = spec.signal
    factors = []
    for mod in spec.signal_uncertainties:
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(s != 0, mod.up / s, 0.0)
            down = np.where(s != 0, mod.down / s, 0.0)
        dp = np.where(np.isfinite(up), np.maximum(1.0 + up, 1.0), 1.0)
        dm = np.where(np.isfinite(down), np.maximum(1.0 + down, 1.0), 1.0)
        name = f"theta_sig_{mod.name}"
        n = None if mod.type == "normalization" else spec.nbins
        params.append(ParamSet(name, (0.0,) * (n or 1), ((-THETA_RANGE, THETA_RANGE),) * (n or 1),
                               (False,) * (n or 1), kind="normal", scalar=n is None))
        factors.append(Node(Op.EXPR, (_param(name, n), _const(np.log(dp)), _const(np.log(dm))),
                            {"expr": "exp(max(x0, 0) * x1 + min(x0, 0) * x2)"}))
    if not factors:
        return None
    return factors[0] if len(factors) == 1 else Node(Op.MUL, tuple(factors))


def _signal(spec: SimplifiedSpec, params: list[ParamSet]) -> tuple[Node, str]:
    """The signal-yield node and the POI name."""
    if spec.signal_expression is not None:
        tree = expr.parse(spec.signal_expression)
        names = expr.variables(tree)
        pars = {p.name: p for p in spec.signal_parameters}
        args, mapping = [], {}
        for k, v in enumerate(names):
            mapping[v] = f"x{k}"
            if v in spec.coefficients:
                args.append(_const(spec.coefficients[v]))
            else:
                p = pars[v]
                params.append(ParamSet(v, (p.init,), ((p.lo, p.hi),), (p.fixed,), kind="signal"))
                args.append(_param(v))
        poi = spec.poi.name if spec.poi is not None else ("mu" if "mu" in pars else
                                                          next(iter(pars), None))
        if poi is not None and poi not in pars:
            raise InputError(f"the POI {poi!r} is not a parameter of the signal expression",
                             source=spec.source, location="/poi")
        node = Node(Op.EXPR, tuple(args), {"expr": expr.to_text(expr.rename(tree, mapping))})
        return node, poi
    if spec.signal_callable:  # N parameters "signal_yields", last, that the adapter fills
        n = spec.nbins
        params.append(ParamSet("mu", (1.0,), ((-POI_HI, POI_HI),), (False,), kind="normfactor"))
        params.append(ParamSet("signal_yields", (0.0,) * n, ((-math.inf, math.inf),) * n, (True,) * n,
                               kind="callable", scalar=False))
        return Node(Op.MUL, (_param("mu"), _param("signal_yields", n))), "mu"
    if spec.signal is None:
        raise InputError("the model has no signal yields ('signal' is missing)", source=spec.source)
    s, b = spec.signal, spec.background
    pos = s > 0
    lo = -float(np.min(b[pos] / s[pos])) if np.any(pos) else 0.0
    poi = spec.poi or None
    name = poi.name if poi else "mu"
    init = poi.init if poi else 1.0
    bounds = (poi.lo, poi.hi) if poi and (poi.lo, poi.hi) != (-math.inf, math.inf) else (lo, POI_HI)
    params.append(ParamSet(name, (init,), (bounds,), (bool(poi and poi.fixed),), kind="normfactor"))
    return Node(Op.MUL, (_param(name), _const(s))), name


def lower(spec: SimplifiedSpec) -> Module:
    return lower_with_domain(spec)[0]


def lower_with_domain(spec: SimplifiedSpec) -> tuple[Module, Node | None]:
    """The module and its domain: the background rates, which Spey's fits keep >= 0 (an
    optimiser constraint, not a likelihood term; None for the models without one)."""
    n = spec.nbins
    params: list[ParamSet] = []
    signal, poi = _signal(spec, params)
    model = spec.model
    terms: list[Node] = []
    aux: list[float] = []

    def theta(constrained=True):
        params.append(ParamSet("theta", (0.0,) * n, ((-THETA_RANGE, THETA_RANGE),) * n, (False,) * n,
                               kind="mvnormal" if model not in ("uncorrelated_background", "poisson")
                               else ("normal" if constrained else "free"), scalar=False))
        return _param("theta", n)

    def constrain_theta(rho=None):
        idx = Const(np.arange(n + len(aux), 2 * n + len(aux)))
        aux.extend([0.0] * n)
        th = _param("theta", n)
        if rho is None:
            terms.append(Node(Op.GAUSS, (th,), {"index": idx, "sigma": Const(np.ones(n))}))
        else:
            what = "correlation matrix of the nuisance parameters"
            terms.append(Node(Op.MVNORMAL, (th,), {"index": idx, **_mvn_attrs(rho, what, spec.source)}))

    b = spec.background
    if model in ("uncorrelated_background", "correlated_background"):
        sigma = spec.uncertainties if model == "uncorrelated_background" else np.sqrt(np.diag(spec.covariance))
        bkg = Node(Op.ADD, (_const(b), Node(Op.MUL, (_const(sigma), theta()))))
    elif model == "third_moment_expansion":
        a, bq, c, rho = third_moment_coefficients(b, spec.covariance, spec.third_moment, spec.source)
        th = theta()
        bkg = Node(Op.ADD, (_const(a), Node(Op.MUL, (_const(bq), th)), Node(Op.MUL, (_const(c), th, th))))
    elif model == "effective_sigma":
        up, down = spec.envelopes[:, 0], spec.envelopes[:, 1]
        text = f"x0 + x1 * sqrt(max(x2 + x3 * (x1 - x0), {EFFECTIVE_SIGMA_FLOOR!r}))"
        bkg = Node(Op.EXPR, (_const(b), theta(), _const(up * down), _const(up - down)), {"expr": text})
    elif model == "poisson" and spec.uncertainties is not None:
        bkg = Node(Op.ADD, (_const(b), Node(Op.MUL, (_const(spec.uncertainties), theta(False)))))
    else:
        bkg = _const(b)
    domain = bkg if bkg.op is not Op.CONST else None
    if model == "poisson" and spec.uncertainties is not None:  # as Spey codes it: b + theta b
        domain = Node(Op.ADD, (_const(b), Node(Op.MUL, (_const(b), _param("theta", n)))))

    factor = _signal_factor(spec, params) if spec.signal_uncertainties else None
    if factor is not None:
        signal = Node(Op.MUL, (signal, factor))
    rate = Node(Op.ADD, (signal, bkg))
    main = Const(np.arange(n))
    if model == "normal":
        terms.insert(0, Node(Op.GAUSS, (rate,), {"index": main, "sigma": Const(spec.uncertainties)}))
    elif model == "multivariate_normal":
        terms.insert(0, Node(Op.MVNORMAL, (rate,), {"index": main, **_mvn_attrs(
            spec.covariance, "covariance matrix", spec.source)}))
    else:
        terms.insert(0, Node(Op.POISSON, (rate,), {"index": main}))

    if model == "uncorrelated_background":
        constrain_theta()
    elif model == "correlated_background":
        cov = spec.covariance
        sd = np.sqrt(np.diag(cov))
        constrain_theta(cov / np.outer(sd, sd))
    elif model == "third_moment_expansion":
        constrain_theta(rho)
    elif model == "effective_sigma":
        constrain_theta(spec.correlation)
    # signal-uncertainty constraints: N(eta | 0, 1), after theta's
    for p in params:
        if p.name.startswith("theta_sig_"):
            idx = Const(np.arange(n + len(aux), n + len(aux) + p.size))
            aux.extend([0.0] * p.size)
            x = _param(p.name) if p.scalar else _param(p.name, p.size)
            sig = Const(np.array(1.0) if p.scalar else np.ones(p.size))
            terms.append(Node(Op.GAUSS, (x,), {"index": idx, "sigma": sig}))

    order = {"normfactor": 0, "signal": 1, "mvnormal": 2, "normal": 2, "free": 2, "callable": 4}
    params.sort(key=lambda p: 3 if p.name.startswith("theta_sig_") else order[p.kind])
    data = Const(np.concatenate([spec.observed, np.array(aux, dtype=float)]))
    meta = (("format", "simplified"), ("model", model), ("conventions", "spey"))
    module = Module(params=tuple(params), data=data, terms=tuple(terms),
                    channels=(Channel(spec.meta.get("name", "simplified"), 0, n),), n_main=n,
                    poi=poi, meta=meta, domain=domain)
    return module, domain
