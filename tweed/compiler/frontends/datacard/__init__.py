"""CMS Combine datacard front end (docs/datacards.md), in two steps:

1. parse the card with the line grammar tweed/specs/datacard.lark into a checked AST
   (ast.py; templates of shape cards from ROOT files with uproot, shapes.py),
2. lower the AST to IR with Combine's semantics (lower.py).
"""

from __future__ import annotations

import re

from tweed.compiler.frontends.datacard import ast
from tweed.compiler.frontends.datacard.ast import Card
from tweed.compiler.frontends.datacard.lower import lower
from tweed.errors import InputError

__all__ = ["Card", "load", "looks_like_datacard", "lower"]

_SIGNATURE = re.compile(r"^\s*(imax|jmax|kmax)\s+(\d+|\*)", re.MULTILINE)
_RATE = re.compile(r"^\s*rate\s+[-+0-9.]", re.MULTILINE)


def looks_like_datacard(text: str) -> bool:
    return bool(_SIGNATURE.search(text)) or (bool(_RATE.search(text)) and "process" in text)


def load(raw: bytes, source: str) -> Card:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    return ast.parse(text, source)
