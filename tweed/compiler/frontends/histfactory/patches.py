"""JSON Patch files and patchsets (pyhf's signal-grid format), applied to a workspace dict."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from tweed.compiler.frontends.histfactory.schema import validate
from tweed.errors import InputError


@dataclass(frozen=True)
class Patch:
    """A JSON Patch with where it came from (for messages) and, from a patchset, its metadata."""

    ops: list
    source: str
    name: str | None = None
    values: tuple | None = None


def _op_label(op: dict) -> str:
    return f"{op.get('op')} {op.get('path')}"


def _copy_path(doc, pointer: str):
    """Shallow-copy the containers along a JSON pointer (copy on write), return the new root."""
    root = copy.copy(doc)
    node = root
    parts = jsonpointer.JsonPointer(pointer).parts
    for part in parts[:-1]:
        key = int(part) if isinstance(node, list) and part.isdigit() else part
        try:
            child = node[key]
        except (KeyError, IndexError, TypeError):
            break  # the patch library reports the bad path
        if not isinstance(child, (dict, list)):
            break
        child = copy.copy(child)
        node[key] = child
        node = child
    return root


def _set_value(root, op: dict) -> bool:
    """Apply an add or replace whose parent exists (RFC 6902 4.1, 4.3) without copying the
    value (the patch library deep-copies every value). False: leave the op to the library
    (any other op, or one that fails, which the library then reports)."""
    kind = op.get("op")
    if kind not in ("add", "replace") or "value" not in op or not op.get("path"):
        return False
    try:
        parts = jsonpointer.JsonPointer(op["path"]).parts
        parent = root
        for part in parts[:-1]:
            parent = parent[int(part) if isinstance(parent, list) else part]
    except (jsonpointer.JsonPointerException, KeyError, IndexError, TypeError, ValueError):
        return False
    last = parts[-1]
    if isinstance(parent, dict):
        if kind == "replace" and last not in parent:
            return False
        parent[last] = op["value"]
        return True
    if not isinstance(parent, list):
        return False
    if last == "-" and kind == "add":
        parent.append(op["value"])
        return True
    if not last.isdigit() or (len(last) > 1 and last.startswith("0")):
        return False
    i = int(last)
    if kind == "add" and i <= len(parent):
        parent.insert(i, op["value"])
    elif kind == "replace" and i < len(parent):
        parent[i] = op["value"]
    else:
        return False
    return True


def apply_patches(doc: dict, patches: list[Patch]) -> dict:
    """The workspace with every patch applied in order; the input is not modified.

    Only the containers along each operation's path are copied (copy on write), so a signal
    patch on a megabyte workspace costs microseconds, not a deep copy. The result shares its
    unchanged parts with the input and the patches' values: treat it as read-only.
    """
    for patch in patches:
        validate(patch.ops, "jsonpatch", patch.source)
        new = doc
        try:
            for op in patch.ops:
                for key in ("path", "from"):
                    if key in op:
                        new = _copy_path(new, op[key])
                # values are inserted as they are, not copied: every later change goes
                # through _copy_path, so neither the patch nor the input is ever modified
                if not _set_value(new, op):
                    new = jsonpatch.apply_patch(new, [op], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
            _locate_failure(doc, patch)
        doc = new
    return doc


def _locate_failure(doc: dict, patch: Patch) -> None:
    """Re-apply op by op to say which operation does not apply, and why."""
    current = doc
    for i, op in enumerate(patch.ops):
        try:
            current = jsonpatch.apply_patch(current, [op], in_place=False)
        except jsonpatch.JsonPatchTestFailed:
            raise InputError(
                f"patch operation {i} ({_op_label(op)}): test failed, the workspace is not the "
                "one this patch was made for",
                source=patch.source,
                location=f"/{i}",
            ) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError) as exc:
            raise InputError(
                f"patch operation {i} ({_op_label(op)}) does not apply to the workspace: {exc}",
                source=patch.source,
                location=f"/{i}",
            ) from None
    raise InputError("patch does not apply to the workspace", source=patch.source)


def digest(obj: Any, algorithm: str = "sha256") -> str:
    """pyhf's digest: hash of the JSON dump with sorted keys (list order kept)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.new(algorithm, text.encode("utf8")).hexdigest()


@dataclass(frozen=True)
class PatchSet:
    doc: dict
    source: str

    @property
    def labels(self) -> list[str]:
        return list(self.doc["metadata"]["labels"])

    @property
    def names(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.doc["patches"]]

    def patch(self, name: str) -> Patch:
        for i, p in enumerate(self.doc["patches"]):
            if p["metadata"]["name"] == name:
                return Patch(
                    ops=p["patch"],
                    source=f"{self.source}#/patches/{i}/patch",
                    name=name,
                    values=tuple(p["metadata"]["values"]),
                )
        close = difflib.get_close_matches(name, self.names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(self.names)} patches)"
        raise InputError(f"no patch named {name!r} in the patchset{hint}", source=self.source)

    def verify(self, workspace_doc: dict, workspace_source: str) -> None:
        for algorithm, expected in self.doc["metadata"]["digests"].items():
            got = digest(workspace_doc, algorithm)
            if got != expected.lower():
                raise InputError(
                    f"patchset digest mismatch: the patchset is for a workspace with {algorithm} "
                    f"{expected}, but {workspace_source} has {got} (pass --no-digest-check to "
                    "apply anyway)",
                    source=self.source,
                    location="/metadata/digests",
                )


def load_patchset(doc: Any, source: str) -> PatchSet:
    validate(doc, "patchset", source)
    labels = doc["metadata"]["labels"]
    seen_names: dict[str, int] = {}
    seen_values: dict[tuple, int] = {}
    for i, p in enumerate(doc["patches"]):
        md = p["metadata"]
        if len(md["values"]) != len(labels):
            raise InputError(
                f"patch has {len(md['values'])} values but the patchset has {len(labels)} labels",
                source=source,
                location=f"/patches/{i}/metadata/values",
            )
        for seen, key, what in ((seen_names, md["name"], "name"), (seen_values, tuple(md["values"]), "values")):
            if key in seen:
                raise InputError(
                    f"duplicate patch {what} {key!r} (also at /patches/{seen[key]})",
                    source=source,
                    location=f"/patches/{i}/metadata/{what}",
                )
            seen[key] = i
    return PatchSet(doc, source)
