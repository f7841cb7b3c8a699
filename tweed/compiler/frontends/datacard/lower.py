"""Lower a datacard AST to IR with Combine's semantics (../shared/docs/formats/datacards.md §5).

    yield(c, p, b) = base_cpb * M_p(r) * prod of normalisation factors * fraction_cpb(theta_shape)
                     (+ autoMCStats terms per channel bin)

* signal processes (id <= 0) scale with the POI r (init 1, range [0, 20]);
* lnN kappa: kappa^theta (interpolation code 1, exact); lnN kd/ku: Combine's smooth asymmetric
  scheme exp(theta K(theta)) as an `expr` node; lnU: kappa^theta with theta flat on [-1, 1];
* gmN N alpha: yield alpha * n, n Poisson-constrained by N (continuous), init N + 1;
* shape: vertical morphing of unit-normalised templates (per bin the code-"4p" polynomial,
  exactly Combine's for scale 1), floored at 1e-9 and renormalised, plus the normalisation
  kappa_u = int(up)/int(nom), kappa_d = int(down)/int(nom) with the asymmetric-lnN scheme;
  shapeN: the same morph of the log fractions, exponentiated (range [-7, 7]);
* rateParam: a free multiplier (several lines with one name: one parameter), or a formula
  of other parameters (`@0*@1`, an `expr` node); param: a Gaussian constraint;
* autoMCStats: Barlow-Beeston-lite per channel bin (one Gaussian parameter per bin scaled by
  the current process normalisations when n_eff > threshold, else per-process multipliers).
Constraints: Gauss(0 | theta, 1) for lnN and shape (ranges [-7, 7] and [-4, 4]), as Combine.
"""

from __future__ import annotations

import fnmatch
import math
import re

import numpy as np

from tweed.compiler.frontends.datacard import shapes as sh
from tweed.compiler.frontends.datacard.ast import Card
from tweed.errors import InputError
from tweed.ir import expr
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.build import const as _const
from tweed.ir.build import param as _param
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

POI = "r"
POI_RANGE = (0.0, 20.0)
LNN_RANGE = (-7.0, 7.0)
SHAPE_RANGE = (-4.0, 4.0)
FREE_RANGE = (0.0, 1.0e3)  # rateParams without a range (Combine: unbounded)
FLOOR = 1e-9  # Combine's floor on morphed template fractions

# Combine's asymmetric lnN (logKappaForX/asymPow): exp(x0 K(x0)), K = a + b h(clamp(2 x0, -1, 1))
_C = "max(-1, min(1, 2 * x0))"
ASYM_LNN = f"exp(x0 * (x1 + x2 * (3 * {_C} ** 5 - 10 * {_C} ** 3 + 15 * {_C}) / 8))"




def _mul(nodes: list[Node]) -> Node | None:
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Node(Op.MUL, tuple(nodes))


def asym_lnn(theta: Node, down: float, up: float) -> Node:
    """Combine's kd/ku factor of theta (symmetric kappa^theta when kd ku = 1 within 1e-5)."""
    if abs(down * up - 1.0) < 1e-5:
        return Node(Op.INTERP_FACTOR, (theta,), {"code": "1", "lo": Const(1.0 / up), "hi": Const(float(up))})
    lu, ld = math.log(up), math.log(down)
    return Node(Op.EXPR, (theta, _const(0.5 * (lu - ld)), _const(0.5 * (lu + ld))), {"expr": ASYM_LNN})


class _Params:
    def __init__(self):
        self.sets: dict[str, ParamSet] = {}
        self.constraints: list[tuple[str, str, float, float]] = []  # name, kind, aux, width

    def add(self, name, init, lo, hi, kind, n=None, frozen=False) -> str:
        if name not in self.sets:
            size = n or 1
            self.sets[name] = ParamSet(name, (float(init),) * size, ((float(lo), float(hi)),) * size,
                                       (bool(frozen),) * size, kind=kind, scalar=n is None)
        return name


