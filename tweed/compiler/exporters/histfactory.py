"""HistFactory JSON (pyhf's workspace format) of a combination of HistFactory workspaces:
the input documents with their modifiers renamed as the combination merged them (a merged
class takes one name, so pyhf and Tweed see one parameter), clashing channels renamed, one
measurement whose parameter configurations are the union (a merged parameter's taken from
the model whose constraint was kept). Re-read, it is the combined likelihood.

A model that did not come from a HistFactory workspace (a datacard, a simplified
likelihood) is not expressible this way: the error says which input."""

from __future__ import annotations

import copy

from tweed.errors import InputError


def combined_workspace(docs: dict, report, poi: str | None, measurements: dict | None = None) -> dict:
    """docs: label -> (patched) workspace document, or None for inputs of other formats."""
    for lab, doc in docs.items():
        if doc is None:
            raise InputError(f"input {lab} is not a HistFactory workspace: the combination cannot be written "
                             "as HistFactory JSON (write it as Tweed IR with a .tir name)")
    out = {"channels": [], "observations": [], "measurements": [], "version": "1.0.0"}
    configs: dict[str, dict] = {}
    for lab, doc in docs.items():
        meas_name = (measurements or {}).get(lab)
        meas = next((m for m in doc["measurements"] if meas_name in (None, m["name"])), doc["measurements"][0])
        names = {k.split(":", 1)[1]: v for k, v in report.names.items() if k.startswith(lab + ":")}

        def new_name(old: str) -> str:
            return names.get(old, old)

        for ch in doc["channels"]:
            ch2 = copy.deepcopy(ch)
            ch2["name"] = report.channels.get(f"{lab}:{ch['name']}", ch["name"])
            for s in ch2["samples"]:
                for m in s["modifiers"]:
                    m["name"] = new_name(m["name"])
            out["channels"].append(ch2)
        for ob in doc["observations"]:
            out["observations"].append({"name": report.channels.get(f"{lab}:{ob['name']}", ob["name"]),
                                        "data": list(ob["data"])})
        for par in meas["config"].get("parameters", []):
            q = f"{lab}:{par['name']}"
            nn = new_name(par["name"])
            if q in report.dropped_constraints and nn in configs:
                continue
            p2 = dict(copy.deepcopy(par), name=nn)
            if nn in configs and configs[nn] != p2 and q not in report.dropped_constraints:
                existing = configs[nn]
                for key in ("auxdata", "sigmas"):
                    if key in p2 and key in existing and p2[key] != existing[key]:
                        raise InputError(f"merged parameter {nn}: {key} differ between the inputs "
                                         f"({existing[key]} vs {p2[key]})")
                existing.update({k: v for k, v in p2.items() if k not in existing})
                continue
            configs.setdefault(nn, p2)
    for nn, cfg in configs.items():
        if poi is not None and nn == poi:
            cfg.pop("fixed", None)
    first_poi = next(iter(docs.values()))["measurements"][0]["config"]["poi"]
    out["measurements"].append({"name": "combined",
                                "config": {"poi": poi or first_poi, "parameters": list(configs.values())}})
    return out


