"""Debug switches, read from the environment in one place (documented in docs/debugging.md).

TWEED_PRINT_AFTER   comma list of pass names, or "all": print the IR after those passes (stderr)
TWEED_VERIFY        "0" turns the IR verifier off; default: it checks the pipeline's input and
                    output; "all": also after every pass (the test suite sets this)
TWEED_TIME_PASSES   "1" prints the wall time of every pass (stderr)
TWEED_PIPELINE      override the default pass pipeline, e.g. "fold-constants,fuse-modifiers"
TWEED_THREADS       threads for parallel kernels (Hessian columns); default: OMP_NUM_THREADS or
                    the number of CPUs (dask scan workers run with 1)
TWEED_KERNELS       "jit": numba's JIT kernels even when those compiled at install are there
TWEED_AOT_CPU       at install: the CPU the kernels are compiled for ("host", default, or
                    "generic" for a portable build, or an LLVM CPU name)
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DebugConfig:
    print_after: frozenset[str]
    verify: bool
    verify_each_pass: bool
    time_passes: bool
    pipeline: str | None


def jit_kernels() -> bool:
    return os.environ.get("TWEED_KERNELS", "").lower() == "jit"


def aot_cpu() -> str:
    """LLVM's name of the CPU the install-time kernels target ('' = generic)."""
    cpu = os.environ.get("TWEED_AOT_CPU", "host")
    return "" if cpu == "generic" else cpu


def threads() -> int:
    for var in ("TWEED_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def debug_config() -> DebugConfig:
    raw = os.environ.get("TWEED_PRINT_AFTER", "")
    names = frozenset(p.strip() for p in raw.split(",") if p.strip())
    return DebugConfig(
        print_after=names,
        verify=os.environ.get("TWEED_VERIFY", "1") != "0",
        verify_each_pass=os.environ.get("TWEED_VERIFY", "1") == "all",
        time_passes=os.environ.get("TWEED_TIME_PASSES", "0") == "1",
        pipeline=os.environ.get("TWEED_PIPELINE") or None,
    )
