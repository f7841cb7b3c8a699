"""Reading a spec: a path, "-" for stdin, gzip or plain, JSON with located syntax errors."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from tweed.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> tuple[bytes, str]:
    """The raw content (decompressed when gzip) and a display name for messages."""
    name = "<stdin>" if str(path) == "-" else str(path)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", source=name) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=name) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=name) from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip data ({exc})", source=name) from None
    elif name.endswith(".gz"):
        raise InputError("file name ends in .gz but the content is not gzip", source=name)
    return raw, name


def parse_json(raw: bytes, name: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=name) from None
    if not text.strip():
        raise InputError("empty file, expected JSON", source=name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg}", source=name, location=f"line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", source=name) from None


def read_json(path: str | Path) -> tuple[Any, str]:
    raw, name = read_bytes(path)
    return parse_json(raw, name), name


def pointer(path) -> str:
    """A JSON Pointer (RFC 6901) for a sequence of keys and indices; "/" for the root."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"
