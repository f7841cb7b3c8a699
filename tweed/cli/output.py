"""Writing results: JSON to stdout or atomically to a file (temp file + rename)."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path


def _clean(obj):
    """JSON has no NaN/inf: write them as null (and say so in the value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj, indent: int | None = None) -> str:
    return json.dumps(_clean(obj), indent=indent)


def write_atomic(path: str | Path, text: str) -> None:
    """Write text to path so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def emit_json(obj, output: str | None, indent: int | None = None) -> None:
    text = dumps(obj, indent=indent) + "\n"
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
