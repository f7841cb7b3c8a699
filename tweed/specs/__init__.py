"""Versioned JSON schemas and lark grammars: the formats Tweed reads, written down."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


def spec_path(*parts: str):
    return resources.files("tweed.specs").joinpath(*parts)


@lru_cache(maxsize=None)
def load_schema(*parts: str) -> dict:
    return json.loads(spec_path(*parts).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def load_grammar(name: str) -> str:
    return spec_path(name).read_text(encoding="utf-8")
