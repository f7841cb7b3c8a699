"""Lower an HS3 analysis to IR (../shared/docs/formats/hs3.md).

Supported: histfactory_dist (normfactor, normsys, histosys, shapefactor, shapesys,
staterror; interpolation as ROOT integers or pyhs3 "codeN" strings; constraints Gauss or
Poisson), gaussian_dist/normal_dist, poisson_dist, multivariate_normal_dist,
product_dist, lognormal_dist constraints, and the functions product, sum and generic_function
(HS3 expressions without comparisons or ternaries) wherever a parameter may appear. Binned
and point data; unbinned data of one observable through hs3/unbinned.py.

Producer conventions (shapesys `vals`, the default staterror constraint) depend on who
wrote the file: ROOT (metadata.packages names ROOT) writes relative uncertainties and means
Poisson staterror constraints; pyhs3 and everyone else absolute ones and Gaussian.
"""

from __future__ import annotations

import math
import re

import numpy as np

from tweed.errors import InputError
from tweed.ir import expr as irexpr
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.build import const as _const
from tweed.ir.build import param as _param
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

NORMSYS_CODES = {0: "0", 1: "1", 2: "2", 4: "4", 5: "4", "code0": "0", "code1": "1", "code2": "2", "code4": "4",
                 "lin": "0", "log": "1"}
HISTOSYS_CODES = {0: "0", 2: "2", 4: "4p", "code0": "0", "code2": "2", "code4p": "4p", "code4": "4p",
                  "lin": "0", "parabolic": "2", "poly6": "4p"}
DEFAULT_RANGES = {"normfactor": (0.0, 10.0), "normsys": (-5.0, 5.0), "histosys": (-5.0, 5.0),
                  "shapesys": (1e-10, 10.0), "staterror": (1e-10, 10.0), "shapefactor": (0.0, 10.0),
                  "free": (-1e4, 1e4)}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # an identifier in an HS3 expression
DEFAULT_INIT = {"normfactor": 1.0, "normsys": 0.0, "histosys": 0.0, "shapesys": 1.0, "staterror": 1.0,
                "shapefactor": 1.0, "free": 0.0}


def producer(doc: dict) -> str:
    names = [str(p.get("name", "")).lower() for p in (doc.get("metadata") or {}).get("packages") or []]
    if "root" in names:
        return "root"
    return "tweed" if "tweed" in names else "pyhs3"




