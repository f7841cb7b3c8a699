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
