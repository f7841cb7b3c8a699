"""One BLAS thread around the LAPACK factorisations of the fits.

OpenBLAS blocks a Cholesky or LU factorisation by its thread count, so the last digits of
an inverse depend on how many threads it had: a `tweed scan` worker (dask sets one BLAS
thread per worker) would then differ from a `tweed cls` on the same machine in the 9th
digit. Fits run these factorisations on one thread, which is also the faster choice at the
sizes of likelihood Hessians (126 parameters: 0.27 ms vs 0.37 ms on two threads).
"""

from __future__ import annotations

_CONTROLLER = None


def one_thread():
    """Context manager: BLAS/LAPACK on one thread inside (threadpoolctl)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from scipy.linalg import lapack  # noqa: F401  (load SciPy's BLAS before the snapshot)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
