"""merge-nuisances: several modules (any formats) -> one module, with their nuisance
parameters matched by name and by a correlation map (docs/combination.md).

Parameters are identified as LABEL:NAME. The map (YAML or JSON, tweed/specs/combine/map.json):

    poi: mu                        # the models' POIs become one parameter of this name
    rename:                        # regular expressions on LABEL:NAME, applied first
      - {match: "cms:CMS_(.*)", to: "cms:\\1"}
    same:                          # these are one parameter (named after the first)
      - [atlas:lumi, cms:lumi_13TeV]
    uncorrelated: [atlas:alpha_JES]  # never merged by name
    correlate:                     # partial correlation of two Gaussian-constrained parameters
      - {a: atlas:alpha_pdf, b: cms:pdf, rho: 0.5}
    prefer: {lumi: atlas}          # when merged constraints differ, whose is kept

Equal names (after renames) are merged unless listed as uncorrelated (the POIs too, unless
`poi: null`); networkx computes the
equivalence classes. Members of a class must have compatible constraints (the same kind,
width and centre): one constraint term is kept, the duplicates are dropped; a conflict is an
error naming both sides unless `prefer` says which wins. Bounds are intersected. Channel
names that clash are prefixed with their model's label. Partial correlation rho between a
and b (both Gaussian) is realised by a rotation: b is replaced by
c_b + rho s_b (a - c_a)/s_a + sqrt(1 - rho^2)(v - c_b), v the new parameter "b_ortho" with
b's constraint, so (a, b) is bivariate normal with correlation rho. With rho = +-1, b is a
function of a alone (one parameter in two parametrisations, e.g. ATLAS's lumi factor
1 +- 0.017 and a CMS lnN's theta): b and its constraint disappear.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from tweed.errors import InputError
from tweed.ir.module import Channel, Module, ParamSet
from tweed.ir.node import Const, Node, topo_order
from tweed.ir.ops import Op


@dataclass
class CorrelationMap:
    poi: str | None = "mu"  # None: keep the POIs apart (the first model's is the POI)
    rename: list[tuple[str, str]] = field(default_factory=list)
    same: list[list[str]] = field(default_factory=list)
    uncorrelated: set[str] = field(default_factory=set)
    correlate: list[tuple[str, str, float]] = field(default_factory=list)
    prefer: dict[str, str] = field(default_factory=dict)
    source: str = "<map>"


def load_map(obj, source: str = "<map>") -> CorrelationMap:
    """A CorrelationMap from a dict, or a YAML/JSON file path (validated against its schema)."""
    if not isinstance(obj, dict):
        from pathlib import Path

        import yaml

        source = str(obj)
        try:
            text = Path(obj).read_text()
        except OSError as exc:
            raise InputError(f"cannot read the correlation map: {exc.strerror}", source=source) from None
        try:
            obj = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark else None
            raise InputError(f"invalid YAML/JSON: {getattr(exc, 'problem', exc)}", source=source, location=where) from None
    from tweed.compiler.frontends.jsonschema_check import check

    check(obj, "combine", "1.0.0", "map.json", "correlation map", source)
    cm = CorrelationMap(source=source)
    if "poi" in obj:
        cm.poi = obj["poi"]
    cm.rename = [(r["match"], r["to"]) for r in obj.get("rename", [])]
    cm.same = [list(g) for g in obj.get("same", [])]
    cm.uncorrelated = set(obj.get("uncorrelated", []))
    cm.correlate = [(c["a"], c["b"], float(c["rho"])) for c in obj.get("correlate", [])]
    cm.prefer = dict(obj.get("prefer", {}))
    return cm


@dataclass
class CombineReport:
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # name, members
    renamed: list[tuple[str, str]] = field(default_factory=list)
    dropped_constraints: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)  # conflicts settled by `prefer`
    prefixed_channels: list[tuple[str, str]] = field(default_factory=list)
    correlated: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # LABEL:NAME -> name in the combined model
    channels: dict[str, str] = field(default_factory=dict)  # LABEL:CHANNEL -> channel name

    def lines(self) -> list[str]:
        out = [f"merged {n} <- {', '.join(m)}" for n, m in self.merged]
        out += [f"renamed {a} -> {b}" for a, b in self.renamed]
        out += [f"dropped duplicate constraint of {x}" for x in self.dropped_constraints]
        out += [f"conflict resolved: {x}" for x in self.resolved]
        out += [f"channel {a} -> {b}" for a, b in self.prefixed_channels]
        out += [f"correlated {x}" for x in self.correlated]
        return out

    def to_dict(self) -> dict:
        return {"merged": [{"name": n, "members": m} for n, m in self.merged],
                "renamed": [list(x) for x in self.renamed], "dropped_constraints": self.dropped_constraints,
                "resolved_conflicts": self.resolved,
                "prefixed_channels": [list(x) for x in self.prefixed_channels], "correlated": self.correlated}


def _constraints(m: Module) -> dict[str, tuple[Node, tuple]]:
    """Per parameter set constrained by a term whose argument is that set: (term, signature)."""
    out = {}
    for t in m.terms:
        if t.op is Op.POISSON or not t.args or t.args[0].op is not Op.PARAM:
            continue
        a = t.args[0]
        name = a.attr("name")
        aux = m.data.array[t.attr("index").array]
        if t.op is Op.GAUSS:
            sig = ("gauss", tuple(np.round(np.atleast_1d(t.attr("sigma").array), 12)), tuple(np.round(aux, 12)))
        elif t.op is Op.POISSON_AUX:
            sig = ("poisson", tuple(np.round(np.atleast_1d(t.attr("tau").array), 12)), tuple(np.round(aux, 12)))
        else:
            sig = ("mvnormal", t.attr("precision").digest, tuple(np.round(aux, 12)))
        out[name] = (t, sig)
    return out


def _describe(sig) -> str:
    kind, w, aux = sig

    def fmt(v):
        v = [float(x) for x in v]
        return f"{v[0]:g}" if len(v) == 1 else "[" + ", ".join(f"{x:g}" for x in v) + "]"

    if kind == "gauss":
        return f"Gaussian, sigma {fmt(w)}, centre {fmt(aux)}"
    if kind == "poisson":
        return f"Poisson, tau {fmt(w)}, observed {fmt(aux)}"
    return "multivariate normal"


def combine(modules: dict[str, Module], cmap: CorrelationMap | None = None) -> tuple[Module, CombineReport]:
    """One module from several (labels -> modules), and the merge report. The models' domains
    (Module.domain) are renamed and concatenated."""
    import networkx as nx

    cmap = cmap or CorrelationMap()
    report = CombineReport()
    src = cmap.source
    labels = list(modules)
    if len(labels) < 2:
        raise InputError("combine needs at least two models")
    qual: dict[str, tuple[str, ParamSet]] = {}
    local: dict[str, str] = {}  # qualified -> local name after renames
    for lab in labels:
        for p in modules[lab].params:
            q = f"{lab}:{p.name}"
            qual[q] = (lab, p)
            new = q
            for pat, to in cmap.rename:
                if re.fullmatch(pat, new):
                    new = re.sub(pat, to, new, count=1)
            if ":" in new:
                nl, nn = new.split(":", 1)
                if nl != lab:
                    raise InputError(f"rename {pat!r}: {q} would move to another model ({nl})", source=src)
            else:
                nn = new
            if nn != p.name:
                report.renamed.append((q, f"{lab}:{nn}"))
            local[q] = nn
    for name in list(cmap.uncorrelated) + [x for g in cmap.same for x in g] + \
            [x for c in cmap.correlate for x in c[:2]]:
        if name not in qual:
            known = ", ".join(list(qual)[:8])
            raise InputError(f"the map names {name!r}, which is no parameter of the models (LABEL:NAME; "
                             f"e.g. {known}, ...)", source=src)
    g = nx.Graph()
    g.add_nodes_from(qual)
    by_name: dict[str, list[str]] = {}
    pois = [f"{lab}:{modules[lab].poi}" for lab in labels if modules[lab].poi is not None]
    apart = set(cmap.uncorrelated) | (set(pois) if cmap.poi is None else set())
    for q, nn in local.items():
        if q not in apart:
            by_name.setdefault(nn, []).append(q)
    for members in by_name.values():
        for a, b in zip(members, members[1:]):
            g.add_edge(a, b)
    for grp in cmap.same:
        for a, b in zip(grp, grp[1:]):
            g.add_edge(a, b)
    if cmap.poi is not None:
        for a, b in zip(pois, pois[1:]):
            g.add_edge(a, b)

    # classes and their names
    cls_of: dict[str, int] = {}
    classes: list[list[str]] = []
    for comp in nx.connected_components(g):
        members = sorted(comp, key=lambda q: (labels.index(qual[q][0]), list(qual).index(q)))
        labs = [qual[q][0] for q in members]
        if len(set(labs)) != len(labs):
            dup = next(lab for lab in labs if labs.count(lab) > 1)
            two = [q for q in members if qual[q][0] == dup][:2]
            raise InputError(f"the map would merge two parameters of model {dup}: {two[0]} and {two[1]}",
                             source=src)
        sizes = {qual[q][1].size for q in members}
        if len(sizes) > 1:
            raise InputError(f"cannot merge {', '.join(members)}: they have different numbers of "
                             f"components ({sorted(sizes)})", source=src)
        for q in members:
            cls_of[q] = len(classes)
        classes.append(members)
    names: list[str] = []
    for members in classes:
        if cmap.poi is not None and any(q in pois for q in members):
            nm = cmap.poi
        else:
            nm = local[members[0]]
        names.append(nm)
    # disambiguate clashes between different classes: LABEL_NAME
    counts: dict[str, int] = {}
    for nm in names:
        counts[nm] = counts.get(nm, 0) + 1
    for k, members in enumerate(classes):
        if counts[names[k]] > 1 and len(members) == 1:
            names[k] = f"{qual[members[0]][0]}_{names[k]}"
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"two merged parameters would both be named {dup!r}: rename one", source=src)
    for k, members in enumerate(classes):
        if len(members) > 1:
            report.merged.append((names[k], members))
    rename_of = {q: names[cls_of[q]] for q in qual}
    report.names = dict(rename_of)

    # constraints: compatible, one kept per class
    cons = {lab: _constraints(modules[lab]) for lab in labels}
    drop: set[tuple[str, int]] = set()
    for k, members in enumerate(classes):
        if len(members) < 2:
            continue
        constrained = [(q, cons[qual[q][0]][qual[q][1].name]) for q in members
                       if qual[q][1].name in cons[qual[q][0]]]
        if len(constrained) < 2:
            continue
        keep = constrained[0]
        sigs = {c[1][1] for c in constrained}
        if len(sigs) > 1:
            want = cmap.prefer.get(names[k])
            if want is None:
                a, b = constrained[0], next(c for c in constrained if c[1][1] != constrained[0][1][1])
                raise InputError(
                    f"cannot merge {a[0]} ({_describe(a[1][1])}) with {b[0]} ({_describe(b[1][1])}): "
                    f"different constraints; say whose is kept with prefer: {{{names[k]}: LABEL}}", source=src)
            keep = next((c for c in constrained if qual[c[0]][0] == want), None)
            if keep is None:
                raise InputError(f"prefer {names[k]}: {want} is not one of the merged models", source=src)
            report.resolved.append(f"{names[k]}: constraint of {keep[0]} kept")
        for q, (term, _) in constrained:
            if q != keep[0]:  # nodes are hash-consed: two models can share one term object
                drop.add((qual[q][0], id(term)))
                report.dropped_constraints.append(q)

    # parameter table: the POI first, then in model order
    order: list[int] = []
    poi_cls = next((cls_of[q] for q in pois), None) if pois else None
    if poi_cls is not None:
        order.append(poi_cls)
    for lab in labels:
        for p in modules[lab].params:
            c = cls_of[f"{lab}:{p.name}"]
            if c not in order:
                order.append(c)
    params = []
    for c in order:
        members = classes[c]
        ps = [qual[q][1] for q in members]
        lo = np.max([[b[0] for b in p.bounds] for p in ps], axis=0)
        hi = np.min([[b[1] for b in p.bounds] for p in ps], axis=0)
        if np.any(lo > hi):
            raise InputError(f"cannot merge {', '.join(members)}: their ranges do not overlap", source=src)
        init = np.clip(np.array(ps[0].inits), lo, hi)
        fixed = tuple(bool(any(p.fixed[i] for p in ps)) for i in range(ps[0].size))
        params.append(ParamSet(names[c], tuple(map(float, init)), tuple(zip(map(float, lo), map(float, hi))),
                               fixed, kind=ps[0].kind, scalar=ps[0].scalar))

    # terms, data, channels
    n_main_total = sum(modules[lab].n_main for lab in labels)
    main_off, off = {}, 0
    for lab in labels:
        main_off[lab] = off
        off += modules[lab].n_main
    new_terms, main_data, aux_data = [], [], []
    channel_names = [c.name for lab in labels for c in modules[lab].channels]
    channels = []
    domain_parts = []
    for lab in labels:
        m = modules[lab]
        memo: dict[int, Node] = {}
        roots = list(m.terms) + ([m.domain] if m.domain is not None else [])
        for node in topo_order(roots):
            if node.op is Op.PARAM:
                nn = rename_of[f"{lab}:{node.attr('name')}"]
                if nn != node.attr("name"):
                    attrs = dict(node.attrs)
                    attrs["name"] = nn
                    memo[id(node)] = Node(Op.PARAM, (), attrs)
            elif node.args and any(id(a) in memo for a in node.args):
                memo[id(node)] = Node(node.op, tuple(memo.get(id(a), a) for a in node.args), node.attrs)
        main_data.extend(m.data.array[: m.n_main].tolist())
        for t in m.terms:
            if (lab, id(t)) in drop:
                continue
            t2 = memo.get(id(t), t)
            idx = t.attr("index").array
            new_idx = []
            for i in idx:
                if i < m.n_main:
                    new_idx.append(main_off[lab] + i)
                else:
                    new_idx.append(n_main_total + len(aux_data))
                    aux_data.append(float(m.data.array[i]))
            attrs = dict(t2.attrs)
            attrs["index"] = Const(np.array(new_idx, dtype=np.int64))
            new_terms.append(Node(t2.op, t2.args, attrs))
        for c in m.channels:
            nm = c.name
            if channel_names.count(c.name) > 1:
                nm = f"{lab}_{c.name}"
                report.prefixed_channels.append((f"{lab}:{c.name}", nm))
            channels.append(Channel(nm, main_off[lab] + c.start, main_off[lab] + c.stop))
            report.channels[f"{lab}:{c.name}"] = nm
        if m.domain is not None:
            domain_parts.append(memo.get(id(m.domain), m.domain))
    # Poisson terms first: keep one main term per model (the runtime reads rates from them)
    new_terms.sort(key=lambda t: 0 if t.op is Op.POISSON else 1)
    convs = {m.meta_dict().get("conventions", "pyhf") for m in modules.values()}
    meta = (("format", "combined"), ("models", ",".join(labels)),
            ("conventions", convs.pop() if len(convs) == 1 else "pyhf"))
    poi = names[poi_cls] if poi_cls is not None else None
    domain = None
    if domain_parts:
        domain = domain_parts[0] if len(domain_parts) == 1 else Node(Op.CONCAT, tuple(domain_parts))
    out = Module(params=tuple(params), data=Const(np.array(main_data + aux_data, dtype=float)),
                 terms=tuple(new_terms), channels=tuple(channels), n_main=n_main_total, poi=poi, meta=meta,
                 domain=domain)
    for a, b, rho in cmap.correlate:
        out = _correlate(out, rename_of[a], rename_of[b], rho, src)
        report.correlated.append(f"{rename_of[a]} ~ {rename_of[b]}: rho = {rho}")
    return out, report


def _correlate(m: Module, a: str, b: str, rho: float, src: str) -> Module:
    if not -1.0 <= rho <= 1.0:
        raise InputError(f"correlate {a}, {b}: rho must be in [-1, 1], got {rho}", source=src)
    cons = _constraints(m)
    for x in (a, b):
        ps = m.param_set(x)
        if not ps.scalar or x not in cons or cons[x][1][0] != "gauss":
            raise InputError(f"correlate: {x} must be a scalar parameter with a Gaussian constraint", source=src)
    if a == b:
        raise InputError(f"correlate: {a} with itself", source=src)
    (_, (_, sa, ca)), (_, (_, sb, cb)) = cons[a], cons[b]
    sa, ca, sb, cb = (float(v[0]) for v in (sa, ca, sb, cb))
    full = abs(rho) == 1.0  # b is a function of a: one parameter, two parametrisations
    v = f"{b}_ortho"
    text = f"{cb!r} + {rho * sb / sa!r} * (x0 - {ca!r})"
    args = [Node(Op.PARAM, (), {"name": a})]
    if not full:
        text += f" + {math.sqrt(1 - rho * rho)!r} * (x1 - {cb!r})"
        args.append(Node(Op.PARAM, (), {"name": v}))
    rot = Node(Op.EXPR, tuple(args), {"expr": text})
    memo: dict[int, Node] = {}
    for node in topo_order(list(m.terms) + ([m.domain] if m.domain is not None else [])):
        if node.op is Op.PARAM and node.attr("name") == b:
            memo[id(node)] = rot
        elif node.args and any(id(x) in memo for x in node.args):
            memo[id(node)] = Node(node.op, tuple(memo.get(id(x), x) for x in node.args), node.attrs)
    terms = []
    for t in m.terms:
        if t is cons[b][0]:
            if not full:  # b's constraint now constrains v
                terms.append(Node(t.op, (Node(Op.PARAM, (), {"name": v}),), t.attrs))
        else:
            terms.append(memo.get(id(t), t))
    if full:
        params = tuple(p for p in m.params if p.name != b)
    else:
        params = tuple(replace(p, name=v) if p.name == b else p for p in m.params)
    domain = None if m.domain is None else memo.get(id(m.domain), m.domain)
    return _compact(replace(m, params=params, terms=tuple(terms), domain=domain))


def _compact(m: Module) -> Module:
    """Drop auxiliary data no term reads and renumber the rest."""
    used = sorted({int(i) for t in m.terms for i in t.attr("index").array if i >= m.n_main})
    new_of = {old: m.n_main + k for k, old in enumerate(used)}
    if len(used) == m.data.array.size - m.n_main:
        return m
    terms = []
    for t in m.terms:
        idx = t.attr("index").array
        attrs = dict(t.attrs)
        attrs["index"] = Const(np.array([i if i < m.n_main else new_of[int(i)] for i in idx], dtype=np.int64))
        terms.append(Node(t.op, t.args, attrs))
    data = np.concatenate([m.data.array[: m.n_main], m.data.array[used]])
    return replace(m, terms=tuple(terms), data=Const(data))
