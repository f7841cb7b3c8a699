"""HS3 (HEP Statistics Serialization Standard) front end (docs/hs3.md).

One analysis (its likelihood, parameters of interest, domains and initial values) becomes a
module: every binned distribution paired with data becomes main bins, every other factor
a constraint term. Field-name variants that ROOT and pyhs3 write are accepted (the table in
docs/hs3.md); anything else is an error naming the element and its JSON path.
"""

from __future__ import annotations

from tweed.compiler.frontends.hs3.lower import lower, producer

__all__ = ["load", "lower", "producer"]


def load(doc, source: str, analysis: str | None = None):
    """Check the document's top level and lower the chosen analysis."""
    from tweed.compiler.frontends.hs3 import legacy
    from tweed.errors import InputError

    if isinstance(doc, dict) and legacy.is_legacy(doc):
        doc = legacy.normalise(doc)
    if not isinstance(doc, dict) or "hs3_version" not in (doc.get("metadata") or {}):
        raise InputError("an HS3 document needs metadata.hs3_version", source=source, location="/metadata")
    if not doc.get("likelihoods"):
        what = sorted({str(x.get("type")) for x in doc.get("distributions") or [] if isinstance(x, dict)})
        raise InputError("no likelihoods: nothing pairs distributions with data"
                         + (f" (distributions of types {', '.join(what)})" if what else ""),
                         source=source, location="/likelihoods")
    return lower(doc, source, analysis)
