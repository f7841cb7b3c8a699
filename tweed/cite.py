"""`tweed cite`: offline BibTeX for the methods a model uses (tweed/data/citations.bib).

Kinds: histfactory, simplified (any of its models by name), toys, all; a model file may be
given instead of a kind, and its format (and simplified-likelihood model) decide.
"""

from __future__ import annotations

import re
from importlib import resources

from tweed.errors import InputError

COMMON = ["tweed", "Cowan:2010js", "Read:2002hq"]
KINDS = {
    "histfactory": ["Cranmer:2012sba", "pyhf_joss", "pyhf", "Barlow:1993dm"],
    "simplified": ["CMS:2017sl", "Buckley:2018vdr", "Araz:2023bwx"],
    "uncorrelated_background": ["CMS:2017sl", "Araz:2023bwx"],
    "correlated_background": ["CMS:2017sl", "Buckley:2018vdr", "Araz:2023bwx"],
    "third_moment_expansion": ["CMS:2017sl", "Buckley:2018vdr", "Araz:2023bwx"],
    "effective_sigma": ["Barlow:2004wg", "Araz:2023bwx"],
    "poisson": ["Araz:2023bwx"],
    "normal": ["Araz:2023bwx"],
    "multivariate_normal": ["Araz:2023bwx"],
    "toys": ["Read:2002hq"],
}


def entries() -> dict[str, str]:
    text = resources.files("tweed.data").joinpath("citations.bib").read_text()
    out = {}
    for block in re.split(r"\n(?=@)", text.strip()):
        key = re.match(r"@\w+\{([^,]+),", block).group(1)
        out[key] = block.strip()
    return out


def keys_for(kind: str) -> list[str]:
    if kind == "all":
        return list(entries())
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; expected a model file or one of: all, {', '.join(KINDS)}")
    seen: list[str] = []
    for k in COMMON + KINDS[kind]:
        if k not in seen:
            seen.append(k)
    return seen


def kind_of_file(path: str) -> str:
    from tweed import api

    loaded = api.read(path, require_poi=False)
    if loaded.format == "simplified":
        return loaded.spec.model
    return loaded.format


def bibtex(kind_or_file: str = "all") -> str:
    kind = kind_or_file
    if kind not in KINDS and kind != "all":
        from pathlib import Path

        if Path(kind).exists() or kind == "-":
            kind = kind_of_file(kind)
    table = entries()
    return "\n\n".join(table[k] for k in keys_for(kind)) + "\n"
