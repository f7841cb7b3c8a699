"""One BLAS thread around the LAPACK factorisations of the fits.

OpenBLAS blocks a Cholesky or LU factorisation by its thread count, so the last digits of
an inverse depend on how many threads it had: a `tweed scan` worker (dask sets one BLAS
thread per worker) would then differ from a `tweed cls` on the same machine in the 9th
digit. Fits run these factorisations on one thread, which is also the faster choice at the
sizes of likelihood Hessians (126 parameters: 0.27 ms vs 0.37 ms on two threads).
"""

from __future__ import annotations

from contextlib import contextmanager

_BLAS = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once


def _blas() -> list:
    global _BLAS
    if _BLAS is None:
        from scipy.linalg import lapack  # noqa: F401  (load SciPy's BLAS before the snapshot)
        from threadpoolctl import ThreadpoolController

        _BLAS = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _BLAS


@contextmanager
def one_thread():
    """Context manager: BLAS/LAPACK on one thread inside. The library controllers are found
    once; each use sets and restores their thread counts directly (threadpoolctl's limit()
    re-reads every library's state each time: ~15 us per inverse-Hessian guess)."""
    libs = _blas()
    before = [lib.num_threads for lib in libs]
    for lib, n in zip(libs, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(n)
