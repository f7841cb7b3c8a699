"""HistFactory JSON front end (pyhf's workspace format), in three steps:

1. validate the document against tweed/specs/histfactory/1.0.0 (schema.py),
2. parse it into a small AST with the cross-field checks (ast.py),
3. lower the AST to IR with pyhf's semantics (lower.py).

Patches (JSON Patch files) and patchsets are applied to the workspace document first
(patches.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tweed.compiler.frontends.histfactory import ast
from tweed.compiler.frontends.histfactory.lower import InterpCodes, lower
from tweed.compiler.frontends.histfactory.patches import (
    Patch,
    PatchSet,
    apply_patches,
    load_patchset,
)
from tweed.compiler.frontends.histfactory.schema import validate, validate_part
from tweed.compiler.frontends.source import read_json
from tweed.errors import InputError
from tweed.ir.module import Module

__all__ = ["HistFactorySpec", "InterpCodes", "Patch", "PatchSet", "load", "load_patchset_file",
           "read_patch", "parse_workspace"]


@dataclass(frozen=True)
class HistFactorySpec:
    """A workspace after patches: the document, its AST, and what was applied."""

    doc: dict
    ast: ast.Workspace
    patches: tuple[Patch, ...]


def _as_doc(obj: Any, what: str) -> tuple[Any, str]:
    if isinstance(obj, (dict, list)):
        return obj, f"<{what}>"
    return read_json(obj)


def read_patch(obj: Any) -> Patch:
    doc, name = _as_doc(obj, "patch")
    return Patch(ops=doc, source=name)


def load_patchset_file(obj: Any) -> PatchSet:
    doc, name = _as_doc(obj, "patchset")
    return load_patchset(doc, name)


def parse_workspace(doc: Any, source: str) -> ast.Workspace:
    validate(doc, "workspace", source)
    return ast.parse(doc, source)


# Workspaces known to be valid (by identity; strong references keep the ids meaningful).
# A scan patches the same background-only document again and again: then only the parts a
# patch adds need checking (validate_patched).
_VALID: dict[int, Any] = {}
_VALID_MAX = 4

# JSON pointer shapes of patch targets whose value is one schema definition
_PARTS = [
    (re.compile(r"^/channels/(\d+|-)$"), "channel"),
    (re.compile(r"^/channels/\d+/samples/(\d+|-)$"), "sample"),
    (re.compile(r"^/channels/\d+/samples/\d+/modifiers/(\d+|-)$"), "modifier"),
    (re.compile(r"^/channels/\d+/samples/\d+/data$"), "numbers"),
    (re.compile(r"^/observations/(\d+|-)$"), "observation"),
    (re.compile(r"^/measurements/\d+/config/parameters/(\d+|-)$"), "parameter"),
]


def _remember_valid(doc: Any) -> None:
    _VALID[id(doc)] = doc
    while len(_VALID) > _VALID_MAX:
        _VALID.pop(next(iter(_VALID)))


def _part_checks(patches: list[Patch]) -> list[tuple[Any, str, str]] | None:
    """(value, definition, path) for every op, or None if some op needs a full validation."""
    checks = []
    for patch in patches:
        for op in patch.ops:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
                return None
            path = op.get("path", "")
            definition = next((d for rx, d in _PARTS if rx.match(path)), None)
            if definition is None or "value" not in op:
                return None
            checks.append((op["value"], definition, path))
    return checks


def validate_patched(original: Any, patched: Any, patches: list[Patch], source: str, label: str) -> None:
    """Validate a patched workspace: only the added parts when the original is known valid."""
    checks = _part_checks(patches) if _VALID.get(id(original)) is original else None
    try:
        if checks is None:
            validate(patched, "workspace", label)
        else:
            for value, definition, path in checks:
                validate_part(value, definition, label, path)
    except InputError:
        validate(original, "workspace", source)  # whose fault is it?
        raise


def load(
    workspace: Any,
    patches: list[Any] | tuple[Any, ...] = (),
    patchset: Any = None,
    patch_name: str | None = None,
    digest_check: bool = True,
    source_name: str | None = None,
) -> HistFactorySpec:
    """Read a workspace (path, "-", or dict), apply a patchset point and patch files, check it."""
    doc, source = _as_doc(workspace, "workspace")
    source = source_name or source
    applied: list[Patch] = []
    if patchset is not None:
        ps = patchset if isinstance(patchset, PatchSet) else load_patchset_file(patchset)
        if patch_name is None:
            raise InputError("a patchset needs --patch-name to say which patch to apply", source=ps.source)
        if digest_check:
            ps.verify(doc, source)
        applied.append(ps.patch(patch_name))
    elif patch_name is not None:
        raise InputError("--patch-name given without --patchset")
    applied.extend(p if isinstance(p, Patch) else read_patch(p) for p in patches)
    if not applied:
        validate(doc, "workspace", source)
        _remember_valid(doc)
        return HistFactorySpec(doc=doc, ast=ast.parse(doc, source), patches=())
    patched = apply_patches(doc, applied)
    label = source + " + " + " + ".join(p.name or p.source for p in applied)
    validate_patched(doc, patched, applied, source, label)
    return HistFactorySpec(doc=patched, ast=ast.parse(patched, label), patches=tuple(applied))


def to_module(
    spec: HistFactorySpec,
    measurement: str | None = None,
    codes: InterpCodes = InterpCodes(),
    require_poi: bool = True,
) -> Module:
    return lower(spec.ast, measurement=measurement, codes=codes, require_poi=require_poi)
