"""IR -> IR passes, one module and one pure function each, registered by name.

A pass's docstring states what it Requires, Guarantees and Preserves. Pipelines are a
written list of names (tweed/compiler/pipeline.py).
"""

from __future__ import annotations

from collections.abc import Callable

from tweed.ir.module import Module

Pass = Callable[[Module], Module]

PASSES: dict[str, Pass] = {}


def register(name: str) -> Callable[[Pass], Pass]:
    def deco(fn: Pass) -> Pass:
        PASSES[name] = fn
        fn.pass_name = name  # type: ignore[attr-defined]
        return fn

    return deco


def get(name: str) -> Pass:
    _load_all()
    try:
        return PASSES[name]
    except KeyError:
        raise KeyError(f"unknown pass {name!r}; known: {', '.join(sorted(PASSES))}") from None


def _load_all() -> None:
    # Importing the modules registers the passes.
    from tweed.compiler.passes import fold_constants, fold_fixed, fuse_modifiers, prune  # noqa: F401
