"""Lowering a HistFactory AST to IR, with pyhf's semantics, parameter order and data layout.

Reference: ../shared/docs/formats/histfactory.md (sections 2-6). Per sample the rate is

    nu = (nominal + sum of histosys shifts) * product of (normfactor, lumi, normsys,
          shapefactor, shapesys, staterror) factors

channels are concatenated in sorted-name order, and every constrained parameter set gets a
Gaussian or Poisson constraint term whose auxiliary data follow the main data.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from tweed.compiler.frontends.histfactory.ast import Channel as AstChannel
from tweed.compiler.frontends.histfactory.ast import Measurement, Modifier, Workspace
from tweed.errors import InputError
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op

# pyhf's parameter groups, in order (histfactory.md 5.2).
TYPE_ORDER = ("histosys", "lumi", "normfactor", "normsys", "shapefactor", "shapesys", "staterror")

NORMSYS_CODES = ("0", "1", "2", "4")
HISTOSYS_CODES = ("0", "2", "4", "4p")


def normalize_code(kind: str, code: str | int) -> str:
    """'code4', '4', 4 -> '4'; checked against the codes the modifier type supports."""
    text = str(code).strip().lower()
    text = text[4:] if text.startswith("code") else text
    allowed = NORMSYS_CODES if kind == "normsys" else HISTOSYS_CODES
    if text not in allowed:
        names = ", ".join("code" + c for c in allowed)
        raise InputError(f"unknown {kind} interpolation code {code!r}: expected one of {names}")
    return text


@dataclass(frozen=True)
class InterpCodes:
    """Interpolation code per modifier type (pyhf's defaults: normsys code4, histosys code4p)."""

    normsys: str = "4"
    histosys: str = "4p"

    @classmethod
    def of(cls, normsys: str | None = None, histosys: str | None = None) -> "InterpCodes":
        return cls(
            normalize_code("normsys", normsys or "4"), normalize_code("histosys", histosys or "4p")
        )


UNDEFINED = "undefined"


@dataclass
class _Req:
    """pyhf's 'required parameter set' of one modifier type for one name."""

    type: str
    constraint: str  # "none" | "normal" | "poisson"
    n: int
    scalar: bool
    inits: tuple | None | str
    bounds: tuple | None | str
    fixed: tuple[bool, ...]
    auxdata: tuple | None | str = UNDEFINED
    sigmas: tuple | None | str = UNDEFINED
    factors: tuple | None | str = UNDEFINED
    first_path: str = ""
    extra: dict = field(default_factory=dict)

    def signature(self):
        return (self.constraint, self.n, self.scalar, self.inits, self.bounds, self.fixed,
                self.auxdata, self.sigmas, self.factors)


def _req_for(mod: Modifier, sample_data: tuple[float, ...]) -> _Req:
    t, n = mod.type, len(sample_data)
    if t == "normfactor":
        return _Req(t, "none", 1, True, (1.0,), ((0.0, 10.0),), (False,))
    if t == "shapefactor":
        return _Req(t, "none", n, False, (1.0,) * n, ((0.0, 10.0),) * n, (False,) * n)
    if t == "lumi":
        return _Req(t, "normal", 1, True, None, None, (False,), auxdata=None, sigmas=None)
    if t in ("normsys", "histosys"):
        return _Req(t, "normal", 1, True, (0.0,), ((-5.0, 5.0),), (False,), auxdata=(0.0,))
    if t == "shapesys":
        valid = [nom > 0 and unc > 0 for nom, unc in zip(sample_data, mod.data)]
        tau = tuple(nom**2 / unc**2 if ok else 1.0 for ok, nom, unc in zip(valid, sample_data, mod.data))
        return _Req(t, "poisson", n, False, (1.0,) * n, ((1e-10, 10.0),) * n,
                    tuple(not v for v in valid), auxdata=tau, factors=tau)
    raise AssertionError(t)


def _staterror_reqs(chans: list[AstChannel], source: str) -> dict[str, tuple[_Req, dict[str, int]]]:
    """Per staterror name: the requirement and the parameter offset of every channel it spans."""
    carriers: dict[str, dict[str, list]] = {}
    for c in chans:
        for s in sorted(c.samples, key=lambda s: s.name):
            for m in s.modifiers:
                if m.type == "staterror":
                    carriers.setdefault(m.name, {}).setdefault(c.name, []).append((s, m))
    out = {}
    for name in sorted(carriers):
        by_channel = carriers[name]
        sample_sets = {ch: frozenset(s.name for s, _ in v) for ch, v in by_channel.items()}
        first = next(iter(sample_sets.values()))
        for ch, names in sample_sets.items():
            if names != first:
                _, m = by_channel[ch][0]
                raise InputError(
                    f"staterror {name!r} spans several channels but is carried by different samples "
                    f"in each ({sorted(first)} vs {sorted(names)}); pyhf requires the same samples",
                    source=source,
                    location=m.path,
                )
        sigmas, fixed, offsets, k = [], [], {}, 0
        for c in chans:
            if c.name not in by_channel:
                continue
            offsets[c.name] = k
            k += c.nbins
            pairs = by_channel[c.name]
            for b in range(c.nbins):
                total = sum(s.data[b] for s, _ in pairs)
                rel2 = sum((m.data[b] / total) ** 2 if total > 0 else 0.0 for _, m in pairs)
                sig = math.sqrt(rel2)
                fixed.append(sig == 0)
                sigmas.append(1.0 if sig == 0 else sig)
        path = next(iter(by_channel.values()))[0][1].path
        req = _Req("staterror", "normal", k, False, (1.0,) * k, ((1e-10, 10.0),) * k,
                   tuple(fixed), auxdata=(1.0,) * k, sigmas=tuple(sigmas), first_path=path)
        out[name] = (req, offsets)
    return out


def _apply_config(name: str, req: _Req, cfg, source: str) -> _Req:
    """Measurement parameter config overrides (pyhf's reduce_paramsets_requirements)."""
    if cfg is None:
        return req
    req = dataclasses.replace(req)  # the requirement may be cached with its sample: copy
    for key in ("inits", "bounds", "auxdata", "sigmas", "factors"):
        value = getattr(cfg, key)
        if value is None:
            continue
        if getattr(req, key) == UNDEFINED:
            raise InputError(
                f"parameter {name!r} ({req.type}) does not use {key!r}", source=source,
                location=f"{cfg.path}/{key}",
            )
        if len(value) != req.n:
            raise InputError(
                f"{key} of parameter {name!r} has {len(value)} entries, expected {req.n}",
                source=source, location=f"{cfg.path}/{key}",
            )
        setattr(req, key, tuple(value))
    if cfg.fixed is not None:
        req.fixed = (cfg.fixed,) * req.n
    return req


def _check_complete(name: str, req: _Req, cfg, meas: Measurement, source: str) -> None:
    for key in ("inits", "bounds", "auxdata", "sigmas"):
        if getattr(req, key) is None:
            raise InputError(
                f"modifier {name!r} ({req.type}) needs {key} from a parameter config named "
                f"{name!r} in measurement {meas.name!r}",
                source=source,
                location=f"{meas.path}/config/parameters",
            )
    for i, (x, (lo, hi)) in enumerate(zip(req.inits, req.bounds)):
        if not lo <= x <= hi:
            where = f"{cfg.path}/inits/{i}" if cfg is not None and cfg.inits else req.first_path
            raise InputError(
                f"init {x} of parameter {name!r} is outside its bounds [{lo}, {hi}]",
                source=source, location=where,
            )


class _SampleCache:
    """Results per Sample object, for the samples of the last two workspaces lowered.

    The parser hands out the same Sample object for the same content (ast._SAMPLES), so a
    signal scan finds every background sample here. Entries hold the Sample, so its id is
    not reused while the entry lives."""

    def __init__(self):
        self.current: dict[tuple, tuple] = {}
        self.previous: dict[tuple, tuple] = {}

    def get(self, key: tuple):
        hit = self.current.get(key) or self.previous.get(key)
        if hit is not None:
            self.current[key] = hit
            return hit[1]
        return None

    def put(self, key: tuple, sample, value) -> None:
        self.current[key] = (sample, value)

    def next_workspace(self) -> None:
        self.previous, self.current = self.current, {}

    def clear(self) -> None:
        self.current, self.previous = {}, {}


_REQS = _SampleCache()
_RATES = _SampleCache()


def _sample_reqs(s) -> tuple:
    """(modifier, requirement) of a sample's non-staterror modifiers, in pyhf's order.
    Requirements are shared with the cache: _apply_config copies before it changes one."""
    key = (id(s),)
    out = _REQS.get(key)
    if out is None:
        pairs = []
        for m in sorted(s.modifiers, key=lambda m: (m.name, m.type)):
            if m.type == "staterror":
                continue
            req = _req_for(m, s.data)
            req.first_path = m.path
            pairs.append((m, req))
        out = tuple(pairs)
        _REQS.put(key, s, out)
    return out


def _collect(chans, ws: Workspace, meas: Measurement):
    """Parameter sets in pyhf order: (name, requirement, staterror channel offsets)."""
    source = ws.source
    samples_sorted = {c.name: sorted(c.samples, key=lambda s: s.name) for c in chans}
    groups: dict[str, dict[str, _Req]] = {t: {} for t in TYPE_ORDER}
    shapesys_seen: dict[str, str] = {}
    for c in chans:
        for s in samples_sorted[c.name]:
            for m, req in _sample_reqs(s):
                if m.type == "shapesys":
                    if m.name in shapesys_seen:
                        raise InputError(
                            f"shapesys {m.name!r} is used twice (also at {shapesys_seen[m.name]}); "
                            "a shapesys cannot be shared",
                            source=source, location=m.path,
                        )
                    shapesys_seen[m.name] = m.path
                prev = groups[m.type].get(m.name)
                if prev is None:
                    groups[m.type][m.name] = req
                elif m.type == "shapefactor" and prev.n != req.n:
                    raise InputError(
                        f"shapefactor {m.name!r} is shared by channels with {prev.n} and {req.n} bins",
                        source=source, location=m.path,
                    )
    stat = _staterror_reqs(chans, source)
    groups["staterror"] = {name: req for name, (req, _) in stat.items()}
    configs = {p.name: p for p in meas.parameters}
    ordered: list[tuple[str, _Req]] = []
    placed: dict[str, _Req] = {}
    for t in TYPE_ORDER:
        for name, req in groups[t].items():
            if name in placed:
                other = placed[name]
                if other.signature() != req.signature():
                    raise InputError(
                        f"modifier name {name!r} is used as {other.type} and as {req.type} with "
                        "incompatible parameter settings; use distinct names",
                        source=source, location=req.first_path,
                    )
                continue
            placed[name] = req
            ordered.append((name, req))
    out = []
    for name, req in ordered:
        cfg = configs.get(name)
        req = _apply_config(name, req, cfg, source)
        _check_complete(name, req, cfg, meas, source)
        out.append((name, req))
    return out, {name: offs for name, (_, offs) in stat.items()}


def _check_interp(m: Modifier, nominal: tuple[float, ...], codes: InterpCodes, source: str) -> None:
    if m.type == "normsys" and codes.normsys in ("1", "4"):
        for key in ("lo", "hi"):
            if m.data[key] <= 0:
                raise InputError(
                    f"normsys {m.name!r} has {key}={m.data[key]}; interpolation code{codes.normsys} "
                    "needs positive factors", source=source, location=f"{m.path}/data/{key}",
                )
    if m.type == "histosys" and codes.histosys == "4":
        for key in ("lo_data", "hi_data"):
            for b, (x, nom) in enumerate(zip(m.data[key], nominal)):
                if nom > 0 and x <= 0:
                    raise InputError(
                        f"histosys {m.name!r} template is {x} in bin {b}; code4 needs positive "
                        "templates", source=source, location=f"{m.path}/data/{key}/{b}",
                    )


def _sample_rate(c, s, stat_offsets, codes, source) -> Node:
    stat = tuple((m.name, stat_offsets[m.name][c.name]) for m in s.modifiers if m.type == "staterror")
    key = (id(s), c.name, c.nbins, codes, stat)
    node = _RATES.get(key)
    if node is None:
        node = _build_sample_rate(c, s, stat_offsets, codes, source)
        _RATES.put(key, s, node)
    return node


def _build_sample_rate(c, s, stat_offsets, codes, source) -> Node:
    nominal = Node(Op.CONST, (), {"value": Const(np.array(s.data, dtype=float))})
    shifts, factors = [], []
    for m in sorted(s.modifiers, key=lambda m: (m.name, m.type)):
        _check_interp(m, s.data, codes, source)
        t = m.type
        if t in ("normfactor", "lumi"):
            factors.append(Node(Op.PARAM, (), {"name": m.name}))
        elif t == "normsys":
            alpha = Node(Op.PARAM, (), {"name": m.name})
            attrs = {"code": codes.normsys, "lo": Const(m.data["lo"]), "hi": Const(m.data["hi"])}
            factors.append(Node(Op.INTERP_FACTOR, (alpha,), attrs))
        elif t == "histosys":
            alpha = Node(Op.PARAM, (), {"name": m.name})
            attrs = {
                "code": codes.histosys,
                "lo": Const(np.array(m.data["lo_data"], dtype=float)),
                "nom": nominal.attr("value"),
                "hi": Const(np.array(m.data["hi_data"], dtype=float)),
            }
            shifts.append(Node(Op.INTERP_SHIFT, (alpha,), attrs))
        elif t in ("shapefactor", "shapesys"):
            factors.append(Node(Op.PARAM, (), {"name": m.name, "start": 0, "stop": c.nbins}))
        elif t == "staterror":
            k = stat_offsets[m.name][c.name]
            factors.append(Node(Op.PARAM, (), {"name": m.name, "start": k, "stop": k + c.nbins}))
    base = Node(Op.ADD, (nominal, *shifts)) if shifts else nominal
    return Node(Op.MUL, (base, *factors)) if factors else base


def sample_rates(ws: Workspace, module: Module, measurement: str | None = None,
                 codes: InterpCodes = InterpCodes()) -> dict[str, dict[str, Node]]:
    """The expected-rate node of every sample, by channel (for per-sample yields in plots).

    Built as lower() builds them (hash-consing returns the very same nodes)."""
    meas = ws.measurement(measurement)
    chans = sorted(ws.channels, key=lambda c: c.name)
    _, stat_offsets = _collect(chans, ws, meas)
    return {c.name: {s.name: _sample_rate(c, s, stat_offsets, codes, ws.source)
                     for s in sorted(c.samples, key=lambda s: s.name)} for c in chans}


def lower(
    ws: Workspace,
    measurement: str | None = None,
    codes: InterpCodes = InterpCodes(),
    require_poi: bool = True,
) -> Module:
    """Workspace AST -> IR module (pyhf's parameter order and data layout)."""
    source = ws.source
    meas = ws.measurement(measurement)
    chans = sorted(ws.channels, key=lambda c: c.name)
    _REQS.next_workspace()
    _RATES.next_workspace()
    sets, stat_offsets = _collect(chans, ws, meas)
    params = tuple(
        ParamSet(
            name=name, inits=tuple(map(float, r.inits)),
            bounds=tuple((float(a), float(b)) for a, b in r.bounds),
            fixed=tuple(bool(f) for f in r.fixed), kind=r.type, scalar=r.scalar,
        )
        for name, r in sets
    )
    names = {p.name for p in params}
    poi = meas.poi
    if poi not in names:
        if require_poi:
            raise InputError(
                f"POI {poi!r} of measurement {meas.name!r} is not a parameter of the model "
                "(no modifier has that name)",
                source=source, location=f"{meas.path}/config/poi",
            )
        poi = None
    elif not dict((p.name, p) for p in params)[poi].scalar:
        raise InputError(
            f"POI {poi!r} is a per-bin parameter set; the POI must be a single parameter",
            source=source, location=f"{meas.path}/config/poi",
        )

    # main rates, channels in sorted order
    channel_rates, layout, main_data, start = [], [], [], 0
    for c in chans:
        rates = [_sample_rate(c, s, stat_offsets, codes, source)
                 for s in sorted(c.samples, key=lambda s: s.name)]
        channel_rates.append(rates[0] if len(rates) == 1 else Node(Op.ADD, tuple(rates)))
        layout.append(Channel(c.name, start, start + c.nbins))
        main_data.extend(ws.observations[c.name])
        start += c.nbins
    n_main = start
    rate = Node(Op.CONCAT, tuple(channel_rates))
    terms = [Node(Op.POISSON, (rate,), {"index": Const(np.arange(n_main))})]

    # constraints and auxiliary data, in parameter order
    aux = []
    for name, r in sets:
        if r.constraint == "none":
            continue
        idx = Const(np.arange(n_main + len(aux), n_main + len(aux) + r.n))
        aux.extend(r.auxdata)
        x = Node(Op.PARAM, (), {"name": name}) if r.scalar else Node(
            Op.PARAM, (), {"name": name, "start": 0, "stop": r.n})
        if r.constraint == "normal":
            sig = r.sigmas if isinstance(r.sigmas, tuple) else (1.0,) * r.n
            sigma = Const(np.array(sig if not r.scalar else sig[0], dtype=float))
            terms.append(Node(Op.GAUSS, (x,), {"index": idx, "sigma": sigma}))
        else:
            tau = Const(np.array(r.factors if not r.scalar else r.factors[0], dtype=float))
            terms.append(Node(Op.POISSON_AUX, (x,), {"index": idx, "tau": tau}))
    data = Const(np.array(main_data + list(aux), dtype=float))
    meta = (("format", "histfactory"), ("measurement", meas.name),
            ("interpolation", f"normsys=code{codes.normsys} histosys=code{codes.histosys}"))
    return Module(params=params, data=data, terms=tuple(terms), channels=tuple(layout),
                  n_main=n_main, poi=poi, meta=meta)
