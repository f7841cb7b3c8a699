"""Where numba keeps Tweed's compiled kernels.

Numba's on-disk cache is keyed on the file that defines a function, so a cached kernel that
calls into another module (the minimiser calls the VM's sweeps; both read opcode constants
from pack.py and sympy_backend.py) would keep stale machine code when only that other module
changes. Tweed therefore caches its kernels in a directory named after a digest of all those
sources: any change to any of them starts a fresh cache.

The directory is $NUMBA_CACHE_DIR/tweed-<digest> when NUMBA_CACHE_DIR is set, else
$XDG_CACHE_HOME/tweed/numba-<digest> (~/.cache/tweed/...). Importing this module (the kernel
modules do, first) sets it; `tweed inspect --cache` style tooling can read CACHE_DIR.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

from tweed.codegen.aot import source_digest


def digest() -> str:
    return hashlib.sha256(f"{numba.__version__} {source_digest()}".encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return Path(base) / f"tweed-{digest()}"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tweed" / f"numba-{digest()}"


CACHE_DIR = cache_dir()
try:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    numba.config.CACHE_DIR = str(CACHE_DIR)
except OSError:  # unwritable home: numba's own default (next to the sources, or none)
    pass