def lower(card: Card, mass: str = "120") -> Module:
    src = card.source
    P = _Params()
    P.add(POI, 1.0, *POI_RANGE, kind="normfactor", frozen=POI in card.frozen)
    k = len(card.columns)
    factors: list[list[Node]] = [[] for _ in range(k)]  # scalar normalisation factors per column
    base: list[Node | None] = [None] * k  # per-column yield before factors (vector for shapes)
    sys_names = {s.name for s in card.systematics}

    # ---- templates -------------------------------------------------------------------------
    nb: dict[str, int] = {}
    templ: dict[int, tuple] = {}
    for j, c in enumerate(card.columns):
        t = sh.nominal(card, c.process, c.bin, mass)
        if t is None:
            nb.setdefault(c.bin, 1)
            if nb[c.bin] != 1:
                raise InputError(f"channel {c.bin!r} mixes counting and shape processes", source=src)
            continue
        vals, errs, line = t
        if nb.setdefault(c.bin, vals.size) != vals.size:
            raise InputError(f"templates of channel {c.bin!r} have different numbers of bins "
                             f"({nb[c.bin]} and {vals.size} for {c.process})", source=src, location=f"line {line.line}")
        templ[j] = (vals, errs, line)
    for b in card.bins:
        nb.setdefault(b, 1)

    data: dict[str, np.ndarray] = {}
    for b in card.bins:
        s = sh.shape_line(card, "data_obs", b)
        if s is not None and s.file != "FAKE" and any(j in templ for j in card.processes(b)):
            name = sh._substitute(s.obj, "data_obs", b, mass)
            h = sh.histogram(card, s, name, f"observed data of {b}")
            if h is None:
                raise InputError(f"shapes: observed data {name!r} of channel {b} is missing from {s.file}",
                                 source=src, location=f"line {s.line}")
            data[b] = h[0]
        elif card.observation is not None and card.observation[b] >= 0:
            data[b] = np.array([card.observation[b]])
        else:
            raise InputError(f"no observation for channel {b!r} (no 'observation' line, no data_obs shape)",
                             source=src)
        if data[b].size != nb[b]:
            raise InputError(f"observed data of channel {b!r} have {data[b].size} bins, its templates {nb[b]}",
                             source=src)

    # ---- nominal yields ----------------------------------------------------------------------------
    nominal: dict[int, np.ndarray] = {}
    errors: dict[int, np.ndarray] = {}
    for j, c in enumerate(card.columns):
        rate = card.rates[j]
        if j in templ:
            vals, errs, _ = templ[j]
            integral = float(vals.sum())
            scale = 1.0 if rate == -1 else (rate / integral if integral > 0 else 0.0)
            nominal[j] = vals * scale
            errors[j] = errs * scale
        else:
            if rate == -1:
                raise InputError(f"rate -1 (the template's integral) for {c.process} in the counting channel "
                                 f"{c.bin}", source=src)
            nominal[j] = np.array([rate])
            errors[j] = np.zeros(1)
        if c.signal:
            factors[j].append(_param(POI))

    # ---- per-column systematics ------------------------------------------------------------------
    shape_systs: dict[int, list[tuple[str, float, np.ndarray, np.ndarray, bool]]] = {}  # ..., log-space
    for s in card.systematics:
        if s.type == "gmN":
            n_cr = s.args[0]
            cols = [j for j, v in enumerate(s.values) if v is not None and v != 0]
            if not cols:
                continue
            P.add(s.name, n_cr + 1.0, 0.0, n_cr + 20.0 * math.sqrt(n_cr + 1.0) + 20.0, kind="gmN",
                  frozen=s.name in card.frozen)
            P.constraints.append((s.name, "poisson", float(n_cr), 1.0))
            for j in cols:
                alpha = s.values[j]
                rate = card.rates[j]
                if j in templ:
                    raise InputError(f"gmN {s.name} on the shape process {card.columns[j].process} is not supported",
                                     source=src, location=f"line {s.line}")
                if rate != 0 and abs(rate - alpha * n_cr) > max(0.05 * max(rate, 1.0), alpha):
                    raise InputError(f"gmN {s.name}: the rate {rate} of {card.columns[j].process} in "
                                     f"{card.columns[j].bin} should be alpha * N = {alpha} * {n_cr}",
                                     source=src, location=f"line {s.line}")
                nominal[j] = np.array([alpha])
                factors[j].append(_param(s.name))
            continue
        used = False
        for j, v in enumerate(s.values):
            if v is None or card.rates[j] == 0:
                continue
            typ = s.type
            if typ in ("shape", "shape?", "shapeN", "shapeN?"):
                log = typ.startswith("shapeN")
                if v == 0:
                    continue
                var = None
                if j in templ:
                    var = sh.variations(card, templ[j][2], card.columns[j].process, card.columns[j].bin, s.name, mass)
                if var is None and typ in ("shape", "shapeN"):
                    raise InputError(f"shape systematic {s.name}: no {s.name}Up/Down templates for "
                                     f"{card.columns[j].process} in {card.columns[j].bin}",
                                     source=src, location=f"line {s.line}")
                if var is not None:
                    P.add(s.name, 0.0, *(LNN_RANGE if log else SHAPE_RANGE), kind="shape", frozen=s.name in card.frozen)
                    if log and (np.any((var[0] <= 0) & (templ[j][0] > 0)) or np.any((var[1] <= 0) & (templ[j][0] > 0))):
                        raise InputError(f"shapeN systematic {s.name}: a {s.name}Up/Down template of "
                                         f"{card.columns[j].process} in {card.columns[j].bin} has an empty or negative "
                                         "bin where the nominal has events (log-space morphing needs positive bins)",
                                         source=src, location=f"line {s.line}")
                    shape_systs.setdefault(j, []).append((s.name, float(v), var[0], var[1], log))
                    used = True
                    continue
                typ = "lnN"  # shape? without templates: the value is a kappa
            if typ in ("lnN", "lnU"):
                if v == 0 or v == 1.0:
                    continue
                lo, hi = LNN_RANGE if typ == "lnN" else (-1.0, 1.0)
                P.add(s.name, 0.0, lo, hi, kind="lnN" if typ == "lnN" else "lnU", frozen=s.name in card.frozen)
                th = _param(s.name)
                if isinstance(v, tuple):
                    factors[j].append(asym_lnn(th, v[0], v[1]))
                else:
                    factors[j].append(Node(Op.INTERP_FACTOR, (th,), {"code": "1", "lo": Const(1.0 / v),
                                                                     "hi": Const(float(v))}))
                used = True
        if used and s.type != "lnU" and s.name in P.sets and P.sets[s.name].kind != "lnU":
            if (s.name, "normal", 0.0, 1.0) not in P.constraints:
                P.constraints.append((s.name, "normal", 0.0, 1.0))

    # ---- rateParams, params, extArgs ------------------------------------------------------------------
    params_by_name = {p.name: p for p in card.params}
    for name, (init, rng) in card.ext_args.items():
        lo, hi = rng if rng else (init - 1e3, init + 1e3)
        P.add(name, init, lo, hi, kind="extArg", frozen=name in card.frozen)
    for name, p in params_by_name.items():
        if name in sys_names:
            raise InputError(f"param {name}: a nuisance of that name is already declared as a systematic",
                             source=src, location=f"line {p.line}")
    formula_rps = []
    for rp in card.rate_params:
        cols = [j for j, c in enumerate(card.columns) if _match(rp.bin, c.bin) and _match(rp.process, c.process)]
        if not cols:
            raise InputError(f"rateParam {rp.name}: no process {rp.process!r} in bin {rp.bin!r}",
                             source=src, location=f"line {rp.line}")
        if rp.formula is not None:
            formula_rps.append((rp, cols))
            continue
        lo, hi = rp.range if rp.range else FREE_RANGE
        if rp.name in params_by_name and not rp.range:
            p = params_by_name[rp.name]
            lo, hi = p.range if p.range else (p.mean - 4 * p.sigma, p.mean + 4 * p.sigma)
        prev = P.sets.get(rp.name)
        if prev is not None and prev.kind != "rateParam":
            raise InputError(f"rateParam {rp.name}: the name is already a {prev.kind} nuisance",
                             source=src, location=f"line {rp.line}")
        P.add(rp.name, rp.init, lo, hi, kind="rateParam", frozen=rp.name in card.frozen)
        for j in cols:
            factors[j].append(_param(rp.name))
    for name, p in params_by_name.items():
        lo, hi = p.range if p.range else (p.mean - 4 * p.sigma, p.mean + 4 * p.sigma)
        if name not in P.sets:
            P.add(name, p.mean, lo, hi, kind="param", frozen=name in card.frozen)
        P.constraints.append((name, "normal", p.mean, p.sigma))
    for rp, cols in formula_rps:
        node = _formula(rp, P, src)
        for j in cols:
            factors[j].append(node)

    # ---- column yields ----------------------------------------------------------------------------------
    norm: dict[int, Node | None] = {}
    for j, c in enumerate(card.columns):
        norm[j] = _mul(factors[j])
        auto = card.auto_mc_for(c.bin)
        if j in shape_systs and auto is not None and auto.hist_mode == 2:
            # CMSHistFunc hist_mode 2: the templates themselves are morphed, normalisation
            # included (no separate kappa term)
            base[j] = _morph_absolute(nominal[j], shape_systs[j], templ[j][0])
            norm[j] = _mul(factors[j])
            continue
        if j in shape_systs:
            base[j] = _morph(nominal[j], card.columns[j], shape_systs[j], templ[j][0])
            for name, scale, up, down, _ in shape_systs[j]:
                k_up, k_dn = up.sum() / templ[j][0].sum(), down.sum() / templ[j][0].sum()
                if abs(k_up - 1) < 1e-3 and abs(k_dn - 1) < 1e-3:
                    continue
                th = _param(name) if scale == 1.0 else Node(Op.MUL, (_const(scale), _param(name)))
                norm_factor = asym_lnn(th, k_dn, k_up)
                factors[j].append(norm_factor)
            norm[j] = _mul(factors[j])
        else:
            base[j] = _const(nominal[j][0]) if j not in templ else _const(nominal[j])

    # ---- channels: sums, autoMCStats ---------------------------------------------------------------
    chan_rates, layout, main, start = [], [], [], 0
    for b in card.bins:
        cols = [j for j in card.processes(b) if card.rates[j] != 0 or j in templ]
        n = nb[b]
        terms = []
        for j in cols:
            y = _mul([base[j], norm[j]]) if norm[j] is not None else base[j]
            if n > 1 and base[j].size <= 1 and y.size <= 1:
                y = Node(Op.MUL, (y, _const(np.ones(n))))
            terms.append(y)
        auto = card.auto_mc_for(b)
        if auto is not None and n >= 1:
            terms.extend(_auto_mc(card, b, cols, nominal, errors, norm, auto, P))
        total = terms[0] if len(terms) == 1 else Node(Op.ADD, tuple(terms))
        if n > 1 and total.size <= 1:
            total = Node(Op.MUL, (total, _const(np.ones(n))))
        chan_rates.append(total)
        layout.append(Channel(b, start, start + n))
        main.extend(data[b].tolist())
        start += n
    n_main = start
    rate = chan_rates[0] if len(chan_rates) == 1 else Node(Op.CONCAT, tuple(chan_rates))
    nodes = [Node(Op.POISSON, (rate,), {"index": Const(np.arange(n_main))})]
    aux: list[float] = []
    for name, kind, centre, width in P.constraints:
        ps = P.sets[name]
        idx = Const(np.arange(n_main + len(aux), n_main + len(aux) + ps.size))
        x = _param(name) if ps.scalar else _param(name, ps.size)
        aux.extend([centre] * ps.size)
        if kind == "normal":
            nodes.append(Node(Op.GAUSS, (x,), {"index": idx, "sigma": Const(np.array(width) if ps.scalar
                                                                              else np.full(ps.size, width))}))
        else:
            nodes.append(Node(Op.POISSON_AUX, (x,), {"index": idx, "tau": Const(np.array(width) if ps.scalar
                                                                                  else np.full(ps.size, width))}))
    meta = (("format", "datacard"), ("conventions", "combine"))
    return Module(params=tuple(P.sets.values()), data=Const(np.array(main + aux, dtype=float)),
                  terms=tuple(nodes), channels=tuple(layout), n_main=n_main, poi=POI, meta=meta)


