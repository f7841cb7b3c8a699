"""The HS3 dialect of ROOT's older JSON writer (ROOT <= 6.28, e.g. the rf515 tutorial file):
objects keyed by name instead of listed, `variables` instead of `axes`, likelihoods with
`dist`/`obs`, analyses with `likelihoods`/`pois`, parameter points as {name: {value}}, the
channel's `statError` block. normalise() rewrites it to the current layout."""

from __future__ import annotations

import copy


def is_legacy(doc: dict) -> bool:
    return isinstance(doc.get("distributions"), dict) or (
        "metadata" not in doc and "ROOT_internal" in (doc.get("misc") or {}))


def _axes(variables: dict) -> list[dict]:
    return [dict(v, name=k) for k, v in (variables or {}).items()]


def normalise(doc: dict) -> dict:
    d = copy.deepcopy(doc)
    out = {"metadata": {"hs3_version": "0.1", "packages": [{"name": "ROOT", "version": "legacy"}]}}
    dists = d.get("distributions") or {}
    if isinstance(dists, dict):
        dists = [dict(v, name=k) for k, v in dists.items()]
    for dist in dists:
        if "samples" in dist:
            dist.setdefault("type", "histfactory_dist")
            first = next((s for s in dist["samples"] if "variables" in (s.get("data") or {})), None)
            if first is not None and "axes" not in dist:
                dist["axes"] = _axes(first["data"]["variables"])
            for s in dist["samples"]:
                (s.get("data") or {}).pop("variables", None)
                for m in s.get("modifiers", []):
                    if m.get("type") in ("normsys", "histosys") and "parameter" not in m:
                        m["parameter"] = "alpha_" + m["name"]
            if "statError" in dist:
                dist["staterror"] = dist.pop("statError")
    out["distributions"] = dists
    data = d.get("data") or []
    if isinstance(data, dict):
        data = [dict(v, name=k) for k, v in data.items()]
    for datum in data:
        if "variables" in datum:
            datum["axes"] = _axes(datum.pop("variables"))
            datum.setdefault("type", "binned")
    out["data"] = data
    out["likelihoods"] = []
    for lk in d.get("likelihoods") or []:
        if "dist" in lk:
            out["likelihoods"].append({"name": lk["name"], "distributions": [lk["dist"]], "data": [lk["obs"]]})
        else:
            out["likelihoods"].append(lk)
    analyses = []
    for an in d.get("analyses") or []:
        lks = an.get("likelihoods")
        if lks is not None and "likelihood" not in an:
            name = an["name"] + "_likelihood"
            parts = [lk for lk in out["likelihoods"] if lk["name"] in lks]
            out["likelihoods"].append({"name": name, "distributions": [x for p in parts for x in p["distributions"]],
                                       "data": [x for p in parts for x in p["data"]]})
            an = {"name": an["name"], "likelihood": name, "parameters_of_interest": an.get("pois", [])}
        analyses.append(an)
    out["analyses"] = analyses
    doms = []
    for dm in d.get("domains") or []:
        if "variables" in dm:
            dm = {"name": dm["name"], "type": dm.get("type", "product_domain"), "axes": dm["variables"]}
        doms.append(dm)
    out["domains"] = doms
    points = []
    for pp in d.get("parameter_points") or []:
        if "parameters" not in pp:
            pars = [{"name": k, "value": v.get("value"), **({"const": v["const"]} if "const" in v else {})}
                    for k, v in pp.items() if isinstance(v, dict)]
            pp = {"name": pp.get("name", "default_values"), "parameters": pars}
        points.append(pp)
    out["parameter_points"] = points
    if "functions" in d:
        f = d["functions"]
        out["functions"] = [dict(v, name=k) for k, v in f.items()] if isinstance(f, dict) else f
    return out
