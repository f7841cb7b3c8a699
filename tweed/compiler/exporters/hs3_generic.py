"""HS3 JSON of any IR module: the route for models that are not one HistFactory workspace
(datacards, combinations of several formats, reparametrised models).

Every main bin becomes a poisson_dist whose mean is a function of the parameters, paired with
a point datum; every auxiliary term a gaussian_dist, poisson_dist, lognormal_dist or
multivariate_normal_dist in the likelihood's aux_distributions; every unbinned term a
generic_dist of its observable (inside an extended mixture_dist when extended) paired with
its unbinned data. The expected rates are written node by node: sums and
products as HS3 `sum`/`product` functions, interpolations and expressions as `generic_function`
expression strings (piecewise codes through min/max, so no conditionals are needed). Numbers
are written with repr(), so a file read back gives the same NLL to rounding.
Parameter names that are no valid expression variables (pyhf's "gamma[3]") are written as
safe names and mapped back through misc.tweed.parameter_names.
"""

from __future__ import annotations

import re

import numpy as np

from tweed.compiler.exporters.hs3 import _meta
from tweed.errors import InputError
from tweed.ir.build import is_zero
from tweed.ir.interp_math import code4_coefficients
from tweed.ir.module import Module
from tweed.ir.node import Node
from tweed.ir.ops import Op

_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _num(x: float) -> str:
    x = float(x)
    if not np.isfinite(x):
        raise InputError(f"the value {x} is not expressible in an HS3 expression")
    return repr(x) if x >= 0 else f"({x!r})"


def _number_or_name(ref: str):
    try:
        return float(ref.strip("()"))
    except ValueError:
        return ref


