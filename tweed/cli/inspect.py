"""`tweed inspect`: what a spec contains, from the front end's AST and the IR."""

from __future__ import annotations

from collections import Counter


def summary(loaded) -> dict:
    m = loaded.module
    by_kind: dict[str, list[str]] = {}
    for p in m.params:
        by_kind.setdefault(p.kind, []).append(p.name)
    out = {
        "format": loaded.format,
        "poi": m.poi,
        "measurement": m.meta_dict().get("measurement"),
        "interpolation": m.meta_dict().get("interpolation"),
        "n_parameters": m.n_params,
        "n_main_bins": m.n_main,
        "n_auxdata": m.data.array.size - m.n_main,
        "channels": [],
        "unbinned": _unbinned(m),
        "parameters_by_type": {k: {"count": len(v), "names": v} for k, v in by_kind.items()},
    }
    if loaded.format == "histfactory":
        ws = loaded.spec.ast
        for c in sorted(ws.channels, key=lambda c: c.name):
            mods = Counter(mod.type for s in c.samples for mod in s.modifiers)
            out["channels"].append({
                "name": c.name,
                "bins": c.nbins,
                "samples": [s.name for s in sorted(c.samples, key=lambda s: s.name)],
                "modifiers": dict(sorted(mods.items())),
                "observed": list(ws.observations[c.name]),
            })
        out["measurements"] = [meas.name for meas in ws.measurements]
    return out


def _unbinned(m) -> list[dict]:
    """Per unbinned term: its observable, range, events (their weights' sum) and grid points;
    its data entries are counted among the auxiliary data."""
    from tweed.ir.build import is_zero
    from tweed.ir.ops import Op

    out = []
    for t in m.terms:
        if t.op is Op.UNBINNED:
            events = t.attr("grid").array == 0
            w = m.data.array[t.attr("index").array][events]
            out.append({"observable": t.attr("observable"), "range": [t.attr("lo"), t.attr("hi")],
                        "events": int(events.sum()), "sum_of_weights": float(w.sum()),
                        "grid_points": int((~events).sum()), "extended": not is_zero(t.args[1])})
    return out


def inspect_text(info: dict) -> str:
    lines = [
        f"format        {info['format']}",
        f"measurement   {info.get('measurement')} (of {', '.join(info.get('measurements', []))})",
        f"POI           {info['poi']}",
        f"interpolation {info['interpolation']}",
        f"parameters    {info['n_parameters']}    main bins {info['n_main_bins']}    "
        f"auxiliary data {info['n_auxdata']}",
        "",
        "channels:",
    ]
    for c in info["channels"]:
        mods = ", ".join(f"{k} {v}" for k, v in c["modifiers"].items())
        lines.append(f"  {c['name']}: {c['bins']} bins, {len(c['samples'])} samples ({mods})")
    for u in info.get("unbinned", []):
        lines.append(f"  unbinned in {u['observable']} {u['range']}: {u['events']} events (weights "
                     f"{u['sum_of_weights']:g}), {u['grid_points']} Asimov grid points, "
                     f"{'extended' if u['extended'] else 'not extended'}")
    lines += ["", "parameters by type:"]
    for kind, v in info["parameters_by_type"].items():
        names = ", ".join(v["names"][:6]) + (", ..." if v["count"] > 6 else "")
        lines.append(f"  {kind:12s} {v['count']:4d}  {names}")
    return "\n".join(lines)
