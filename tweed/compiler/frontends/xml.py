"""HistFactory XML + ROOT histograms -> a pyhf workspace document (the semantics of ROOT's
hist2workspace inputs as pyhf's xml2json reads them; docs/hs3.md, "HistFactory XML").

The top-level XML (<Combination>) lists channel XMLs (<Input>) and measurements; channel
XMLs list samples, their systematics and the data; histograms are read with uproot. Paths
are resolved against the top-level file's directory, its parent (hist2workspace's working
directory, the layout of pyhf's validation inputs), or `basedir`.

  NormalizeByTheory="True"   -> lumi modifier            NormFactor -> normfactor (+ Val/Low/High/Const)
  OverallSys High/Low        -> normsys                  HistoSys   -> histosys (absolute templates)
  StatError Activate="True"  -> staterror_<channel>, absolute errors (sqrt(sumw2), or HistoName x contents)
  ShapeSys (relative)        -> shapesys, absolute       ShapeFactor -> shapefactor
  Measurement Lumi, LumiRelErr -> lumi auxdata/sigmas, bounds lumi +- 5 sigma; ParamSetting Const/Val
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from tweed.errors import InputError


def looks_like_xml(raw: bytes) -> bool:
    head = raw.lstrip()[:2000]
    return head.startswith(b"<") and (b"<Combination" in head or b"<!DOCTYPE Combination" in head)


class _Reader:
    def __init__(self, top: Path, basedir: Path | None):
        self.top = top
        self.roots = [d for d in (basedir, top.parent, top.parent.parent, Path.cwd()) if d is not None]
        self.files: dict[str, object] = {}

    def resolve(self, name: str, where: str) -> Path:
        for root in self.roots:
            p = (root / name).resolve()
            if p.exists():
                return p
        raise InputError(f"{name!r} not found (looked in {', '.join(str(r) for r in self.roots)})",
                         source=str(self.top), location=where)

    def parse(self, path: Path) -> ET.Element:
        try:
            return ET.parse(path).getroot()
        except ET.ParseError as exc:
            line, col = exc.position
            raise InputError(f"invalid XML: {exc.msg if hasattr(exc, 'msg') else exc}", source=str(path),
                             location=f"line {line} column {col + 1}") from None

    def hist(self, file: str, path: str, name: str, where: str) -> tuple[list[float], list[float]]:
        import uproot

        fp = self.resolve(file, where)
        if str(fp) not in self.files:
            try:
                self.files[str(fp)] = uproot.open(fp)
            except Exception as exc:
                raise InputError(f"cannot read ROOT file: {exc}", source=str(fp)) from None
        f = self.files[str(fp)]
        full = "/".join(x for x in (path.strip("/"), name) if x)
        for key in (name, full):
            if key and key in f:
                h = f[key]
                vals = np.asarray(h.values(), dtype=float)
                var = h.variances() if getattr(h, "weighted", True) and h.variances() is not None else vals
                return vals.tolist(), np.sqrt(np.asarray(var, dtype=float)).tolist()
        raise InputError(f"histogram {full or name!r} not found in {fp.name}", source=where)


def _attr(el: ET.Element, key: str, where: str) -> str:
    if key not in el.attrib:
        raise InputError(f"<{el.tag}> needs the attribute {key}", source=where)
    return el.attrib[key]


def read(path, basedir=None, measurement: str | None = None) -> dict:
    """The pyhf workspace document of a HistFactory XML configuration. A measurement with
    <ConstraintTerm> (Gamma, LogNormal, Uniform constraints) is left out: an error if it is
    the one asked for, or the only one."""
    top = Path(path)
    R = _Reader(top, Path(basedir) if basedir else None)
    root = R.parse(top)
    if root.tag != "Combination":
        raise InputError(f"expected a <Combination> top-level element, found <{root.tag}>", source=str(top))
    channels, observations, pconfigs = [], [], {}
    for inp in root.findall("Input"):
        cpath = R.resolve((inp.text or "").strip(), f"<Input>{inp.text}</Input>")
        ch = R.parse(cpath)
        src = str(cpath)
        cname = _attr(ch, "Name", src)
        infile, hpath = ch.attrib.get("InputFile", ""), ch.attrib.get("HistoPath", "")
        data_el = ch.find("Data")
        if data_el is None:
            raise InputError(f"channel {cname} has no <Data>", source=src)
        obs, _ = R.hist(data_el.attrib.get("InputFile", infile), data_el.attrib.get("HistoPath", hpath),
                        _attr(data_el, "HistoName", src), src)
        samples = []
        for s in ch.findall("Sample"):
            sname = _attr(s, "Name", src)
            sfile, spath = s.attrib.get("InputFile", infile), s.attrib.get("HistoPath", hpath)
            nom, err = R.hist(sfile, spath, _attr(s, "HistoName", src), src)
            mods = []
            if s.attrib.get("NormalizeByTheory", "False") == "True":
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            for m in s:
                tag = m.tag
                if tag == "NormFactor":
                    name = _attr(m, "Name", src)
                    mods.append({"name": name, "type": "normfactor", "data": None})
                    cfg = {"name": name, "bounds": [[float(m.attrib.get("Low", 0.0)), float(m.attrib.get("High", 10.0))]],
                           "inits": [float(m.attrib.get("Val", 1.0))]}
                    if m.attrib.get("Const"):
                        cfg["fixed"] = m.attrib["Const"] == "True"
                    pconfigs.setdefault(name, cfg)
                elif tag == "OverallSys":
                    mods.append({"name": _attr(m, "Name", src), "type": "normsys",
                                 "data": {"hi": float(_attr(m, "High", src)), "lo": float(_attr(m, "Low", src))}})
                elif tag == "HistoSys":
                    lo, _ = R.hist(m.attrib.get("HistoFileLow", sfile), m.attrib.get("HistoPathLow", ""),
                                   _attr(m, "HistoNameLow", src), src)
                    hi, _ = R.hist(m.attrib.get("HistoFileHigh", sfile), m.attrib.get("HistoPathHigh", ""),
                                   _attr(m, "HistoNameHigh", src), src)
                    mods.append({"name": _attr(m, "Name", src), "type": "histosys",
                                 "data": {"hi_data": hi, "lo_data": lo}})
                elif tag == "StatError":
                    if m.attrib.get("Activate") != "True":
                        continue
                    if m.attrib.get("HistoName"):
                        rel, _ = R.hist(m.attrib.get("HistoFile", sfile), m.attrib.get("HistoPath", ""),
                                        m.attrib["HistoName"], src)
                        staterr = [a * b for a, b in zip(rel, nom)]
                    else:
                        staterr = err
                    mods.append({"name": f"staterror_{cname}", "type": "staterror", "data": staterr})
                elif tag == "ShapeSys":
                    if m.attrib.get("ConstraintType", "Poisson") != "Poisson":
                        raise InputError(f"ShapeSys {m.attrib.get('Name')}: only Poisson constraints are supported "
                                         f"(got {m.attrib['ConstraintType']})", source=src)
                    rel, _ = R.hist(m.attrib.get("InputFile", sfile), m.attrib.get("HistoPath", ""),
                                    _attr(m, "HistoName", src), src)
                    mods.append({"name": _attr(m, "Name", src), "type": "shapesys",
                                 "data": [a * b for a, b in zip(nom, rel)]})
                elif tag == "ShapeFactor":
                    mods.append({"name": _attr(m, "Name", src), "type": "shapefactor", "data": None})
                else:
                    raise InputError(f"<{tag}> in sample {sname} is not supported (NormFactor, OverallSys, HistoSys, "
                                     "StatError, ShapeSys, ShapeFactor)", source=src)
            samples.append({"name": sname, "data": nom, "modifiers": mods})
        channels.append({"name": cname, "samples": samples})
        observations.append({"name": cname, "data": obs})
    measurements, dropped = [], {}
    for meas in root.findall("Measurement"):
        mname = _attr(meas, "Name", str(top))
        terms = meas.findall("ConstraintTerm")
        if terms:
            dropped[mname] = terms[0].attrib.get("Type")
            continue
        lumi = float(_attr(meas, "Lumi", str(top)))
        err = lumi * float(_attr(meas, "LumiRelErr", str(top)))
        poi = meas.find("POI")
        if poi is None or not (poi.text or "").strip():
            raise InputError(f"measurement {mname} has no <POI>", source=str(top))
        params = {"lumi": {"name": "lumi", "auxdata": [lumi], "bounds": [[lumi - 5 * err, lumi + 5 * err]],
                           "inits": [lumi], "sigmas": [err]}}
        for k, v in pconfigs.items():
            params[k] = dict(v)
        for ps in meas.findall("ParamSetting"):
            setting = {}
            if ps.attrib.get("Const"):
                setting["fixed"] = ps.attrib["Const"] == "True"
            if ps.attrib.get("Val"):
                setting["inits"] = [float(ps.attrib["Val"])]
            for raw in (ps.text or "").split():
                name = "lumi" if raw == "Lumi" else raw.removeprefix("alpha_")
                if name.startswith("gamma_"):
                    raise InputError(f"ParamSetting {raw}: per-bin parameters (gammas) cannot be set", source=str(top))
                params.setdefault(name, {"name": name}).update(setting)
        measurements.append({"name": mname, "config": {"poi": poi.text.strip(), "parameters": list(params.values())}})
    if measurement in dropped or (not measurements and dropped):
        name = measurement if measurement in dropped else next(iter(dropped))
        raise InputError(f"measurement {name}: <ConstraintTerm Type={dropped[name]!r}> is not supported "
                         "(Gaussian constraints only)", source=str(top))
    if not measurements:
        raise InputError("no <Measurement>", source=str(top))
    return {"channels": channels, "observations": observations, "measurements": measurements, "version": "1.0.0"}


def finite(x) -> bool:
    return all(math.isfinite(v) for v in x)