class _Writer:
    def __init__(self, module: Module):
        self.module = module
        self.functions: list[dict] = []
        self.memo: dict[tuple[int, int], str] = {}
        self.ids: dict[int, int] = {}
        self.keep: list[Node] = []  # nodes whose id() keys the memo stay alive
        self.names: dict[str, str] = {}  # tweed name -> HS3 name
        used: set[str] = set()
        for name in module.par_names:
            safe = name if _SAFE.match(name) and not name.startswith("f__") else re.sub(r"\W", "_", name)
            if not re.match(r"[A-Za-z_]", safe):
                safe = "p_" + safe
            base, k = safe, 1
            while safe in used or safe.startswith("f__"):
                safe, k = f"{base}_{k}", k + 1
            used.add(safe)
            self.names[name] = safe
        self.offsets = module.offsets
        self.par_names = module.par_names
        self.observables: dict[int, str] = {}  # id of an unbinned term's points constant -> x


    # -- one element of a node: a number, a parameter name, or a function name ---------------------
    def elem(self, node: Node, i: int) -> str:
        if node.shape == ():
            i = 0
        key = (id(node), i)
        if key in self.memo:
            return self.memo[key]
        out = self._elem(node, i)
        self.memo[key] = out
        self.keep.append(node)
        return out

    def _function(self, node, i: int, kind: str, **body) -> str:
        nid = self.ids.setdefault(id(node), len(self.ids))
        name = f"f__{nid}_{i}"
        for key in ("summands", "factors"):  # sum/product entries: names, or JSON numbers
            if key in body:
                body[key] = [_number_or_name(v) for v in body[key]]
        self.functions.append({"name": name, "type": kind, **body})
        return name

    def k(self, value: float) -> str:
        """A model number inside an expression, as the name of a constant function: the
        expression texts then repeat across bins and samples, and a reader compiles (and
        differentiates) each distinct text once."""
        key = repr(float(value))
        if not hasattr(self, "const_names"):
            self.const_names = {}
        if key not in self.const_names:
            name = f"k__{len(self.const_names)}"
            self.const_names[key] = name
            self.functions.append({"name": name, "type": "generic_function", "expression": _num(value)})
        return self.const_names[key]

    def var(self, ref: str) -> str:
        """What elem() returned, as an expression variable (numbers as constant functions)."""
        v = _number_or_name(ref)
        return v if isinstance(v, str) else self.k(v)

    def name_of(self, ref: str) -> str:
        """A name for what elem() returned: numbers become constant functions (HS3 names a
        distribution's mean)."""
        if isinstance(_number_or_name(ref), str):
            return ref
        self.constants = getattr(self, "constants", 0) + 1
        name = f"f__const_{self.constants}"
        self.functions.append({"name": name, "type": "generic_function", "expression": ref})
        return name

    def _elem(self, node: Node, i: int) -> str:
        op = node.op
        if op is Op.CONST and id(node) in self.observables:  # the observable itself
            return self.observables[id(node)]
        if op is Op.CONST:
            a = node.attr("value").array
            return _num(a if a.ndim == 0 else a[i])
        if op is Op.PARAM:
            start = node.attr("start")
            if start is None:
                return self.names[self.par_names[self.offsets[node.attr("name")]]]
            return self.names[self.par_names[self.offsets[node.attr("name")] + start + i]]
        if op is Op.PARAMS:
            return self.names[self.par_names[i]]
        if op is Op.GATHER:
            return self.elem(node.args[0], int(node.attr("index").array[i]))
        if op in (Op.ADD, Op.MUL):
            parts = [self.elem(a, i) for a in node.args]
            kind, key = ("sum", "summands") if op is Op.ADD else ("product", "factors")
            return self._function(node, i, kind, **{key: parts})
        if op is Op.CONCAT:
            for a in node.args:
                n = 1 if a.shape == () else a.shape[0]
                if i < n:
                    return self.elem(a, i)
                i -= n
            raise AssertionError("concat index out of range")
        if op in (Op.SEGMENT_SUM, Op.SEGMENT_PROD):
            off = node.attr("offsets").array
            parts = [self.elem(node.args[0], j) for j in range(int(off[i]), int(off[i + 1]))]
            if not parts:
                return _num(0.0 if op is Op.SEGMENT_SUM else 1.0)
            if len(parts) == 1:
                return parts[0]
            kind, key = ("sum", "summands") if op is Op.SEGMENT_SUM else ("product", "factors")
            return self._function(node, i, kind, **{key: parts})
        if op is Op.EXPR:
            from tweed.ir import expr as irexpr

            args = {f"x{k}": self.var(self.elem(a, i)) for k, a in enumerate(node.args)}
            text = irexpr.to_text(irexpr.rename(irexpr.parse(node.attr("expr")), args))
            return self._function(node, i, "generic_function", expression=text)
        if op is Op.INTERP_FACTOR:
            return self._function(node, i, "generic_function", expression=self._factor(node, i))
        if op is Op.INTERP_SHIFT:
            return self._function(node, i, "generic_function", expression=self._shift(node, i))
        raise InputError(f"IR op {op.value!r} has no HS3 form")

    def _attr(self, node: Node, key: str, i: int) -> float:
        a = node.attr(key).array
        return float(a if a.ndim == 0 else a[i])

    # interpolation codes (tweed/ir/interp_math.py) as closed forms: c = alpha clamped to [-1, 1]
    def _factor(self, node: Node, i: int) -> str:
        code = node.attr("code")
        al = self.var(self.elem(node.args[0], i))
        lo, hi = self._attr(node, "lo", i), self._attr(node, "hi", i)
        c = f"min(max({al}, -1.0), 1.0)"
        if code == "0":
            return f"1.0 + {self.k(hi - 1.0)} * max({al}, 0.0) + {self.k(1.0 - lo)} * min({al}, 0.0)"
        if code == "1":
            return f"{self.k(hi)} ** max({al}, 0.0) * {self.k(lo)} ** (-min({al}, 0.0))"
        if code == "2":
            return "1.0 + " + self._quadratic(al, lo, 1.0, hi)
        if code == "4":
            coef = code4_coefficients(lo, hi)
            poly = " + ".join(f"{self.k(a)} * {c} ** {k}" for k, a in enumerate(coef, start=1))
            return f"(1.0 + {poly}) * {self.k(hi)} ** max({al} - 1.0, 0.0) * {self.k(lo)} ** max(-{al} - 1.0, 0.0)"
        raise InputError(f"interpolation code {code} has no HS3 form")

    def _quadratic(self, al: str, lo: float, nom: float, hi: float) -> str:
        a, b = 0.5 * (hi + lo) - nom, 0.5 * (hi - lo)
        c = f"min(max({al}, -1.0), 1.0)"
        return (f"({self.k(a)} * {c} ** 2 + {self.k(b)} * {c} + {self.k(b + 2 * a)} * max({al} - 1.0, 0.0)"
                f" + {self.k(b - 2 * a)} * min({al} + 1.0, 0.0))")

    def _shift(self, node: Node, i: int) -> str:
        code = node.attr("code")
        al = self.var(self.elem(node.args[0], i))
        lo, nom, hi = (self._attr(node, k, i) for k in ("lo", "nom", "hi"))
        c = f"min(max({al}, -1.0), 1.0)"
        if code == "0":
            return f"{self.k(hi - nom)} * max({al}, 0.0) + {self.k(nom - lo)} * min({al}, 0.0)"
        if code == "2":
            return self._quadratic(al, lo, nom, hi)
        if code == "4p":
            dp, dm = hi - nom, nom - lo
            s, a = 0.5 * (dp + dm), 0.0625 * (dp - dm)
            return (f"{c} * {self.k(s)} + {c} ** 2 * {self.k(a)} * (15.0 + {c} ** 2 * (-10.0 + 3.0 * {c} ** 2))"
                    f" + {self.k(dp)} * max({al} - 1.0, 0.0) + {self.k(dm)} * min({al} + 1.0, 0.0)")
        if code == "4":
            if nom == 0:
                return "0.0"
            coef = code4_coefficients(lo / nom, hi / nom)
            poly = " + ".join(f"{self.k(a)} * {c} ** {k}" for k, a in enumerate(coef, start=1))
            return (f"{self.k(nom)} * ((1.0 + {poly}) * {self.k(hi / nom)} ** max({al} - 1.0, 0.0)"
                    f" * {self.k(lo / nom)} ** max(-{al} - 1.0, 0.0) - 1.0)")
        raise InputError(f"interpolation code {code} has no HS3 form")