class _Lowering:
    def __init__(self, doc: dict, source: str):
        self.doc, self.src = doc, source
        self.prod = producer(doc)
        self.dists = {d.get("name"): (i, d) for i, d in enumerate(doc.get("distributions") or [])}
        self.funcs = {f.get("name"): (i, f) for i, f in enumerate(doc.get("functions") or [])}
        self.data = {d.get("name"): (i, d) for i, d in enumerate(doc.get("data") or [])}
        self.params: dict[str, str] = {}  # name -> kind (first use)
        self.cons: dict[str, tuple] = {}  # parameter -> (kind, centre, width); first wins
        self.func_nodes: dict[tuple, Node] = {}
        self.main: list[tuple[Node, np.ndarray, str]] = []  # rate, observed, channel name
        self.extra_terms: list[tuple[str, object]] = []
        # names Tweed's exporter made expression-safe (theta_3 for theta[3]): restored on reading
        self.names: dict[str, str] = dict(((doc.get("misc") or {}).get("tweed") or {}).get("parameter_names") or {})
        self.unbinned: list[dict] = []  # unbinned terms' parts (hs3/unbinned.py)
        self.point: dict[str, float] = {}  # the analysis' parameter point
        self.const: set[str] = set()
        self.refs = _references(doc)
        self.bind: dict[str, Node] = {}  # names bound to nodes (an observable) while lowering a pdf
        self.normalised = set(((doc.get("misc") or {}).get("tweed") or {}).get("normalised") or [])

    def fail(self, where: str, msg: str):
        raise InputError(msg, source=self.src, location=where)

    # -- values: numbers, parameters, functions ------------------------------------------------
    def value(self, v, where: str, kind: str = "free") -> Node:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return _const(float(v))
        if not isinstance(v, str):
            self.fail(where, f"expected a number or a name, got {type(v).__name__}")
        if v in self.funcs:
            return self.function(v)
        if v in self.bind:
            return self.bind[v]
        if v in self.dists:
            self.fail(where, f"{v!r} is a distribution, expected a parameter or a function")
        v = self.names.get(v, v)
        self.params.setdefault(v, kind)
        return _param(v)

    def function(self, name: str) -> Node:
        key = (name, tuple(sorted((k, id(v)) for k, v in self.bind.items())))
        if key in self.func_nodes:
            return self.func_nodes[key]
        i, f = self.funcs[name]
        where = f"/functions/{i}"
        t = f.get("type")
        if t == "product":
            node = Node(Op.MUL, tuple(self.value(x, f"{where}/factors") for x in f.get("factors", []))) \
                if len(f.get("factors", [])) > 1 else self.value(f["factors"][0], f"{where}/factors/0")
        elif t == "sum":
            node = Node(Op.ADD, tuple(self.value(x, f"{where}/summands") for x in f.get("summands", []))) \
                if len(f.get("summands", [])) > 1 else self.value(f["summands"][0], f"{where}/summands/0")
        elif t == "generic_function":
            node = self.expression(f.get("expression", ""), f"{where}/expression")
        else:
            self.fail(f"{where}/type", f"function type {t!r} is not supported (supported: product, sum, "
                                       "generic_function)")
        self.func_nodes[key] = node
        return node

    def expression(self, text: str, where: str, bind: dict[str, Node] | None = None) -> Node:
        """An HS3 expression string as an IR node; `bind` maps names (an observable) to nodes."""
        if re.search(r"[?:<>!=&|]", text):
            self.fail(where, f"expression {text!r}: comparisons, logic and ternaries are not supported")
        t = re.sub(r"\bPI\b", repr(math.pi), text)
        t = re.sub(r"\bEULER\b", repr(math.e), t)
        try:
            tree = irexpr.parse(t)
        except InputError as exc:
            self.fail(where, exc.message)
        names = irexpr.variables(tree)
        saved = self.bind
        self.bind = {**saved, **(bind or {})}
        try:
            args = [self.value(n, where) for n in names]
        finally:
            self.bind = saved
        if not args:
            return _const(float(irexpr.evaluate(tree, {})))
        text2 = irexpr.to_text(irexpr.rename(tree, {n: f"x{k}" for k, n in enumerate(names)}))
        return Node(Op.EXPR, tuple(args), {"expr": text2})

    def number(self, v, where: str) -> float:
        """A number, or the value of a constant parameter (`const` in the parameter point)."""
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str) and v in self.const and v in self.point:
            return self.point[v]
        self.fail(where, f"expected a number or a constant parameter, got {v!r} (parameter-dependent "
                         "widths are not supported)")

    def sides(self, d: dict, mean_key: str, datum, dw: str, symmetric: bool = False) -> tuple[Node, float]:
        """(the parameter side, the datum) of a one-dimensional constraint. The variate `x` is the
        datum when it is a number, when the likelihood pairs a datum with the distribution, or
        when it names a global observable (a name no other distribution or function reads: its
        value comes from the parameter point). A Gaussian is symmetric: either side may be it."""
        x, mean = d.get("x"), d.get(mean_key)
        num = (int, float)
        if isinstance(x, num) and not isinstance(x, bool):
            return self.value(mean, f"{dw}/{mean_key}"), float(x)
        if isinstance(datum, num) and not isinstance(datum, bool):
            return self.value(mean, f"{dw}/{mean_key}"), float(datum)
        if symmetric and isinstance(mean, num) and isinstance(x, str):
            return self.value(x, f"{dw}/x"), float(mean)
        for var, other, key in ((x, mean, mean_key), (mean, x, "x") if symmetric else (None, None, None)):
            if isinstance(var, str) and var not in self.funcs and self.refs.get(var, 0) <= 1:
                if var not in self.point:
                    self.fail(f"{dw}", f"global observable {var!r} has no value in the parameter point")
                return self.value(other, f"{dw}/{key}"), self.point[var]
        self.fail(dw, f"{d.get('type')}: expected a number, a paired datum or a global observable as x")

    def constrain(self, par: str, kind: str, centre: float, width: float):
        self.cons.setdefault(par, (kind, centre, width))

    # -- histfactory_dist -----------------------------------------------------------------------------
    def histfactory(self, idx: int, d: dict, observed: np.ndarray) -> Node:
        where = f"/distributions/{idx}"
        axes = d.get("axes") or []
        nb = 1
        for a in axes:
            nb *= int(a.get("nbins") or (len(a.get("edges") or a.get("bounds") or [0, 0]) - 1))
        samples = d.get("samples") or []
        if not samples:
            self.fail(f"{where}/samples", "a histfactory_dist needs samples")
        # staterror: per channel, over the samples that carry it
        st_mods = [(s, m) for s in samples for m in s.get("modifiers", []) if m.get("type") == "staterror"]
        st_block = d.get("staterror") or {}
        st_kind = st_block.get("constraint_type") or st_block.get("constraint") or (
            "Poisson" if self.prod == "root" else "Gauss")
        rates = []
        for si, s in enumerate(samples):
            sw = f"{where}/samples/{si}"
            data = s.get("data") or {}
            nom = np.asarray(data.get("contents", []), dtype=float)
            if nom.size != nb:
                self.fail(f"{sw}/data/contents", f"sample {s.get('name')!r} has {nom.size} bins, the axes {nb}")
            shifts, factors = [], []
            for mi, m in enumerate(s.get("modifiers", [])):
                mw = f"{sw}/modifiers/{mi}"
                t = m.get("type")
                con = m.get("constraint") or m.get("constraint_type")
                if t == "normfactor":
                    p = m.get("parameter") or m.get("name")
                    factors.append(self.value(p, f"{mw}/parameter", "normfactor"))
                elif t == "normsys":
                    p = m.get("parameter") or ("alpha_" + m["name"] if self.prod == "root" else m["name"])
                    p = self.names.get(p, p)
                    md = m.get("data") or {}
                    code = m.get("interpolation", md.get("interpolation", 4))
                    if code not in NORMSYS_CODES:
                        self.fail(f"{mw}", f"normsys interpolation {code!r} is not supported")
                    if con not in (None, "Gauss"):
                        self.fail(f"{mw}", f"normsys constraint {con!r} is not supported (Gauss)")
                    self.params.setdefault(p, "normsys")
                    factors.append(Node(Op.INTERP_FACTOR, (_param(p),), {
                        "code": NORMSYS_CODES[code], "lo": Const(float(md["lo"])), "hi": Const(float(md["hi"]))}))
                    if "constraint_name" not in m:
                        self.constrain(p, "gauss", 0.0, 1.0)
                elif t == "histosys":
                    p = m.get("parameter") or ("alpha_" + m["name"] if self.prod == "root" else m["name"])
                    p = self.names.get(p, p)
                    md = m.get("data") or {}
                    hi = np.asarray((md.get("hi") or {}).get("contents", []), dtype=float)
                    lo = np.asarray((md.get("lo") or {}).get("contents", []), dtype=float)
                    if hi.size != nb or lo.size != nb:
                        self.fail(f"{mw}/data", f"histosys templates must have {nb} bins")
                    code = m.get("interpolation", md.get("interpolation", 4))
                    if code not in HISTOSYS_CODES:
                        self.fail(f"{mw}", f"histosys interpolation {code!r} is not supported")
                    self.params.setdefault(p, "histosys")
                    shifts.append(Node(Op.INTERP_SHIFT, (_param(p),), {
                        "code": HISTOSYS_CODES[code], "lo": Const(lo), "nom": Const(nom), "hi": Const(hi)}))
                    if "constraint_name" not in m:
                        self.constrain(p, "gauss", 0.0, 1.0)
                elif t in ("shapesys", "shapefactor", "staterror"):
                    pars = m.get("parameters")
                    if not pars:
                        base = m.get("name", t)
                        if t == "staterror":
                            chan = d.get("name", "").removeprefix("model_")
                            pars = [f"gamma_stat_{chan}_bin_{i}" for i in range(nb)] if self.prod == "root" else \
                                [f"staterror_{chan}_bin{i}" for i in range(nb)]
                        else:
                            pars = [f"gamma_{base}_bin_{i}" for i in range(nb)]
                    if len(pars) != nb:
                        self.fail(f"{mw}/parameters", f"{t} needs {nb} parameters, got {len(pars)}")
                    nodes = [self.value(p, f"{mw}/parameters", t) for p in pars]
                    factors.append(Node(Op.CONCAT, tuple(nodes)))
                    if t == "shapesys":
                        vals = np.asarray((m.get("data") or {}).get("vals", []), dtype=float)
                        if vals.size != nb:
                            self.fail(f"{mw}/data/vals", f"shapesys needs {nb} vals")
                        kind = con or "Poisson"
                        for b, p in enumerate(pars):
                            if vals[b] <= 0 or nom[b] <= 0:
                                if self.prod == "tweed" and kind == "Poisson":  # pyhf's tau = 1, gamma fixed
                                    self.constrain(p, "poisson", 1.0, 1.0)
                                continue
                            rel = vals[b] if self.prod == "root" else vals[b] / nom[b]
                            if kind == "Poisson":
                                tau = 1.0 / rel**2
                                self.constrain(p, "poisson", tau, tau)
                            elif kind == "Gauss":
                                self.constrain(p, "gauss", 1.0, rel)
                            else:
                                self.fail(mw, f"shapesys constraint {kind!r} is not supported")
                    if t == "staterror":
                        st_pars = pars
                else:
                    self.fail(f"{mw}/type", f"modifier type {t!r} is not supported (normfactor, normsys, histosys, "
                                            "shapefactor, shapesys, staterror)")
            base = Node(Op.ADD, (_const(nom), *shifts)) if shifts else _const(nom)
            rates.append(Node(Op.MUL, (base, *factors)) if factors else base)
        if st_mods:
            cont = np.zeros(nb)
            err2 = np.zeros(nb)
            for s, _ in st_mods:
                data = s.get("data") or {}
                cont += np.asarray(data.get("contents"), dtype=float)
                e = np.asarray(data.get("errors") or np.zeros(nb), dtype=float)
                err2 += e**2
            for b in range(nb):
                if cont[b] <= 0 or err2[b] <= 0:
                    if self.prod == "tweed":  # Tweed writes pyhf's convention: sigma 1 (the gamma is fixed)
                        self.constrain(st_pars[b], "gauss", 1.0, 1.0)
                    continue
                rel = math.sqrt(err2[b]) / cont[b]
                if rel < float(st_block.get("relThreshold", 0.0)):
                    continue
                if st_kind == "Poisson":
                    self.constrain(st_pars[b], "poisson", 1.0 / rel**2, 1.0 / rel**2)
                else:
                    self.constrain(st_pars[b], "gauss", 1.0, rel)
        return rates[0] if len(rates) == 1 else Node(Op.ADD, tuple(rates))

    # -- other distributions ------------------------------------------------------------------------------
    def term(self, name: str, datum, where: str):
        """A non-binned factor of the likelihood, with its datum (a number, or None for aux)."""
        idx, d = self.dists[name]
        dw = f"/distributions/{idx}"
        t = d.get("type")
        if t == "product_dist":
            for k, f in enumerate(d.get("factors", [])):
                if f not in self.dists:
                    self.fail(f"{dw}/factors/{k}", f"undefined distribution {f!r}")
                self.term(f, None, f"{dw}/factors/{k}")
            return
        if t in ("gaussian_dist", "normal_dist"):
            sigma = self.number(d.get("sigma"), f"{dw}/sigma")
            node, centre = self.sides(d, "mean", datum, dw, symmetric=True)
            self.extra_terms.append(("gauss", node, centre, sigma))
            return
        if t == "poisson_dist":
            node, centre = self.sides(d, "mean", datum, dw)
            self.extra_terms.append(("poisson", node, centre, 1.0))
            return
        if t == "lognormal_dist":  # -ln LogN(x | mu, sigma) of a datum x
            sigma = self.number(d.get("sigma"), f"{dw}/sigma")
            node, centre = self.sides(d, "mu", datum, dw)
            if centre <= 0:
                self.fail(f"{dw}/x", f"lognormal_dist: the datum must be positive, got {centre}")
            self.extra_terms.append(("lognormal", node, centre, sigma))
            return
        if t == "multivariate_normal_dist":
            xs, mean, cov = d.get("x") or [], d.get("mean") or [], d.get("covariances") or []
            if not all(isinstance(v, (int, float)) for v in mean) or not all(isinstance(v, str) for v in xs):
                self.fail(dw, "multivariate_normal_dist: expected parameters x and numeric means")
            C = np.asarray(cov, dtype=float)
            if C.shape != (len(xs), len(xs)):
                self.fail(f"{dw}/covariances", f"covariances must be {len(xs)}x{len(xs)}")
            sign, logdet = np.linalg.slogdet(C)
            if sign <= 0:
                self.fail(f"{dw}/covariances", "the covariance is not positive definite")
            nodes = [self.value(x, f"{dw}/x") for x in xs]
            self.extra_terms.append(("mvn", Node(Op.CONCAT, tuple(nodes)), np.asarray(mean, float),
                                     (np.linalg.inv(C), float(logdet))))
            return
        self.fail(f"{dw}/type", f"distribution type {t!r} is not supported here (supported: histfactory_dist with "
                                "binned data; gaussian_dist, normal_dist, poisson_dist, multivariate_normal_dist, "
                                "product_dist)")


