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
    check(_schema_view(doc), "simplified", SCHEMA_VERSION, "simplified.json", "simplified likelihood", source)
    return ast.parse(doc, source, model=model)


MATRICES = ("covariance", "correlation")


def _plain_matrix(m: Any) -> bool:
    """A non-empty list of non-empty lists of numbers (booleans are not numbers): what the
    schema's "matrix" definition accepts."""
    if not isinstance(m, (list, tuple)) or not m:
        return False
    if not all(isinstance(r, (list, tuple)) and r for r in m):
        return False
    types = {type(v) for r in m for v in r}
    return all(issubclass(t, (int, float)) and not issubclass(t, bool) for t in types)


def _schema_view(doc: Any) -> Any:
    """The document as the schema sees it: each matrix that is plain numbers (checked here by
    one type test per entry) replaced by a 1x1 matrix of its first entry. fastjsonschema checks
    numbers one Python call at a time (25 ms for a 200x200 covariance); the matrix's shape is
    checked by the parser. A matrix that is not plain numbers stays, for the schema to report."""
    if not isinstance(doc, dict):
        return doc
    view = None
    for key in MATRICES:
        if key in doc and _plain_matrix(doc[key]):
            view = dict(doc) if view is None else view
            view[key] = [[doc[key][0][0]]]
    return doc if view is None else view


def to_module(spec: SimplifiedSpec) -> Module:
    return lower(spec)


def to_document(spec: SimplifiedSpec) -> dict:
    """The spec as a document of Tweed's simplified-likelihood schema (the chosen model named)."""
    doc = {"simplified_likelihood": SCHEMA_VERSION, "model": spec.model,
           "observed": spec.observed.tolist(), "background": spec.background.tolist()}
    for key, value in (("covariance", spec.covariance), ("correlation", spec.correlation),
                       ("uncertainties", spec.uncertainties), ("uncertainty_envelopes", spec.envelopes),
                       ("third_moment", spec.third_moment)):
        if value is not None:
            doc[key] = value.tolist()
    if spec.bins:
        doc["bins"] = list(spec.bins)
    if spec.signal is not None:
        doc["signal"] = spec.signal.tolist()
    elif spec.signal_expression is not None:
        doc["signal"] = {"expression": spec.signal_expression,
                         "coefficients": {k: v.tolist() for k, v in spec.coefficients.items()},
                         "parameters": {p.name: {"init": p.init, "bounds": [None if p.lo == float("-inf") else p.lo,
                                                                             None if p.hi == float("inf") else p.hi],
                                                 "fixed": p.fixed} for p in spec.signal_parameters}}
    if spec.signal_uncertainties:
        doc["signal_uncertainties"] = [
            {"type": u.type, "name": u.name,
             "uncertainties": [[float(a), float(b)] for a, b in zip(u.up, u.down)]} for u in spec.signal_uncertainties]
    if spec.poi is not None:
        doc["poi"] = {"name": spec.poi.name, "init": spec.poi.init,
                      "bounds": [None if spec.poi.lo == float("-inf") else spec.poi.lo,
                                 None if spec.poi.hi == float("inf") else spec.poi.hi], "fixed": spec.poi.fixed}
    for k, v in spec.meta.items():
        if k in ("name", "analysis", "description"):
            doc[k] = v
    return doc
