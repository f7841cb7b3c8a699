"""Simplified-likelihood front end (docs/simplified.md), in three steps:

1. validate the document against tweed/specs/simplified/1.0.0 (jsonschema_check),
2. parse it into a SimplifiedSpec with the cross-field checks (ast.py),
3. lower it to IR with Spey's semantics for the chosen model (lower.py).
"""

from __future__ import annotations

from typing import Any

from tweed.compiler.frontends.jsonschema_check import check
from tweed.compiler.frontends.simplified import ast
from tweed.compiler.frontends.simplified.ast import MODELS, SimplifiedSpec, default_model
from tweed.compiler.frontends.simplified.lower import lower, lower_with_domain, third_moment_coefficients
from tweed.ir.module import Module

__all__ = ["MODELS", "SimplifiedSpec", "default_model", "load", "lower", "lower_with_domain",
           "third_moment_coefficients", "to_module"]

SCHEMA_VERSION = "1.0.0"


def load(doc: Any, source: str, model: str | None = None) -> SimplifiedSpec:
    """Validate and parse a simplified-likelihood document; model overrides the default."""
    check(doc, "simplified", SCHEMA_VERSION, "simplified.json", "simplified likelihood", source)
    return ast.parse(doc, source, model=model)


def to_module(spec: SimplifiedSpec) -> Module:
    return lower(spec)