def _references(doc: dict) -> dict[str, int]:
    """How many distributions and functions read each name (a name read by one only, in a
    constraint, is a global observable)."""
    out: dict[str, int] = {}

    def names(v, key=None):
        if isinstance(v, str):
            if key not in ("name", "type", "expression"):
                yield v
            elif key == "expression":
                yield from _NAME.findall(v)
        elif isinstance(v, list):
            for x in v:
                yield from names(x, key)
        elif isinstance(v, dict):
            for k, x in v.items():
                yield from names(x, k)

    for obj in (doc.get("distributions") or []) + (doc.get("functions") or []):
        for n in set(names(obj)):
            out[n] = out.get(n, 0) + 1
    return out


def _unbinned(L: _Lowering, idx: int, d: dict, di: int, datum: dict) -> None:
    """One distribution paired with unbinned data: its term (constraint factors of a product
    become constraint terms)."""
    from tweed.compiler.frontends.hs3.unbinned import Unbinned

    axes = datum.get("axes") or []
    if len(axes) != 1:
        L.fail(f"/data/{di}/axes", f"unbinned data with {len(axes)} axes: one observable is supported")
    ax = axes[0]
    obs, lo, hi = ax.get("name"), float(ax.get("min", -math.inf)), float(ax.get("max", math.inf))
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        L.fail(f"/data/{di}/axes/0", f"the observable needs a finite range min < max, got [{lo}, {hi}]")
    try:
        ev = np.asarray(datum.get("entries") or [], dtype=float)
    except (TypeError, ValueError):
        L.fail(f"/data/{di}/entries", "entries must be a list of [x] coordinates")
    ev = ev.reshape(ev.shape[0], -1) if ev.size else np.zeros((0, 1))
    if ev.shape[1] != 1:
        L.fail(f"/data/{di}/entries", f"entries have {ev.shape[1]} coordinates, the axes 1")
    ev = ev[:, 0]
    w = np.asarray(datum.get("weights") if datum.get("weights") is not None else np.ones(ev.size), dtype=float)
    if w.shape != ev.shape:
        L.fail(f"/data/{di}/weights", f"{w.size} weights for {ev.size} entries")
    bad = np.flatnonzero(~np.isfinite(ev) | (ev < lo) | (ev > hi))
    if bad.size:
        L.fail(f"/data/{di}/entries/{bad[0]}", f"entry {ev[bad[0]]} outside the axis range [{lo}, {hi}]")
    main = d.get("name")
    if d.get("type") == "product_dist":
        shape = [f for f in d.get("factors") or [] if _mentions(L, f, obs)]
        if len(shape) != 1:
            L.fail(f"/distributions/{idx}/factors", f"a product on unbinned data needs exactly one factor of "
                                                    f"the observable {obs!r}, has {len(shape)}")
        for k, f in enumerate(d.get("factors") or []):
            if f != shape[0]:
                L.term(f, None, f"/distributions/{idx}/factors/{k}")
        main = shape[0]
    L.unbinned.append(Unbinned(L, obs, lo, hi).term(main, ev, w))