def from_module(module: Module) -> dict:
    """HS3 document of an IR module (before optimisation passes)."""
    if module.domain is not None:
        raise InputError("the model has domain constraints (a simplified likelihood's background >= 0), which "
                         "HS3 cannot state; export the simplified likelihood on its own (--to simplified or hs3)")
    w = _Writer(module)
    data = module.data.array
    n_main = module.n_main
    dists, lik_dists, lik_data, aux, data_docs = [], [], [], [], []
    aux_entries: list[tuple[int, dict]] = []
    main_entries: dict[int, str] = {}
    unbinned = []
    for t, term in enumerate(module.terms):
        arg = term.args[0]
        idx = term.attr("index").array.astype(int)
        if term.op is Op.UNBINNED:
            unbinned.append(term)
            continue
        if term.op is Op.MVNORMAL:
            k = idx.size
            P = term.attr("precision").array.reshape(k, k)
            cov = np.linalg.inv(P)
            cov = 0.5 * (cov + cov.T)
            xs = [w.elem(arg, j) for j in range(k)]
            aux_entries.append((int(idx[0]), {"name": f"mvn_{t}", "type": "multivariate_normal_dist", "x": xs,
                                              "mean": [float(v) for v in data[idx]],
                                              "covariances": cov.tolist()}))
            continue
        for j, d in enumerate(idx):
            mean = w.elem(arg, j)
            if term.op is Op.POISSON and d < n_main:
                main_entries[int(d)] = mean
            elif term.op is Op.POISSON:
                aux_entries.append((int(d), {"name": f"aux_{d}", "type": "poisson_dist", "mean": mean,
                                             "x": float(data[d])}))
            elif term.op is Op.POISSON_AUX:
                tau = float(term.attr("tau").array[j] if term.attr("tau").array.ndim else term.attr("tau").array)
                m = w._function(term, j, "product", factors=[mean, repr(tau)]) if tau != 1.0 else mean
                aux_entries.append((int(d), {"name": f"aux_{d}", "type": "poisson_dist", "mean": m,
                                             "x": float(data[d])}))
            elif term.op in (Op.GAUSS, Op.LOGNORMAL):
                s = term.attr("sigma").array
                kind, key = ("gaussian_dist", "mean") if term.op is Op.GAUSS else ("lognormal_dist", "mu")
                aux_entries.append((int(d), {"name": f"aux_{d}", "type": kind, key: mean,
                                             "x": float(data[d]), "sigma": float(s[j] if s.ndim else s)}))
            else:
                raise InputError(f"likelihood term {term.op.value!r} has no HS3 form")
    if sorted(main_entries) != list(range(n_main)):
        raise InputError("the model's main bins are not each the datum of one Poisson term: no HS3 form here")
    chan_of = {}
    for ch in module.channels:
        for b in range(ch.start, ch.stop):
            chan_of[b] = (ch.name, b - ch.start)
    for b in range(n_main):
        ch, k = chan_of.get(b, ("bin", b))
        name = f"{ch}_bin{k}"
        mean = w.name_of(main_entries[b])
        dists.append({"name": name, "type": "poisson_dist", "mean": mean, "x": f"obs_{name}"})
        data_docs.append({"name": f"obs_{name}", "type": "point", "value": float(data[b])})
        lik_dists.append(name)
        lik_data.append(f"obs_{name}")
    normalised = []
    for k, term in enumerate(unbinned):
        dist, datum = _unbinned(w, term, data, k)
        dists.extend(dist)
        normalised.append(dist[-1]["name"])
        data_docs.append(datum)
        lik_dists.append(dist[0]["name"])
        lik_data.append(datum["name"])
    for _, dist in sorted(aux_entries, key=lambda e: e[0]):
        if dist["type"] == "multivariate_normal_dist":
            dist["x"] = [w.name_of(v) for v in dist["x"]]
        else:
            key = "mu" if dist["type"] == "lognormal_dist" else "mean"
            dist[key] = w.name_of(dist[key])
        dists.append(dist)
        aux.append(dist["name"])
    lik = {"name": "likelihood", "distributions": lik_dists, "data": lik_data}
    if aux:
        lik["aux_distributions"] = aux
    from tweed.compiler.exporters.hs3 import _parameter_blocks

    domains, points, analyses = _parameter_blocks(module, "likelihood", rename=lambda n: w.names[n])
    doc = {"metadata": _meta(), "distributions": dists, "functions": w.functions, "data": data_docs,
           "likelihoods": [lik], "domains": domains, "parameter_points": points, "analyses": analyses}
    renamed = {v: k for k, v in w.names.items() if k != v}
    misc = {}
    if renamed:
        misc["parameter_names"] = renamed
    if normalised:  # Tweed reads these densities as they are; other readers normalise them again
        misc["normalised"] = normalised
    if misc:
        doc["misc"] = {"tweed": misc}
    return doc


