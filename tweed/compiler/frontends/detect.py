"""Which front end reads a document: detected from its content, not its file name."""

from __future__ import annotations

from typing import Any

from tweed.errors import InputError

FORMATS = ("histfactory", "simplified", "hs3")


def detect(doc: Any, source: str) -> str:
    if isinstance(doc, dict):
        if "patches" not in doc and len({"channels", "measurements", "observations"} & set(doc)) >= 2:
            return "histfactory"  # the schema then says what is missing
        if "observed" in doc and "background" in doc:
            return "simplified"
        if "hs3_version" in (doc.get("metadata") or {}) or ("distributions" in doc and "likelihoods" in doc) \
                or "ROOT_internal" in (doc.get("misc") or {}):
            return "hs3"
        if "patches" in doc and "metadata" in doc:
            raise InputError(
                "this is a patchset, not a workspace: pass it with --patchset and pick a point "
                "with --patch-name", source=source)
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "op" in doc[0]:
        raise InputError("this is a JSON Patch, not a workspace: pass it with -p/--patch", source=source)
    raise InputError(
        "unrecognised model format: expected a HistFactory workspace (an object with "
        "'channels', 'observations', 'measurements') or a simplified likelihood (an object with "
        "'observed' and 'background')", source=source)
