"""The default pass pipeline, written down, and the driver that runs any pipeline.

The verifier checks the input and the output (TWEED_VERIFY=all: after every pass too, as the
tests run; TWEED_VERIFY=0: never); TWEED_PRINT_AFTER=<pass>|all
prints the IR after a pass to stderr; TWEED_TIME_PASSES=1 prints each pass's wall time.
"""

from __future__ import annotations

import sys
import time

from tweed.compiler import passes
from tweed.config import debug_config
from tweed.ir.module import Module
from tweed.ir.printer import print_module
from tweed.ir.verify import verify

DEFAULT_PIPELINE = ("fold-constants", "fuse-modifiers", "prune")


def parse_pipeline(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_PIPELINE
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    for n in names:
        passes.get(n)  # raises on an unknown name
    return names


def run_pipeline(module: Module, names: tuple[str, ...] | None = None, stream=None) -> Module:
    cfg = debug_config()
    names = names if names is not None else parse_pipeline(cfg.pipeline)
    stream = stream or sys.stderr
    if cfg.verify:
        verify(module)
    if "input" in cfg.print_after or "all" in cfg.print_after:
        stream.write(f"// IR after input\n{print_module(module)}")
    for k, name in enumerate(names):
        t0 = time.perf_counter()
        module = passes.get(name)(module)
        dt = time.perf_counter() - t0
        if cfg.verify and (cfg.verify_each_pass or k == len(names) - 1):
            verify(module)
        if cfg.time_passes:
            stream.write(f"// pass {name}: {dt * 1e3:.1f} ms\n")
        if name in cfg.print_after or "all" in cfg.print_after:
            stream.write(f"// IR after {name}\n{print_module(module)}")
    return module