def _match(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) if "*" in pattern or "?" in pattern else pattern == name


def _formula(rp, P: _Params, src: str) -> Node:
    """rateParam NAME bin proc FORMULA args: RooFormulaVar's @0, @1, ... -> an expr node."""
    text = re.sub(r"@(\d+)", r"x\1", rp.formula)
    text = text.replace("TMath::Exp", "exp").replace("TMath::Log", "log").replace("TMath::Sqrt", "sqrt") \
               .replace("TMath::Power", "pow").replace("TMath::Abs", "abs")
    try:
        tree = expr.parse(text)
    except InputError as exc:
        raise InputError(f"rateParam {rp.name}: {exc.message}", source=src, location=f"line {rp.line}") from None
    used = expr.variables(tree)
    for v in used:
        if not re.fullmatch(r"x\d+", v) or int(v[1:]) >= len(rp.args):
            raise InputError(f"rateParam {rp.name}: the formula uses {v!r} but has {len(rp.args)} arguments "
                             f"({', '.join(rp.args)})", source=src, location=f"line {rp.line}")
    args = []
    for a in rp.args:
        if a not in P.sets:
            raise InputError(f"rateParam {rp.name}: argument {a!r} is not a parameter of the card (declare it "
                             "with rateParam, param or extArg)", source=src, location=f"line {rp.line}")
        args.append(_param(a))
    if not args:
        raise InputError(f"rateParam {rp.name}: a formula needs arguments", source=src, location=f"line {rp.line}")
    return Node(Op.EXPR, tuple(args), {"expr": expr.to_text(tree)})


