"""Validation of HistFactory documents (tweed/specs/histfactory/1.0.0), whole or part by part."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import fastjsonschema

from tweed.compiler.frontends.jsonschema_check import _short, check
from tweed.compiler.frontends.source import pointer
from tweed.errors import InputError
from tweed.specs import load_schema

VERSION = "1.0.0"
KINDS = ("workspace", "patchset", "jsonpatch")


@lru_cache(maxsize=None)
def _definition(name: str) -> dict:
    """The workspace schema narrowed to one of its definitions (same $id, same definitions)."""
    schema = dict(load_schema("histfactory", VERSION, "workspace.json"))
    for key in ("properties", "required", "additionalProperties", "type", "title", "description"):
        schema.pop(key, None)
    schema.pop("$id", None)  # local refs only
    schema["$ref"] = f"#/definitions/{name}"
    return schema


@lru_cache(maxsize=None)
def _fast_definition(name: str):
    return fastjsonschema.compile(_definition(name), use_formats=False)


def validate_part(value: Any, definition: str, source: str, where: str) -> None:
    """Validate one part of a workspace (a sample, a channel, ...) located at `where`."""
    try:
        _fast_definition(definition)(value)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    import jsonschema
    from jsonschema.exceptions import best_match

    schema = _definition(definition)
    cls = jsonschema.validators.validator_for(schema)
    error = best_match(cls(schema).iter_errors(value))
    if error is None:  # the two validators disagree; trust the thorough one
        return
    raise InputError(
        f"does not match the HistFactory workspace schema {VERSION}: {_short(error.message)}",
        source=source,
        location=where + pointer(error.absolute_path).rstrip("/"),
    )


def validate(doc: Any, kind: str, source: str) -> None:
    """Raise an InputError naming the JSON path of the most relevant schema violation."""
    check(doc, "histfactory", VERSION, f"{kind}.json", f"HistFactory {kind}", source,
          siblings=tuple(f"{k}.json" for k in KINDS))