def _mentions(L: _Lowering, name: str, obs: str) -> bool:
    """Whether distribution `name` (or one it is made of) reads the observable."""
    if name not in L.dists:
        return False
    d = L.dists[name][1]
    if obs in _NAME.findall(str(d.get("expression", ""))):
        return True
    if any(d.get(k) == obs for k in ("x", "m", "mass", "t")):
        return True
    return any(_mentions(L, s, obs) for s in (d.get("summands") or []) + (d.get("factors") or []))


def _pick_analysis(doc, source, name):
    analyses = doc.get("analyses") or []
    if name is not None:
        for i, a in enumerate(analyses):
            if a.get("name") == name:
                return i, a
        raise InputError(f"no analysis named {name!r} (have: {[a.get('name') for a in analyses]})", source=source,
                         location="/analyses")
    if not analyses:
        return None, None
    for i, a in enumerate(analyses):
        if "asimov" not in str(a.get("likelihood", "")).lower():
            return i, a
    return 0, analyses[0]


def lower(doc: dict, source: str, analysis: str | None = None) -> Module:
    L = _Lowering(doc, source)
    ai, an = _pick_analysis(doc, source, analysis)
    likelihoods = {lk.get("name"): (i, lk) for i, lk in enumerate(doc.get("likelihoods") or [])}
    if an is not None:
        lname = an.get("likelihood")
        if lname not in likelihoods:
            L.fail(f"/analyses/{ai}/likelihood", f"undefined likelihood {lname!r}")
        li, lk = likelihoods[lname]
    elif len(likelihoods) == 1:
        li, lk = next(iter(likelihoods.values()))
    else:
        L.fail("/analyses", "no analysis, and not exactly one likelihood: which one?")
    points = doc.get("parameter_points") or []
    init_name = (an or {}).get("init")
    chosen = next((p for p in points if p.get("name") == init_name), None) or next(
        (p for p in points if p.get("name") == "default_values"), points[0] if points else None)
    for p in (chosen or {}).get("parameters", []):
        nm = L.names.get(p["name"], p["name"])
        L.point[nm] = float(p.get("value", 0.0))
        if p.get("const"):
            L.const.add(nm)
    dnames, datas = lk.get("distributions") or [], lk.get("data") or []
    if len(dnames) != len(datas):
        L.fail(f"/likelihoods/{li}", f"{len(dnames)} distributions but {len(datas)} data")
    for k, (dn, dv) in enumerate(zip(dnames, datas)):
        where = f"/likelihoods/{li}/distributions/{k}"
        if dn not in L.dists:
            L.fail(where, f"undefined distribution {dn!r}")
        idx, d = L.dists[dn]
        if d.get("type") == "histfactory_dist":
            if not isinstance(dv, str) or dv not in L.data:
                L.fail(f"/likelihoods/{li}/data/{k}", f"histfactory_dist {dn!r} needs a binned datum, got {dv!r}")
            di, datum = L.data[dv]
            if datum.get("type") != "binned":
                L.fail(f"/data/{di}/type", f"expected binned data for {dn!r}, got {datum.get('type')!r}")
            obs = np.asarray(datum.get("contents", []), dtype=float)
            rate = L.histfactory(idx, d, obs)
            if obs.size != max(rate.size, 1):  # noqa: SIM102
                L.fail(f"/data/{di}/contents", f"{obs.size} bins of data for {rate.size} bins of {dn!r}")
            L.main.append((rate, obs, dn.removeprefix("model_")))
        else:
            value = dv
            if isinstance(dv, str):
                if dv not in L.data:
                    L.fail(f"/likelihoods/{li}/data/{k}", f"undefined datum {dv!r}")
                di, datum = L.data[dv]
                if datum.get("type") == "unbinned":
                    _unbinned(L, idx, d, di, datum)
                    continue
                if datum.get("type") == "binned":
                    L.fail(f"/distributions/{idx}/type", f"distribution type {d.get('type')!r} is not supported with "
                                                         "binned data (supported: histfactory_dist)")
                if datum.get("type") != "point":
                    L.fail(f"/data/{di}/type", f"distribution {dn!r} needs point data, got {datum.get('type')!r}")
                value = datum.get("value")
            if d.get("type") == "poisson_dist" and isinstance(d.get("mean"), str) and isinstance(value, (int, float)):
                # a Poisson count paired with its datum: a main bin
                L.main.append((L.value(d["mean"], f"/distributions/{idx}/mean"), np.array([float(value)]), dn))
                continue
            L.term(dn, value, where)
    for k, an_d in enumerate(lk.get("aux_distributions") or []):
        if an_d not in L.dists:
            L.fail(f"/likelihoods/{li}/aux_distributions/{k}", f"undefined distribution {an_d!r}")
        L.term(an_d, None, f"/likelihoods/{li}/aux_distributions/{k}")
    if not L.main and not L.unbinned:
        L.fail(f"/likelihoods/{li}", "no distribution paired with binned, unbinned or point data: nothing to fit")

    # parameter table: bounds from the analysis' domains, values from its init point
    bounds: dict[str, tuple[float, float]] = {}
    dom_names = (an or {}).get("domains") or ([an["domain"]] if an and "domain" in an else [])
    for i, dm in enumerate(doc.get("domains") or []):
        if dom_names and dm.get("name") not in dom_names:
            continue
        for ax in dm.get("axes") or []:
            bounds[L.names.get(ax["name"], ax["name"])] = (float(ax.get("min", -math.inf)), float(ax.get("max", math.inf)))
    inits, const = dict(L.point), set(L.const)
    pois = (an or {}).get("parameters_of_interest") or (an or {}).get("parameter_of_interest") or []
    poi = L.names.get(pois[0], pois[0]) if pois else None
    params = []
    listed = [L.names.get(p["name"], p["name"]) for p in (chosen or {}).get("parameters", [])]
    if set(L.params) <= set(listed):  # the order the file lists them in (Tweed's exports: the model's)
        ordered = [(n, L.params[n]) for n in listed if n in L.params]
    else:
        ordered = list(L.params.items())
    for name, kind in ordered:
        lo, hi = bounds.get(name, DEFAULT_RANGES.get(kind, DEFAULT_RANGES["free"]))
        x = inits.get(name, DEFAULT_INIT.get(kind, 0.0))
        x = min(max(x, lo), hi)
        params.append(ParamSet(name, (x,), ((lo, hi),), (name in const,), kind=kind))
    if poi is not None and poi not in L.params:
        raise InputError(f"the parameter of interest {poi!r} is no parameter of the likelihood", source=source,
                         location=f"/analyses/{ai}/parameters_of_interest")

    # terms and data
    main_obs = np.concatenate([m[1] for m in L.main]) if L.main else np.zeros(0)
    n_main = main_obs.size
    terms = []
    if L.main:
        rate = L.main[0][0] if len(L.main) == 1 else Node(Op.CONCAT, tuple(m[0] for m in L.main))
        terms.append(Node(Op.POISSON, (rate,), {"index": Const(np.arange(n_main))}))
    aux: list[float] = []
    for par, (kind, centre, width) in L.cons.items():
        idx = Const(np.array([n_main + len(aux)]))
        aux.append(centre)
        if kind == "gauss":
            terms.append(Node(Op.GAUSS, (_param(par),), {"index": idx, "sigma": Const(np.array(width))}))
        else:
            terms.append(Node(Op.POISSON_AUX, (_param(par),), {"index": idx, "tau": Const(np.array(width))}))
    for kind, node, centre, width in L.extra_terms:
        if kind == "mvn":
            k = centre.size
            idx = Const(np.arange(n_main + len(aux), n_main + len(aux) + k))
            aux.extend(centre.tolist())
            P, logdet = width
            terms.append(Node(Op.MVNORMAL, (node,), {"index": idx, "precision": Const(P.ravel()), "logdet": logdet}))
            continue
        idx = Const(np.array([n_main + len(aux)]))
        aux.append(centre)
        if kind in ("gauss", "lognormal"):
            op = Op.GAUSS if kind == "gauss" else Op.LOGNORMAL
            terms.append(Node(op, (node,), {"index": idx, "sigma": Const(np.array(width))}))
        else:
            terms.append(Node(Op.POISSON_AUX, (node,), {"index": idx, "tau": Const(np.array(width))}))
    for u in L.unbinned:
        idx = Const(np.arange(n_main + len(aux), n_main + len(aux) + u["points"].size))
        aux.extend(u["weights"].tolist())
        terms.append(Node(Op.UNBINNED, (u["density"], u["rate"]), {
            "index": idx, "grid": Const(u["grid"]), "points": Const(u["points"]),
            "observable": u["observable"], "lo": u["lo"], "hi": u["hi"]}))
    chans, start = [], 0
    for r, obs, cname in L.main:
        chans.append(Channel(cname, start, start + obs.size))
        start += obs.size
    meta = (("format", "hs3"), ("producer", L.prod), ("analysis", (an or {}).get("name", "")))
    return Module(params=tuple(params), data=Const(np.concatenate([main_obs, np.array(aux, dtype=float)])),
                  terms=tuple(terms), channels=tuple(chans), n_main=n_main, poi=poi, meta=meta)