def _morph(nom: np.ndarray, col, systs, raw_nom: np.ndarray) -> Node:
    """Unit-normalised fractions morphed by every shape systematic (code 4p per bin), floored,
    renormalised, times the column's nominal integral. shapeN (datacards.md 5.4): the same
    morph of ln f, with d+- = ln(f+-/f0), exponentiated (bins empty in the nominal stay 0)."""
    total = float(nom.sum())
    f0 = raw_nom / raw_nom.sum()
    logs = {s[4] for s in systs}
    if len(logs) > 1:
        raise InputError(f"process {col.process} in {col.bin} has both shape and shapeN systematics: one "
                         "morphing (linear or log) per process is supported")
    log = logs.pop()
    live = f0 > 0
    g0 = np.log(np.where(live, f0, 1.0)) if log else f0
    shifts = []
    for name, scale, up, down, _ in systs:
        fu = up / up.sum() if up.sum() > 0 else f0
        fd = down / down.sum() if down.sum() > 0 else f0
        if log:
            fu, fd = np.log(np.where(live, fu, 1.0)), np.log(np.where(live, fd, 1.0))
        th = _param(name) if scale == 1.0 else Node(Op.MUL, (_const(scale), _param(name)))
        shifts.append(Node(Op.INTERP_SHIFT, (th,), {"code": "4p", "lo": Const(fd), "nom": Const(g0), "hi": Const(fu)}))
    frac = Node(Op.ADD, (_const(g0), *shifts))
    if log:
        floored = Node(Op.EXPR, (frac, _const(live.astype(float))), {"expr": "x1 * exp(x0)"})
    else:
        floored = Node(Op.EXPR, (frac,), {"expr": f"max(x0, {FLOOR!r})"})
    n = f0.size
    s = Node(Op.SEGMENT_SUM, (floored,), {"offsets": Const(np.array([0, n]))})
    s_b = Node(Op.GATHER, (s,), {"index": Const(np.zeros(n, dtype=np.int64))})
    return Node(Op.EXPR, (floored, s_b, _const(total)), {"expr": "x2 * x0 / x1"})


