"""HS3 JSON (docs/hs3.md) of a HistFactory workspace or a simplified likelihood, in the
dialect pyhs3 0.4.2 reads: one histfactory_dist per channel (or Poisson terms with
generic_function rates for simplified likelihoods), binned or inline data, one likelihood,
one analysis with its domain and initial values. Parameter names are the model's (pyhf's
"name[i]" for per-bin sets), so a file read back has the same parameter table.
"""

from __future__ import annotations

import numpy as np

import tweed
from tweed.errors import InputError
from tweed.ir.module import Module

HS3_VERSION = "0.2"


def _meta() -> dict:
    return {"hs3_version": HS3_VERSION, "packages": [{"name": "tweed", "version": tweed.__version__}]}


def hs3_name(name: str) -> str:
    """A parameter name usable in HS3 expressions: theta[3] -> theta_3."""
    return name.replace("[", "_").replace("]", "")


def _parameter_blocks(module: Module, lik: str, rename=None) -> tuple[list, list, list]:
    axes, pars = [], []
    names = [rename(n) for n in module.par_names] if rename else module.par_names
    lo_hi = module.bounds()
    inits, fixed = module.inits(), module.fixed()
    for i, n in enumerate(names):
        axes.append({"name": n, "min": float(lo_hi[i, 0]), "max": float(lo_hi[i, 1])})
        p = {"name": n, "value": float(inits[i])}
        if fixed[i]:
            p["const"] = True
        pars.append(p)
    domains = [{"name": "default_domain", "type": "product_domain", "axes": axes}]
    points = [{"name": "default_values", "parameters": pars}]
    analyses = [{"name": "analysis", "likelihood": lik, "domains": ["default_domain"], "init": "default_values",
                 "parameters_of_interest": [(rename or str)(module.poi)] if module.poi else []}]
    return domains, points, analyses


def from_histfactory(doc: dict, module: Module, measurement: str | None = None) -> dict:
    """A pyhf workspace document (patches applied) and its lowered module -> HS3."""
    meas = next((m for m in doc["measurements"] if measurement in (None, m["name"])), doc["measurements"][0])
    configs = {p["name"]: p for p in meas["config"].get("parameters", [])}
    for name, cfg in configs.items():
        if name != "lumi" and ("auxdata" in cfg or "sigmas" in cfg):
            kind = next((p.kind for p in module.params if p.name == name), "?")
            raise InputError(f"parameter {name} ({kind}) has auxdata/sigmas in the measurement: HS3's histfactory_dist "
                             "has no place for a shifted or rescaled constraint", location=f"/measurements/{name}")
    sets = {p.name: p for p in module.params}

    def comps(name: str, n: int) -> list[str]:
        ps = sets.get(name)
        if ps is None:
            return [f"{name}[{i}]" for i in range(n)]
        return ps.component_names()

    dists, data, aux = [], [], []
    obs = {o["name"]: o["data"] for o in doc["observations"]}
    for ch in sorted(doc["channels"], key=lambda c: c["name"]):
        nb = len(obs[ch["name"]])
        axes = [{"name": f"obs_x_{ch['name']}", "min": 0.0, "max": float(nb), "nbins": nb}]
        samples = []
        for s in sorted(ch["samples"], key=lambda s: s["name"]):
            errors = None
            mods = []
            for m in s["modifiers"]:
                t, name = m["type"], m["name"]
                if t == "normfactor":
                    mods.append({"name": name, "type": "normfactor", "parameter": name})
                elif t == "lumi":
                    mods.append({"name": "lumi", "type": "normfactor", "parameter": "lumi"})
                elif t == "normsys":
                    mods.append({"name": name, "type": "normsys", "parameter": name, "constraint": "Gauss",
                                 "data": {"hi": m["data"]["hi"], "lo": m["data"]["lo"],
                                          "interpolation": "code" + _code(module, "normsys")}})
                elif t == "histosys":
                    mods.append({"name": name, "type": "histosys", "parameter": name, "constraint": "Gauss",
                                 "data": {"hi": {"contents": list(m["data"]["hi_data"])},
                                          "lo": {"contents": list(m["data"]["lo_data"])},
                                          "interpolation": "code" + _code(module, "histosys")}})
                elif t == "shapesys":
                    mods.append({"name": name, "type": "shapesys", "parameters": comps(name, nb), "constraint": "Poisson",
                                 "data": {"vals": list(m["data"])}})
                elif t == "shapefactor":
                    mods.append({"name": name, "type": "shapefactor", "parameters": comps(name, nb)})
                elif t == "staterror":
                    errors = list(m["data"])
                    mods.append({"name": name, "type": "staterror", "parameters": _stat_names(sets, name, ch, doc),
                                 "constraint": "Gauss"})
            sample = {"name": s["name"], "data": {"contents": list(s["data"])}, "modifiers": mods}
            if errors is not None:
                sample["data"]["errors"] = errors
            samples.append(sample)
        dists.append({"name": f"model_{ch['name']}", "type": "histfactory_dist", "axes": axes, "samples": samples})
        data.append({"name": f"obsData_{ch['name']}", "type": "binned", "axes": axes, "contents": list(obs[ch["name"]])})
    if "lumi" in sets:
        cfg = configs.get("lumi", {})
        dists.append({"name": "lumi_constraint", "type": "gaussian_dist", "x": "lumi",
                      "mean": float((cfg.get("auxdata") or [1.0])[0]), "sigma": float((cfg.get("sigmas") or [0.0])[0])})
        aux.append("lumi_constraint")
    lik = {"name": "likelihood", "distributions": [d["name"] for d in dists if d["type"] == "histfactory_dist"],
           "data": [d["name"] for d in data]}
    if aux:
        lik["aux_distributions"] = aux
    domains, points, analyses = _parameter_blocks(module, "likelihood")
    return {"metadata": _meta(), "distributions": dists, "data": data, "likelihoods": [lik], "domains": domains,
            "parameter_points": points, "analyses": analyses}