def from_hs3(doc: dict, source: str = "<hs3>", analysis: str | None = None) -> dict:
    """A pyhf workspace from an HS3 document whose likelihood is histfactory_dist channels
    (plus a Gaussian on a `lumi` normfactor), when pyhf can express it: normsys code 4,
    histosys code 4p, shapesys Poisson, staterror Gauss. Anything else is an error naming the
    element."""
    import re

    from tweed.compiler.frontends.hs3 import legacy
    from tweed.compiler.frontends.hs3.lower import HISTOSYS_CODES, NORMSYS_CODES, _pick_analysis, producer

    if legacy.is_legacy(doc):
        doc = legacy.normalise(doc)
    prod = producer(doc)
    names = dict(((doc.get("misc") or {}).get("tweed") or {}).get("parameter_names") or {})

    def nm(x):
        return names.get(x, x)

    def fail(where, msg):
        raise InputError(msg + " (not expressible as a pyhf workspace)", source=source, location=where)

    ai, an = _pick_analysis(doc, source, analysis)
    lks = {lk["name"]: lk for lk in doc.get("likelihoods") or []}
    lk = lks[an["likelihood"]] if an else next(iter(lks.values()))
    dists = {d["name"]: (i, d) for i, d in enumerate(doc.get("distributions") or [])}
    datas = {d["name"]: d for d in doc.get("data") or []}
    channels, observations, lumi_cfg = [], [], None
    for dn, dv in zip(lk.get("distributions", []), lk.get("data", [])):
        i, d = dists[dn]
        if d.get("type") != "histfactory_dist":
            fail(f"/distributions/{i}/type", f"distribution {dn!r} is a {d.get('type')}")
        samples = []
        for si, s in enumerate(d["samples"]):
            contents = list(map(float, s["data"]["contents"]))
            mods = []
            for mi, m in enumerate(s.get("modifiers", [])):
                where = f"/distributions/{i}/samples/{si}/modifiers/{mi}"
                t, con = m.get("type"), m.get("constraint") or m.get("constraint_type")
                if t == "normfactor":
                    p = nm(m.get("parameter") or m["name"])
                    mods.append({"name": p, "type": "lumi" if p == "lumi" else "normfactor", "data": None})
                elif t in ("normsys", "histosys"):
                    p = nm(m.get("parameter") or m["name"])
                    md = m.get("data") or {}
                    code = m.get("interpolation", md.get("interpolation", 4))
                    want = "4" if t == "normsys" else "4p"
                    got = (NORMSYS_CODES if t == "normsys" else HISTOSYS_CODES).get(code)
                    if got != want or con not in (None, "Gauss"):
                        fail(where, f"{t} {p} with interpolation {code!r} and constraint {con!r}: pyhf uses code{want} "
                                    "and Gaussian constraints")
                    if t == "normsys":
                        mods.append({"name": p, "type": "normsys", "data": {"hi": md["hi"], "lo": md["lo"]}})
                    else:
                        mods.append({"name": p, "type": "histosys", "data": {
                            "hi_data": list(map(float, md["hi"]["contents"])),
                            "lo_data": list(map(float, md["lo"]["contents"]))}})
                elif t in ("shapesys", "shapefactor", "staterror"):
                    pars = [nm(x) for x in m.get("parameters") or []]
                    bases = {re.sub(r"\[\d+\]$", "", x) for x in pars}
                    base = bases.pop() if len(bases) == 1 and pars and pars[0].endswith("[0]") else None
                    if base is None:  # e.g. pyhs3's uncorr_bkguncrt_0: pyhf names them uncorr_bkguncrt[i]
                        base = m.get("name") or t
                        for k, x in enumerate(pars):
                            names.setdefault(x, f"{base}[{k}]")
                    if t == "shapefactor":
                        mods.append({"name": base, "type": "shapefactor", "data": None})
                    elif t == "shapesys":
                        if con not in (None, "Poisson"):
                            fail(where, f"shapesys constraint {con!r}: pyhf's is Poisson")
                        vals = list(map(float, m["data"]["vals"]))
                        if prod == "root":
                            vals = [v * c for v, c in zip(vals, contents)]
                        mods.append({"name": base, "type": "shapesys", "data": vals})
                    else:
                        kind = con or (d.get("staterror") or {}).get("constraint_type") or (
                            "Poisson" if prod == "root" else "Gauss")
                        if kind != "Gauss":
                            fail(where, f"staterror constraint {kind!r}: pyhf's is Gaussian")
                        mods.append({"name": base, "type": "staterror",
                                     "data": list(map(float, s["data"].get("errors") or [0.0] * len(contents)))})
                else:
                    fail(where, f"modifier type {t!r}")
            samples.append({"name": s.get("name", f"sample{si}"), "data": contents, "modifiers": mods})
        cname = dn.removeprefix("model_")
        channels.append({"name": cname, "samples": samples})
        observations.append({"name": cname, "data": list(map(float, datas[dv]["contents"]))})
    for k, an_d in enumerate(lk.get("aux_distributions", [])):
        i, d = dists[an_d]
        if d.get("type") in ("gaussian_dist", "normal_dist") and nm(d.get("x")) == "lumi":
            lumi_cfg = {"name": "lumi", "auxdata": [float(d["mean"])], "sigmas": [float(d["sigma"])]}
        else:
            fail(f"/distributions/{i}", f"auxiliary distribution {an_d!r} ({d.get('type')})")
    params = {}
    dom_names = (an or {}).get("domains") or []
    for dm in doc.get("domains") or []:
        if dom_names and dm["name"] not in dom_names:
            continue
        for ax in dm.get("axes", []):
            params.setdefault(nm(ax["name"]), {})["bounds"] = [[ax["min"], ax["max"]]]
    pts = doc.get("parameter_points") or []
    chosen = next((p for p in pts if p["name"] == (an or {}).get("init")), None) or (pts[0] if pts else None)
    for p in (chosen or {}).get("parameters", []):
        cfg = params.setdefault(nm(p["name"]), {})
        cfg["inits"] = [float(p["value"])]
        if p.get("const"):
            cfg["fixed"] = True
    # per-bin sets: pyhf configures a set as a whole
    grouped: dict[str, dict] = {}
    for name, cfg in params.items():
        base = re.sub(r"\[\d+\]$", "", name)
        g = grouped.setdefault(base, {"name": base})
        for k2, v in cfg.items():
            if k2 == "fixed":
                g["fixed"] = g.get("fixed", True) and v
            else:
                g.setdefault(k2, []).extend(v)
    if lumi_cfg is not None:
        grouped.setdefault("lumi", {"name": "lumi"}).update(lumi_cfg)
    pois = (an or {}).get("parameters_of_interest") or []
    poi = nm(pois[0]) if pois else ""
    return {"channels": channels, "observations": observations, "version": "1.0.0",
            "measurements": [{"name": (an or {}).get("name", "measurement"),
                              "config": {"poi": poi, "parameters": list(grouped.values())}}]}
