"""A pyhf workspace document -> HistFactory XML + one ROOT file of histograms (uproot), as
pyhf's json2xml lays them out: OUT/config/<prefix>.xml (top level), OUT/config/<prefix>_<channel>.xml,
OUT/data/<prefix>.root, and the DTD hist2workspace expects. Reading OUT/config/<prefix>.xml
back (tweed.compiler.frontends.xml) gives the same workspace.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from tweed.errors import InputError

DTD = """<!ELEMENT Combination (Function*,Input+,Measurement*)>
<!ATTLIST Combination OutputFilePrefix CDATA #REQUIRED Mode CDATA #IMPLIED>
<!ELEMENT Input (#PCDATA)>
<!ELEMENT Measurement (POI,ParamSetting*,ConstraintTerm*)>
<!ATTLIST Measurement Name CDATA #REQUIRED Lumi CDATA #REQUIRED LumiRelErr CDATA #REQUIRED
          BinLow CDATA #IMPLIED BinHigh CDATA #IMPLIED Mode CDATA #IMPLIED ExportOnly CDATA #IMPLIED>
<!ELEMENT POI (#PCDATA)>
<!ELEMENT ParamSetting (#PCDATA)>
<!ATTLIST ParamSetting Const CDATA #IMPLIED Val CDATA #IMPLIED>
<!ELEMENT Channel (Data*,StatErrorConfig*,Sample+)>
<!ATTLIST Channel Name CDATA #REQUIRED InputFile CDATA #IMPLIED HistoPath CDATA #IMPLIED>
<!ELEMENT Data EMPTY>
<!ATTLIST Data HistoName CDATA #REQUIRED InputFile CDATA #IMPLIED HistoPath CDATA #IMPLIED>
<!ELEMENT StatErrorConfig EMPTY>
<!ATTLIST StatErrorConfig RelErrorThreshold CDATA #IMPLIED ConstraintType CDATA #IMPLIED>
<!ELEMENT Sample (StatError?,HistoSys*,OverallSys*,ShapeSys*,NormFactor*,ShapeFactor*)>
<!ATTLIST Sample Name CDATA #REQUIRED HistoName CDATA #REQUIRED InputFile CDATA #IMPLIED
          HistoPath CDATA #IMPLIED NormalizeByTheory CDATA #IMPLIED>
<!ELEMENT StatError EMPTY>
<!ATTLIST StatError Activate CDATA #REQUIRED HistoName CDATA #IMPLIED InputFile CDATA #IMPLIED HistoPath CDATA #IMPLIED>
<!ELEMENT NormFactor EMPTY>
<!ATTLIST NormFactor Name CDATA #REQUIRED Val CDATA #REQUIRED High CDATA #REQUIRED Low CDATA #REQUIRED Const CDATA #IMPLIED>
<!ELEMENT OverallSys EMPTY>
<!ATTLIST OverallSys Name CDATA #REQUIRED High CDATA #REQUIRED Low CDATA #REQUIRED>
<!ELEMENT HistoSys EMPTY>
<!ATTLIST HistoSys Name CDATA #REQUIRED HistoFileLow CDATA #IMPLIED HistoPathLow CDATA #IMPLIED
          HistoNameLow CDATA #IMPLIED HistoFileHigh CDATA #IMPLIED HistoPathHigh CDATA #IMPLIED HistoNameHigh CDATA #IMPLIED>
<!ELEMENT ShapeSys EMPTY>
<!ATTLIST ShapeSys Name CDATA #REQUIRED HistoName CDATA #REQUIRED HistoPath CDATA #IMPLIED
          InputFile CDATA #IMPLIED ConstraintType CDATA #IMPLIED>
<!ELEMENT ShapeFactor EMPTY>
<!ATTLIST ShapeFactor Name CDATA #REQUIRED>
"""


def write(doc: dict, out: str | Path, prefix: str = "workspace", measurement: str | None = None) -> Path:
    """Write the XML + ROOT files under out/; returns the top-level XML's path."""
    import uproot

    out = Path(out)
    (out / "config").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    rootfile = f"data/{prefix}.root"
    meas = next((m for m in doc["measurements"] if measurement in (None, m["name"])), doc["measurements"][0])
    cfg = {p["name"]: p for p in meas["config"].get("parameters", [])}
    lumi_cfg = cfg.get("lumi", {})
    lumi = float((lumi_cfg.get("auxdata") or [1.0])[0])
    # XML always states a luminosity; without a lumi configuration (no lumi modifier) any width will do
    lumi_err = float((lumi_cfg.get("sigmas") or [0.1 * lumi])[0])
    obs = {o["name"]: o["data"] for o in doc["observations"]}
    hists = {}

    def add(name, values):
        values = np.asarray(values, dtype=float)
        hists[name] = (values, np.arange(values.size + 1, dtype=float))

    top = ET.Element("Combination", OutputFilePrefix=f"./results/{prefix}")
    for ch in doc["channels"]:
        cname = ch["name"]
        cfile = f"config/{prefix}_{cname}.xml"
        ET.SubElement(top, "Input").text = f"./{cfile}"
        cel = ET.Element("Channel", Name=cname, InputFile=f"./{rootfile}", HistoPath="")
        add(f"{cname}_data", obs[cname])
        ET.SubElement(cel, "Data", HistoName=f"{cname}_data", HistoPath="")
        for s in ch["samples"]:
            base = f"{cname}_{s['name']}"
            nom = np.asarray(s["data"], dtype=float)
            stat = next((m for m in s["modifiers"] if m["type"] == "staterror"), None)
            add(base, nom)
            attrs = {"Name": s["name"], "HistoName": base, "HistoPath": ""}
            if any(m["type"] == "lumi" for m in s["modifiers"]):
                attrs["NormalizeByTheory"] = "True"
            sel = ET.SubElement(cel, "Sample", **attrs)
            if stat is not None:
                if stat["name"] != f"staterror_{cname}":
                    raise InputError(f"staterror {stat['name']!r} of channel {cname}: HistFactory XML names it "
                                     f"staterror_{cname}")
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(nom != 0, np.asarray(stat["data"], dtype=float) / nom, 0.0)
                add(f"{base}_staterror", rel)
                ET.SubElement(sel, "StatError", Activate="True", HistoName=f"{base}_staterror", HistoPath="")
            for m in s["modifiers"]:
                t, name = m["type"], m["name"]
                if t == "histosys":
                    add(f"{base}_{name}_hi", m["data"]["hi_data"])
                    add(f"{base}_{name}_lo", m["data"]["lo_data"])
                    ET.SubElement(sel, "HistoSys", Name=name, HistoNameHigh=f"{base}_{name}_hi",
                                  HistoNameLow=f"{base}_{name}_lo", HistoPathHigh="", HistoPathLow="")
            for m in s["modifiers"]:
                if m["type"] == "normsys":
                    ET.SubElement(sel, "OverallSys", Name=m["name"], High=repr(float(m["data"]["hi"])),
                                  Low=repr(float(m["data"]["lo"])))
            for m in s["modifiers"]:
                if m["type"] == "shapesys":
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rel = np.where(nom != 0, np.asarray(m["data"], dtype=float) / nom, 0.0)
                    add(f"{base}_{m['name']}_shapesys", rel)
                    ET.SubElement(sel, "ShapeSys", Name=m["name"], HistoName=f"{base}_{m['name']}_shapesys",
                                  HistoPath="", ConstraintType="Poisson")
            for m in s["modifiers"]:
                if m["type"] == "normfactor":
                    c = cfg.get(m["name"], {})
                    lo, hi = (c.get("bounds") or [[0.0, 10.0]])[0]
                    nf = {"Name": m["name"], "Val": repr(float((c.get("inits") or [1.0])[0])),
                          "Low": repr(float(lo)), "High": repr(float(hi))}
                    if c.get("fixed"):
                        nf["Const"] = "True"
                    ET.SubElement(sel, "NormFactor", **nf)
            for m in s["modifiers"]:
                if m["type"] == "shapefactor":
                    ET.SubElement(sel, "ShapeFactor", Name=m["name"])
        _write_xml(cel, out / cfile, "Channel")
    mel = ET.SubElement(top, "Measurement", Name=meas["name"], Lumi=repr(lumi),
                        LumiRelErr=repr(lumi_err / lumi if lumi else 0.0))
    ET.SubElement(mel, "POI").text = meas["config"]["poi"]
    for name, c in cfg.items():
        if name == "lumi":
            if c.get("fixed"):
                ET.SubElement(mel, "ParamSetting", Const="True").text = "Lumi"
            continue
        if any(k in c for k in ("auxdata", "sigmas")):
            raise InputError(f"parameter {name}: auxdata/sigmas cannot be written as HistFactory XML")
        kinds = {m["type"] for ch in doc["channels"] for s in ch["samples"] for m in s["modifiers"] if m["name"] == name}
        if kinds & {"normsys", "histosys"} and "bounds" in c and [list(map(float, b)) for b in c["bounds"]] != [[-5.0, 5.0]]:
            raise InputError(f"parameter {name}: bounds {c['bounds']} cannot be written as HistFactory XML")
        if kinds & {"shapesys", "staterror", "shapefactor"} and any(k in c for k in ("fixed", "inits", "bounds")):
            raise InputError(f"parameter {name}: settings of per-bin parameters cannot be written as HistFactory XML")
        if kinds & {"normsys", "histosys"} and (c.get("fixed") or "inits" in c):
            ps = {}
            if c.get("fixed"):
                ps["Const"] = "True"
            if "inits" in c:
                ps["Val"] = repr(float(c["inits"][0]))
            ET.SubElement(mel, "ParamSetting", **ps).text = f"alpha_{name}"
    _write_xml(top, out / "config" / f"{prefix}.xml", "Combination")
    (out / "config" / "HistFactorySchema.dtd").write_text(DTD)
    with uproot.recreate(out / rootfile) as f:
        for k, v in hists.items():
            f[k] = v
    return out / "config" / f"{prefix}.xml"


def _write_xml(el: ET.Element, path: Path, doctype: str) -> None:
    ET.indent(el)
    text = ET.tostring(el, encoding="unicode")
    path.write_text(f"<!DOCTYPE {doctype} SYSTEM 'HistFactorySchema.dtd'>\n\n{text}\n")
