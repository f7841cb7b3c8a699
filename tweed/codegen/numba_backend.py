"""The numba backend: a packed program plus the generic kernels, behind the Kernels interface
the runtime uses (nll, nll_grad, hvp, hessian, expected, data_model).

The kernels come from the ahead-of-time compiled module built at install (aot.py) when it is
there, else from the numba JIT (numba_kernels.py, numba_minimize.py; compiled on first use and
cached on disk). KERNELS says which: "aot" or "jit"."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np

from tweed.codegen import aot
from tweed.config import threads
from tweed.codegen.pack import (
    WALL_STREAK,
    F_FP,
    F_IP,
    F_OP,
    OP_GAUSS,
    OP_MVN,
    OP_POISSON,
    OP_POISSON_AUX,
    OP_UNBINNED,
    OP_LOGNORMAL,
    Program,
    pack,
)
from tweed.ir.module import Module

_POOL: ThreadPoolExecutor | None = None
_AOT = aot.load()
KERNELS = "jit" if _AOT is None else "aot"
THREADED_HESSIAN = 16  # Hessians of this many columns are split over threads
TOY_CHUNKS = 4  # a batch of fits is split into this many row ranges per thread (balances uneven fits)

if _AOT is None:  # the JIT kernels (imports numba; compiles on first call unless cached)
    from tweed.codegen import numba_kernels as K, numba_minimize as M
else:
    K = M = _AOT


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(threads(), 8)))
    return _POOL


class NumbaKernels:
    """Evaluates one packed model. Buffers are reused between calls: not thread-safe
    (use one instance per thread; processes, as dask workers use, are fine)."""

    name = "numba"
    # compiled elementwise steps of runtime/minimize.inverse_hessian_guess
    metric_steps = M

    def __init__(self, program: Program):
        self.program = program
        self._arr = program.arrays
        self._val = program.val0.copy()
        n = program.val0.size
        self._adj = np.zeros(n)
        self._tv = np.zeros(n)
        self._tadj = np.zeros(n)

    @cached_property  # the program does not change; each fit asks
    def has_unbinned(self) -> bool:
        """Whether the model has unbinned terms (whose pseudo-data are not sampled)."""
        return bool(np.any(self.program.ins[:, F_OP] == OP_UNBINNED))

    @classmethod
    def from_module(cls, module: Module) -> "NumbaKernels":
        return cls(pack(module))

    def clone(self) -> "NumbaKernels":
        """The same program with its own buffers, for use in another thread."""
        return NumbaKernels(self.program)

    def nll(self, pars: np.ndarray, data: np.ndarray, sat: np.ndarray) -> float:
        return K.nll(*self._arr, self._val, pars, data, sat)

    def nll_grad(self, pars, data, sat) -> tuple[float, np.ndarray]:
        grad = np.empty(self.program.n_params)
        f = K.nll_grad(*self._arr, self._val, self._adj, pars, data, sat, grad)
        return f, grad

    def bound_nll_grad(self, data, sat):
        """nll_grad with these data, as a function of pars alone: the arguments looked up once
        (a model's nll_and_grad on its own data, the common call, then costs ~1 us less)."""
        kernel, (ins, ip, fp), val, adj, n, empty = K.nll_grad, self._arr, self._val, self._adj, self.program.n_params, np.empty

        def nll_grad(pars):
            grad = empty(n)
            return kernel(ins, ip, fp, val, adj, pars, data, sat, grad), grad

        return nll_grad

    def hvp(self, pars, vec, data, sat) -> tuple[float, np.ndarray, np.ndarray]:
        grad = np.empty(self.program.n_params)
        hv = np.empty(self.program.n_params)
        f = K.hvp(*self._arr, self._val, self._adj, self._tv, self._tadj, pars,
                  np.ascontiguousarray(vec, dtype=float), data, sat, grad, hv)
        return f, grad, hv

    def hessian(self, pars, data, sat, columns=None) -> np.ndarray:
        """Exact Hessian, its columns split over threads (the kernels release the GIL)."""
        n = self.program.n_params
        cols = np.arange(n) if columns is None else np.asarray(columns, dtype=np.int64)
        H = np.zeros((n, n))
        workers = _pool()._max_workers if cols.size >= THREADED_HESSIAN else 1
        chunks = [c for c in np.array_split(cols, workers) if c.size]
        args = (*self._arr, self.program.val0, pars, data, sat)
        if len(chunks) == 1:
            K.hessian_columns(*args, chunks[0], H)
        else:
            list(_pool().map(lambda c: K.hessian_columns(*args, c, H), chunks))
        return H

    def minimize(self, full, free, y0, lo, hi, B0, data, sat, gtol, maxiter, wall_streak=WALL_STREAK):
        """Bounded quasi-Newton minimisation in compiled code (see numba_minimize).

        Returns (y, f, status, iterations, evaluations, projected-gradient norm)."""
        y = np.empty(free.size)
        f, st, it, nfev, pg = M.minimize(*self._arr, self._val, self._adj,
                                         np.require(full, float, ["C", "W"]).copy(),
                                         np.asarray(free, dtype=np.int64), np.ascontiguousarray(y0, float),
                                         np.ascontiguousarray(lo, float), np.ascontiguousarray(hi, float),
                                         np.ascontiguousarray(B0, float), data, sat, float(gtol),
                                         int(maxiter), y, int(wall_streak))
        return y, f, int(st), int(it), int(nfev), float(pg)

    def minimize_batch(self, fulls, free, Y0, lo, hi, B0, datas, sats, gtol, maxiter, wall_streak=WALL_STREAK):
        """minimize() over many datasets (toys): row t of fulls/Y0/datas/sats. The rows are
        split into ranges run in parallel threads (the kernels release the GIL); each fit
        is independent of the split, so results do not depend on the number of threads."""
        m = Y0.shape[0]
        Y = np.empty_like(Y0)
        f = np.empty(m)
        st = np.empty(m, dtype=np.int64)
        nfev = np.empty(m, dtype=np.int64)
        args = (*self._arr, self.program.val0, np.require(fulls, float, ["C", "W"]),
                np.asarray(free, dtype=np.int64), np.require(Y0, float, ["C", "W"]),
                np.ascontiguousarray(lo, float), np.ascontiguousarray(hi, float),
                np.ascontiguousarray(B0, float), np.require(datas, float, ["C", "W"]),
                np.require(sats, float, ["C", "W"]), float(gtol), int(maxiter), Y, f, st, nfev, int(wall_streak))
        workers = _pool()._max_workers if m > 1 else 1
        edges = np.unique(np.linspace(0, m, min(m, workers * TOY_CHUNKS) + 1).astype(np.int64))
        if workers == 1 or edges.size <= 2:
            M.minimize_rows(*args, 0, m)
        else:
            list(_pool().map(lambda t: M.minimize_rows(*args, int(edges[t]), int(edges[t + 1])),
                             range(edges.size - 1)))
        return Y, f, st, nfev

    def rate_jacobian(self, pars) -> np.ndarray:
        """d(expected main data)/d(pars): (n_data, n_params), rows of auxiliary data zero."""
        J = np.zeros((self.program.n_data, self.program.n_params))
        K.rate_jacobian(*self._arr, self._val, self._adj, np.require(pars, float, ["C", "W"]), J)
        return J

    def fisher_information(self, pars) -> np.ndarray:
        """The curvature guess of the fits (runtime/fit.py): the Poisson terms' Fisher
        information sum_d J_d J_d^T / lambda_d plus the constraint curvature, in one call."""
        H = np.array(self.constraint_hessian())
        K.fisher_information(*self._arr, self._val, self._adj, np.require(pars, float, ["C", "W"]), H)
        return H

    def constraints(self, parameters_only: bool = True):
        """Gaussian and Poisson-auxiliary term entries: (parameter index, data index, kind 0
        Gaussian / 1 Poisson, sigma or tau). With parameters_only=False also entries whose
        mean is not a parameter (a Gaussian on the main data), with parameter index -1."""
        ins, ip, fp = self.program.ins, self.program.ip, self.program.fp
        off = self.program.params_off
        out = [[], [], [], []]
        for row in ins:
            if row[F_OP] not in (OP_GAUSS, OP_POISSON_AUX):
                continue
            m = ip[row[F_IP]]
            didx = ip[row[F_IP] + 1 : row[F_IP] + 1 + m]
            pos = ip[row[F_IP] + 1 + m : row[F_IP] + 1 + 2 * m] - off
            w = fp[row[F_FP] : row[F_FP] + m]
            ok = (pos >= 0) & (pos < self.program.n_params)  # fused form: straight from the parameters
            keep = ok if parameters_only else np.ones(m, dtype=bool)
            gauss = row[F_OP] == OP_GAUSS
            out[0].append(np.where(ok, pos, -1)[keep])
            out[1].append(didx[keep])
            out[2].append(np.full(int(keep.sum()), 0 if gauss else 1))
            out[3].append((1.0 / np.sqrt(w) if gauss else w)[keep])
        if not out[0]:
            return tuple(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.int64, float))
        return tuple(np.concatenate(a) for a in out)

    def mvn_blocks(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
        """Multivariate-normal terms: (value positions as parameter indices or -1, data indices,
        covariance matrix, normalisation constant 0.5 (k ln 2pi + ln det Sigma))."""
        out = []
        ins, ip, fp = self.program.ins, self.program.ip, self.program.fp
        off = self.program.params_off
        for row in ins:
            if row[F_OP] != OP_MVN:
                continue
            k = ip[row[F_IP]]
            didx = ip[row[F_IP] + 1 : row[F_IP] + 1 + k]
            pos = ip[row[F_IP] + 1 + k : row[F_IP] + 1 + 2 * k] - off
            pos = np.where((pos >= 0) & (pos < self.program.n_params), pos, -1)
            P = fp[row[F_FP] : row[F_FP] + k * k].reshape(k, k)
            out.append((pos, didx, np.linalg.inv(P), float(fp[row[F_FP] + k * k])))
        return out

    def constraint_hessian(self) -> np.ndarray:
        """Curvature of the constraint terms at their centres, as a matrix over parameters:
        1/sigma^2 (Gaussian), tau (Barlow-Beeston Poisson), the precision block (MVN).
        Computed once per program (read-only)."""
        H = getattr(self, "_constraint_H", None)
        if H is None:
            H = self._constraint_H = self._constraint_hessian()
            H.setflags(write=False)
        return H

    def _constraint_hessian(self) -> np.ndarray:
        n = self.program.n_params
        H = np.zeros((n, n))
        par, _, kind, scale = self.constraints()
        np.add.at(H, (par, par), np.where(kind == 0, 1.0 / scale**2, scale))
        for pos, _, cov, _ in self.mvn_blocks():
            ok = pos >= 0
            H[np.ix_(pos[ok], pos[ok])] += np.linalg.inv(cov)[np.ix_(ok, ok)]
        return H

    def constraint_curvature(self) -> np.ndarray:
        """Per parameter, the diagonal of constraint_hessian(); 0 if unconstrained."""
        return np.diag(self.constraint_hessian()).copy()

    def expected(self, pars) -> np.ndarray:
        out = np.full(self.program.n_data, np.nan)
        K.expected(*self._arr, self._val, pars, out)
        return out

    def data_model(self) -> tuple[np.ndarray, np.ndarray]:
        """Per data entry: kind (0 Poisson, 1 Gaussian, 2 part of a multivariate normal, see
        mvn_blocks(); 3 an unbinned event or grid weight; 4 lognormal) and the Gaussian or
        log-scale width (else 0)."""
        kind = np.zeros(self.program.n_data, dtype=np.int64)
        width = np.zeros(self.program.n_data)
        ins, ip, fp = self.program.ins, self.program.ip, self.program.fp
        for row in ins:
            if row[F_OP] not in (OP_POISSON, OP_POISSON_AUX, OP_GAUSS, OP_LOGNORMAL, OP_UNBINNED):
                continue
            m = ip[row[F_IP]]
            idx = ip[row[F_IP] + 1 : row[F_IP] + 1 + m]
            if row[F_OP] in (OP_GAUSS, OP_LOGNORMAL):
                kind[idx] = 1 if row[F_OP] == OP_GAUSS else 4
                width[idx] = 1.0 / np.sqrt(fp[row[F_FP] : row[F_FP] + m])
            elif row[F_OP] == OP_UNBINNED:
                kind[idx] = 3
        for _, didx, cov, _ in self.mvn_blocks():
            kind[didx] = 2
            width[didx] = np.sqrt(np.diag(cov))
        return kind, width
