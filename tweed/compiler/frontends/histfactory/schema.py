"""Validation of HistFactory documents against Tweed's versioned schemas in tweed/specs.

Valid documents take the fast path (fastjsonschema compiles the schema to Python, ~15x faster
than jsonschema on a 1 MB workspace); an invalid one is re-checked with jsonschema, whose
best_match picks the most relevant violation and its JSON path for the message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import fastjsonschema

from tweed.compiler.frontends.source import pointer
from tweed.errors import InputError
from tweed.specs import load_schema

VERSION = "1.0.0"
KINDS = ("workspace", "patchset", "jsonpatch")


@lru_cache(maxsize=None)
def _validator(kind: str):
    # jsonschema is imported only when a document is invalid (its messages are better)
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for k in KINDS:
        schema = load_schema("histfactory", VERSION, f"{k}.json")
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    schema = load_schema("histfactory", VERSION, f"{kind}.json")
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry)


@lru_cache(maxsize=None)
def _fast(kind: str):
    def handler(uri: str):
        name = uri.rsplit("/", 1)[-1]
        return load_schema("histfactory", VERSION, name)

    schema = load_schema("histfactory", VERSION, f"{kind}.json")
    return fastjsonschema.compile(schema, handlers={"tweed": handler}, use_formats=False)


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


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(doc: Any, kind: str, source: str) -> None:
    """Raise an InputError naming the JSON path of the most relevant schema violation."""
    try:
        _fast(kind)(doc)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    from jsonschema.exceptions import best_match

    error = best_match(_validator(kind).iter_errors(doc))
    if error is None:
        return
    where = pointer(error.absolute_path)
    raise InputError(
        f"does not match the HistFactory {kind} schema {VERSION}: {_short(error.message)}",
        source=source,
        location=where,
    )