def _find_const(root: Node, value) -> Node | None:
    """The constant node under root holding exactly `value` (an unbinned term's points)."""
    from tweed.ir.node import topo_order

    for node in topo_order([root]):
        if node.op is Op.CONST and node.attr("value") == value:
            return node
    return None


def _unbinned(w: "_Writer", term: Node, data: np.ndarray, k: int) -> tuple[list[dict], dict]:
    """An unbinned term as a generic_dist of its observable (in an extended mixture_dist when
    it is extended) and its unbinned data: the density written node by node as a function of x."""
    dens, rate = term.args
    pts = term.attr("points").array
    idx = term.attr("index").array.astype(int)
    events = term.attr("grid").array == 0
    obs = term.attr("observable")
    taken = set(w.names.values())
    name = obs if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", obs) and obs not in taken else f"obs_{k}"
    pnode = _find_const(dens, term.attr("points"))
    if pnode is None:
        raise InputError(f"unbinned term {k}: its density no longer reads the observable (folded by an "
                         "optimisation pass); export the model as read")
    w.observables[id(pnode)] = name
    lam = w.var(w.elem(dens, 0))
    datum = {"name": f"events_{k}", "type": "unbinned",
             "axes": [{"name": name, "min": float(term.attr("lo")), "max": float(term.attr("hi"))}],
             "entries": [[float(x)] for x in pts[events]]}
    wts = data[idx[events]]
    if np.any(wts != 1.0):
        datum["weights"] = [float(x) for x in wts]
    if is_zero(rate):  # not extended
        return [{"name": f"unbinned_{k}", "type": "generic_dist", "expression": lam}], datum
    nu = w.name_of(w.elem(rate, 0))
    pdf = {"name": f"unbinned_{k}_pdf", "type": "generic_dist", "expression": f"{lam} / {nu}"}
    mix = {"name": f"unbinned_{k}", "type": "mixture_dist", "extended": True, "summands": [pdf["name"]],
           "coefficients": [nu]}
    return [mix, pdf], datum
