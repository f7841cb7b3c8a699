"""Validation of JSON documents against Tweed's versioned schemas in tweed/specs.

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


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=None)
def _fast(family: str, version: str, name: str):
    def handler(uri: str):
        return load_schema(family, version, uri.rsplit("/", 1)[-1])

    return fastjsonschema.compile(load_schema(family, version, name), handlers={"tweed": handler},
                                  use_formats=False)


@lru_cache(maxsize=None)
def _thorough(family: str, version: str, name: str, siblings: tuple[str, ...]):
    # jsonschema is imported only when a document is invalid (its messages are better)
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for k in siblings:
        schema = load_schema(family, version, k)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    schema = load_schema(family, version, name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=Registry().with_resources(resources))


def check(doc: Any, family: str, version: str, name: str, what: str, source: str,
          siblings: tuple[str, ...] = ()) -> None:
    """Raise an InputError naming the JSON path of the most relevant schema violation."""
    try:
        _fast(family, version, name)(doc)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    from jsonschema.exceptions import best_match

    error = best_match(_thorough(family, version, name, siblings or (name,)).iter_errors(doc))
    if error is None:
        return
    raise InputError(f"does not match the {what} schema {version}: {_short(error.message)}",
                     source=source, location=pointer(error.absolute_path))
