"""Templates of shape datacards: `shapes` lines resolved as Combine's ShapeTools.getShape does,
histograms read from ROOT files with uproot."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from tweed.compiler.frontends.datacard.ast import Card, ShapeLine
from tweed.errors import InputError


def shape_line(card: Card, process: str, channel: str) -> ShapeLine | None:
    """The `shapes` line for (process, channel): (p, c), (*, c), (p, *), (*, *)."""
    for p, c in ((process, channel), ("*", channel), (process, "*"), ("*", "*")):
        for s in card.shapes:
            if s.process == p and s.channel == c:
                return s
    return None


@lru_cache(maxsize=32)
def _open(path: str):
    import uproot

    return uproot.open(path)


def _substitute(pattern: str, process: str, channel: str, mass: str, systematic: str | None = None) -> str:
    out = pattern.replace("$PROCESS", process).replace("$CHANNEL", channel).replace("$MASS", mass)
    if systematic is not None:
        out = out.replace("$SYSTEMATIC", systematic)
    return out


def histogram(card: Card, s: ShapeLine, name: str, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(contents, errors) of histogram `name` from the line's file; None if it does not exist."""
    if ":" in name:
        raise InputError(f"shapes: {name!r} is a RooWorkspace object; only TH1 histograms are supported "
                         "(parametric shapes need RooFit)", source=card.source, location=f"line {s.line}")
    path = Path(card.source).parent / s.file
    try:
        f = _open(str(path))
    except FileNotFoundError:
        raise InputError(f"shapes: ROOT file {s.file!r} not found (looked in {path.parent})",
                         source=card.source, location=f"line {s.line}") from None
    except Exception as exc:  # uproot raises many types for a damaged file
        raise InputError(f"shapes: cannot read ROOT file {s.file!r}: {exc}", source=card.source,
                         location=f"line {s.line}") from None
    if name not in f:
        return None
    h = f[name]
    if not hasattr(h, "values") or not h.classname.startswith("TH1"):
        raise InputError(f"shapes: {name!r} in {s.file} is a {h.classname}, expected a TH1 ({what})",
                         source=card.source, location=f"line {s.line}")
    vals = np.asarray(h.values(), dtype=float)
    errs = np.asarray(h.errors(), dtype=float)
    if not np.all(np.isfinite(vals)):
        raise InputError(f"shapes: histogram {name!r} in {s.file} has non-finite contents ({what})",
                         source=card.source, location=f"line {s.line}")
    return vals, errs


def nominal(card: Card, process: str, channel: str, mass: str):
    """(contents, errors, shape line) of the nominal template, or None for a counting channel."""
    s = shape_line(card, process, channel)
    if s is None or s.file == "FAKE":
        return None
    name = _substitute(s.obj, process, channel, mass)
    h = histogram(card, s, name, f"nominal template of {process} in {channel}")
    if h is None:
        raise InputError(f"shapes: histogram {name!r} (process {process}, channel {channel}) is missing "
                         f"from {s.file}", source=card.source, location=f"line {s.line}")
    return h[0], h[1], s


def variations(card: Card, s: ShapeLine, process: str, channel: str, syst: str, mass: str):
    """(up, down) templates of a shape systematic, or None if the file has neither."""
    if s.syst_obj is None:
        return None
    up = histogram(card, s, _substitute(s.syst_obj, process, channel, mass, syst + "Up"), f"{syst}Up")
    down = histogram(card, s, _substitute(s.syst_obj, process, channel, mass, syst + "Down"), f"{syst}Down")
    if up is None and down is None:
        return None
    if up is None or down is None:
        which = "Up" if up is None else "Down"
        raise InputError(f"shapes: {syst}{which} template of {process} in {channel} is missing from {s.file}",
                         source=card.source, location=f"line {s.line}")
    return up[0], down[0]
