"""Ahead-of-time compiled kernels.

The generic kernels of numba_kernels.py and the minimiser of numba_minimize.py serve every
model, so they can be compiled once, when Tweed is installed, instead of on a user's first run:
setup.py builds the entry points below with numba.pycc into an extension module
`tweed/codegen/_aot_<digest>` (the digest is over the kernel sources, so an editable install
whose kernels were edited after the build falls back to the JIT instead of running stale code).
The module is standalone machine code: using it imports neither numba nor llvmlite, so a
process starts faster and uses less memory, and a fresh machine compiles nothing at run time.

numba_backend.py uses the module when it is there and the numba JIT (cached on disk, see
kernel_cache.py) otherwise. Like the JIT kernels (nogil=True), the compiled entry points
release the GIL while they run (pycc has no option for it: compiler() sets the flag its
Python wrappers are generated with), so toys, Hessian columns and ranking refits run in
parallel threads without the JIT. TWEED_KERNELS=jit forces the JIT; TWEED_AOT_CPU names the
CPU the build targets (default: this machine's, as -march=native; "generic" for a portable wheel).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from tweed.config import aot_cpu, jit_kernels

HERE = Path(__file__).resolve().parent
SOURCES = ("numba_kernels.py", "numba_minimize.py", "pack.py", "sympy_backend.py", "kernel_cache.py", "aot.py")

_I2, _I1, _F1, _F2 = "i8[:, ::1]", "i8[::1]", "f8[::1]", "f8[:, ::1]"
_PROG = f"{_I2}, i4[::1], {_F1}"  # ins, ip (int32, pack.py), fp
# name: (module, signature); the argument lists are those of the functions in that module
EXPORTS = {
    "nll": ("numba_kernels", f"f8({_PROG}, {_F1}, {_F1}, {_F1}, {_F1})"),
    "nll_grad": ("numba_kernels", f"f8({_PROG}, {', '.join([_F1] * 6)})"),
    "hvp": ("numba_kernels", f"f8({_PROG}, {', '.join([_F1] * 10)})"),
    "hessian_columns": ("numba_kernels", f"void({_PROG}, {', '.join([_F1] * 4)}, {_I1}, {_F2})"),
    "rate_jacobian": ("numba_kernels", f"void({_PROG}, {_F1}, {_F1}, {_F1}, {_F2})"),
    "fisher_information": ("numba_kernels", f"void({_PROG}, {_F1}, {_F1}, {_F1}, {_F2})"),
    "expected": ("numba_kernels", f"void({_PROG}, {_F1}, {_F1}, {_F1})"),
    "minimize": ("numba_minimize",
                 f"Tuple((f8, i8, i8, i8, f8))({_PROG}, {_F1}, {_F1}, {_F1}, {_I1}, {_F1}, {_F1}, {_F1}, "
                 f"{_F2}, {_F1}, {_F1}, f8, i8, {_F1}, i8)"),
    "minimize_rows": ("numba_minimize",
                      f"void({_PROG}, {_F1}, {_F2}, {_I1}, {_F2}, {_F1}, {_F1}, {_F2}, {_F2}, {_F2}, f8, i8, "
                      f"{_F2}, {_F1}, {_I1}, {_I1}, i8, i8, i8)"),
    "scaled_metric": ("numba_minimize", f"b1({_F2}, {_I1}, {_F2}, {_F1})"),
    "unscaled_inverse": ("numba_minimize", f"void({_F2}, {_F1}, {_F2})"),
}


def source_digest() -> str:
    """Digest of the sources the compiled kernels depend on."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def module_name() -> str:
    return f"_aot_{source_digest()}"


def installed_path(name: str) -> Path | None:
    """Where the installed 'tweed' distribution put the module `name`, if it did. (Tests run
    from a checkout import tweed from its sources, while `pip install .` put the compiled
    module in site-packages.)"""
    from importlib.metadata import distributions

    # every 'tweed' on the path: a checkout's own tweed.egg-info (left by a build) comes first
    for dist in distributions(name="tweed"):
        for f in dist.files or ():
            if f.parent.name == "codegen" and f.name.startswith(name + "."):
                path = Path(f.locate())
                if path.is_file():
                    return path
    return None


def load():
    """The compiled module for the current sources, or None (not built, stale, or
    TWEED_KERNELS=jit): next to this file, else where the installed distribution has it."""
    if jit_kernels():
        return None
    name = module_name()
    try:
        return importlib.import_module(f"tweed.codegen.{name}")
    except ImportError:
        pass
    path = installed_path(name)
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location(f"tweed.codegen.{name}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return None
    sys.modules[spec.name] = module
    return module


def _wrapper(module, name):
    """A thin function calling the jitted kernel: pycc compiles the wrapper with its own
    flags, and the kernel (linked in) keeps its own (numpy error model, fastmath sums)."""
    kernel = getattr(module, name)
    args = ", ".join(kernel.py_func.__code__.co_varnames[: kernel.py_func.__code__.co_argcount])
    namespace = {"kernel": kernel}
    exec(f"def {name}({args}):\n    return kernel({args})\n", namespace)  # noqa: S102
    return namespace[name]


def _releasing_gil(cc_class):
    """cc_class whose builds wrap every entry point in a Python wrapper that releases the GIL
    around the call (numba's `nogil=True`; pycc compiles with default flags, whose
    release_gil is off). The kernels touch no Python object: they only read and write the
    arrays the wrapper unboxed (and holds) before releasing it."""
    import numba.pycc.compiler as pycc_compiler

    class NoGilFlags(pycc_compiler.Flags):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    class CC(cc_class):
        def _compile_object_files(self, *args, **kwargs):
            flags, pycc_compiler.Flags = pycc_compiler.Flags, NoGilFlags
            try:
                return super()._compile_object_files(*args, **kwargs)
            finally:
                pycc_compiler.Flags = flags

    return CC


def compiler():
    """A numba.pycc.CC that builds every entry point of EXPORTS into module_name()."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
        from numba.pycc import CC
    cc = _releasing_gil(CC)(module_name(), source_module=__name__)
    cc.target_cpu = aot_cpu()
    for name, (mod, sig) in EXPORTS.items():
        module = importlib.import_module(f"tweed.codegen.{mod}")
        cc.export(name, sig)(_wrapper(module, name))
    return cc


if __name__ == "__main__":  # python -m tweed.codegen.aot: build next to the sources
    compiler().compile()
    print(f"built tweed/codegen/{module_name()}")
