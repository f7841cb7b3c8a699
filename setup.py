"""Builds Tweed's kernels ahead of time (tweed/codegen/aot.py) while installing.

Everything else about the package is in pyproject.toml. The kernels are compiled with
numba.pycc into tweed/codegen/_aot_<digest>; if that fails (no C compiler, say), the install
goes on without them and Tweed compiles them with numba's JIT on first use instead.
"""

import sys
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))


def kernel_extensions():
    try:
        from tweed.codegen import aot

        return [aot.compiler().distutils_extension()]
    except Exception as exc:  # noqa: BLE001 - an install without them still works
        warnings.warn(f"Tweed: not compiling the kernels ahead of time ({exc}); "
                      "they will be JIT-compiled on first use")
        return []


EXTENSIONS = kernel_extensions()  # (numba.pycc now replaces build_ext.build_ext by its own)


class BuildKernels(build_ext.build_ext):
    """build_ext (numba.pycc's, which compiles the exported functions) that only warns when
    the kernels cannot be built."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"Tweed: building {ext.name} failed ({exc}); "
                          "the kernels will be JIT-compiled on first use")


setup(ext_modules=EXTENSIONS, cmdclass={"build_ext": BuildKernels})