def _code(module: Module, kind: str) -> str:
    text = module.meta_dict().get("interpolation", "normsys=code4 histosys=code4p")
    for part in text.split():
        k, _, v = part.partition("=")
        if k == kind:
            return v.removeprefix("code")
    return "4" if kind == "normsys" else "4p"


def _stat_names(sets, name, ch, doc) -> list[str]:
    """The staterror components of channel ch, as pyhf lays them out (a staterror set spans
    the channels that use its name, in channel order)."""
    ps = sets[name]
    names = ps.component_names()
    offset = 0
    for c in sorted(doc["channels"], key=lambda c: c["name"]):
        uses = any(m["type"] == "staterror" and m["name"] == name for s in c["samples"] for m in s["modifiers"])
        if not uses:
            continue
        n = len(c["samples"][0]["data"])
        if c["name"] == ch["name"]:
            return names[offset:offset + n]
        offset += n
    return names


def from_simplified(spec, module: Module) -> dict:
    """A simplified likelihood -> HS3. uncorrelated_background and poisson: one histfactory_dist
    (the background's sigma_i theta_i as per-bin linear histosys, unit Gaussian constraints),
    which pyhs3 reads. correlated_background and third_moment_expansion: Poisson terms whose
    means are generic functions, and a multivariate_normal_dist constraint (standard HS3;
    pyhs3 0.4.2 has no multivariate normal). Spey's positivity constraint is an optimiser
    setting, not part of the likelihood: HS3 has no place for it."""
    if spec.model not in ("uncorrelated_background", "correlated_background", "third_moment_expansion", "poisson"):
        raise InputError(f"the {spec.model} model is not expressible in HS3 here (supported: uncorrelated_background, "
                         "correlated_background, third_moment_expansion, poisson)")
    if spec.model == "poisson" and spec.uncertainties is not None:
        raise InputError("a poisson model with free per-bin shifts (uncertainties) is not expressible in HS3 here")
    if spec.signal is None or spec.signal_uncertainties:
        raise InputError("HS3 export of simplified likelihoods needs numeric signal yields without signal "
                         "uncertainties")
    from tweed.compiler.frontends.simplified import third_moment_coefficients

    n = spec.nbins
    poi = module.poi
    s, b = spec.signal, spec.background
    funcs, dists, data_vals = [], [], []
    theta = [f"theta_{i}" for i in range(n)]
    if spec.model == "third_moment_expansion":
        a, bq, c, rho = third_moment_coefficients(b, spec.covariance, spec.third_moment, spec.source)
    def r(v) -> str:
        return repr(float(v))

    if spec.model in ("uncorrelated_background", "poisson"):
        # one histfactory_dist: signal x mu, background + sigma_i theta_i as per-bin linear histosys
        axes = [{"name": "obs_x_sl", "min": 0.0, "max": float(n), "nbins": n}]
        bmods = []
        if spec.model == "uncorrelated_background":
            for i in range(n):
                up, dn = b.copy(), b.copy()
                up[i] += spec.uncertainties[i]
                dn[i] -= spec.uncertainties[i]
                bmods.append({"name": theta[i], "type": "histosys", "parameter": theta[i], "constraint": "Gauss",
                              "data": {"hi": {"contents": up.tolist()}, "lo": {"contents": dn.tolist()},
                                       "interpolation": "code0"}})
        dist = {"name": "model_sl", "type": "histfactory_dist", "axes": axes, "samples": [
            {"name": "signal", "data": {"contents": list(map(float, s))},
             "modifiers": [{"name": poi, "type": "normfactor", "parameter": poi}]},
            {"name": "background", "data": {"contents": list(map(float, b))}, "modifiers": bmods}]}
        data = [{"name": "obsData_sl", "type": "binned", "axes": axes, "contents": list(map(float, spec.observed))}]
        lik = {"name": "likelihood", "distributions": ["model_sl"], "data": ["obsData_sl"]}
        domains, points, analyses = _parameter_blocks(module, "likelihood", hs3_name)
        names = {hs3_name(x): x for x in module.par_names if hs3_name(x) != x}
        return {"metadata": _meta(), "distributions": [dist], "data": data, "likelihoods": [lik], "domains": domains,
                "parameter_points": points, "analyses": analyses, "misc": {"tweed": {"parameter_names": names}}}
    for i in range(n):
        if spec.model == "correlated_background":
            rate = f"{poi} * {r(s[i])} + {r(b[i])} + {r(np.sqrt(spec.covariance[i, i]))} * {theta[i]}"
        else:
            rate = f"{poi} * {r(s[i])} + {r(a[i])} + {r(bq[i])} * {theta[i]} + {r(c[i])} * {theta[i]}^2"
        funcs.append({"name": f"rate_{i}", "type": "generic_function", "expression": rate})
        dists.append({"name": f"pois_{i}", "type": "poisson_dist", "x": f"n_{i}", "mean": f"rate_{i}"})
        data_vals.append(float(spec.observed[i]))
    data = [{"name": f"obs_{i}", "type": "point", "value": v,
             "axes": [{"name": f"n_{i}", "min": 0.0, "max": float(max(10.0 * v, 100.0))}]}
            for i, v in enumerate(data_vals)]
    if spec.model == "correlated_background":
        sd = np.sqrt(np.diag(spec.covariance))
        rho = spec.covariance / np.outer(sd, sd)
    dists.append({"name": "theta_constraint", "type": "multivariate_normal_dist", "x": theta,
                  "mean": [0.0] * n, "covariances": np.asarray(rho).tolist()})
    aux = ["theta_constraint"]
    lik = {"name": "likelihood", "distributions": [f"pois_{i}" for i in range(n)],
           "data": [f"obs_{i}" for i in range(n)]}
    if aux:
        lik["aux_distributions"] = aux
    domains, points, analyses = _parameter_blocks(module, "likelihood", hs3_name)
    names = {hs3_name(n): n for n in module.par_names if hs3_name(n) != n}
    return {"metadata": _meta(), "distributions": dists, "functions": funcs, "data": data, "likelihoods": [lik],
            "domains": domains, "parameter_points": points, "analyses": analyses,
            "misc": {"tweed": {"parameter_names": names}}}