def _morph_absolute(nom: np.ndarray, systs, raw_nom: np.ndarray) -> Node:
    """Templates morphed as they are (code 4p per bin), scaled as the nominal, floored at 0."""
    scale = float(nom.sum() / raw_nom.sum()) if raw_nom.sum() > 0 else 1.0
    shifts = []
    if any(s[4] for s in systs):
        raise InputError("shapeN with autoMCStats hist_mode 2 (absolute templates) is not supported")
    for name, sc, up, down, _ in systs:
        th = _param(name) if sc == 1.0 else Node(Op.MUL, (_const(sc), _param(name)))
        shifts.append(Node(Op.INTERP_SHIFT, (th,), {"code": "4p", "lo": Const(down * scale), "nom": Const(nom),
                                                    "hi": Const(up * scale)}))
    return Node(Op.EXPR, (Node(Op.ADD, (_const(nom), *shifts)),), {"expr": "max(x0, 0)"})


def _auto_mc(card: Card, b: str, cols, nominal, errors, norm, auto, P: _Params) -> list[Node]:
    """Barlow-Beeston-lite terms of channel b (datacards.md §5.6)."""
    if auto.threshold < 0:
        return []
    n = max(nominal[j].size for j in cols)
    sig = {j: card.columns[j].signal for j in cols}
    counted = [j for j in cols if auto.include_signal or not sig[j]]
    out = []
    gauss_bins, per_proc = [], []
    for i in range(n):
        ntot = sum(float(np.broadcast_to(nominal[j], (n,))[i]) for j in counted)
        e2 = sum(float(np.broadcast_to(errors[j], (n,))[i]) ** 2 for j in counted)
        if e2 <= 0:
            continue
        neff = round(ntot**2 / e2)
        if neff > auto.threshold:
            gauss_bins.append(i)
        else:
            for j in cols:
                nj = float(np.broadcast_to(nominal[j], (n,))[i])
                ej = float(np.broadcast_to(errors[j], (n,))[i])
                if nj > 0 and ej > 0:
                    per_proc.append((i, j, nj, ej))
    if gauss_bins:
        name = f"prop_bin{b}"
        m = len(gauss_bins)
        P.add(name, 0.0, -7.0, 7.0, kind="autoMCStats", n=m)
        P.constraints.append((name, "normal", 0.0, 1.0))
        # delta_b = sqrt(sum_p (e_pb N_p)^2), every process (signal included)
        parts = []
        for j in cols:
            e = np.broadcast_to(errors[j], (n,)).astype(float)
            if not np.any(e > 0):
                continue
            parts.append(_mul([_const(e), norm[j]]) if norm[j] is not None else _const(e))
        if parts:
            text = "sqrt(" + " + ".join(f"x{q} ** 2" for q in range(len(parts))) + ")"
            delta = Node(Op.EXPR, tuple(parts), {"expr": text})
            index = np.full(n, m, dtype=np.int64)
            index[gauss_bins] = np.arange(m)
            nu = Node(Op.GATHER, (Node(Op.CONCAT, (_param(name, m), _const(np.zeros(1)))),), {"index": Const(index)})
            out.append(Node(Op.MUL, (nu, delta)))
    for i, j, nj, ej in per_proc:
        pname = f"prop_bin{b}_bin{i}_{card.columns[j].process}"
        neff_p = nj**2 / ej**2
        if ej > nj or neff_p >= auto.threshold:
            P.add(pname, 1.0, max(0.0, 1 - 7 * ej / nj), 1 + 7 * ej / nj, kind="autoMCStats")
            P.constraints.append((pname, "normal", 1.0, ej / nj))
        else:
            P.add(pname, 1.0, 0.0, 1 + 10 * math.sqrt(1 / neff_p) + 5, kind="autoMCStats")
            P.constraints.append((pname, "poisson", neff_p, neff_p))
        # the extra yield (v - 1) * n_pb in bin i only
        onehot = np.zeros(n)
        onehot[i] = nj
        extra = Node(Op.EXPR, (_param(pname), _const(onehot)), {"expr": "(x0 - 1) * x1"})
        out.append(_mul([extra, norm[j]]) if norm[j] is not None else extra)
    return out
