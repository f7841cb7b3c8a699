"""Signal yields from a Python callable (as Spey's `signal_yields=callable`): the rest of the
model stays compiled.

The compiled model reads the signal yields as N extra parameters ("signal_yields", last in
its vector). CallableSignalKernels presents the model over Spey's parameter vector
[mu, phi_1..phi_K, theta..., eta...]: it fills the N yields from signal(phi) before every
evaluation, and the chain rule turns their compiled gradient into d/dphi with the Jacobian of
signal(phi) taken by central finite differences (2K calls). Hessians are finite differences
of that gradient. The fitter then uses the Python minimiser (the compiled one cannot call
Python), with everything else unchanged.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tweed.runtime.model import ParameterTable, ParamSetInfo


class CallableSignalKernels:
    """The Kernels interface over the outer (Spey) parameter vector."""

    def __init__(self, inner, signal: Callable, k: int, nbins: int, step: float = 1e-6):
        self.inner = inner
        self.signal = signal
        self.k = k
        self.nbins = nbins
        self.step = step
        self.n_inner = inner.program.n_params
        self.n_outer = self.n_inner - nbins + k
        # inner index -> outer index (-1 for the signal-yield slots)
        self.map = np.concatenate([[0], np.arange(1, self.n_inner - nbins) + k, np.full(nbins, -1)]).astype(np.int64)

    # -- parameter vectors ---------------------------------------------------------------
    def _yields(self, phi: np.ndarray) -> np.ndarray:
        s = np.asarray(self.signal(np.array(phi, dtype=float)), dtype=float).reshape(-1)
        if s.size != self.nbins:
            raise ValueError(f"the signal callable returned {s.size} yields, the model has {self.nbins} bins")
        return s

    def _embed(self, pars: np.ndarray, yields: np.ndarray | None = None) -> np.ndarray:
        inner = np.empty(self.n_inner)
        inner[0] = pars[0]
        inner[1 : self.n_inner - self.nbins] = pars[1 + self.k :]
        inner[self.n_inner - self.nbins :] = self._yields(pars[1 : 1 + self.k]) if yields is None else yields
        return inner

    def _jacobian(self, phi: np.ndarray) -> np.ndarray:
        """d signal / d phi, (N, K), by central differences."""
        J = np.empty((self.nbins, self.k))
        for j in range(self.k):
            h = self.step * max(1.0, abs(phi[j]))
            up, dn = phi.copy(), phi.copy()
            up[j] += h
            dn[j] -= h
            J[:, j] = (self._yields(up) - self._yields(dn)) / (2.0 * h)
        return J

    def _outer_grad(self, pars, g_inner) -> np.ndarray:
        g = np.empty(self.n_outer)
        g[0] = g_inner[0]
        g[1 + self.k :] = g_inner[1 : self.n_inner - self.nbins]
        if self.k:
            g[1 : 1 + self.k] = self._jacobian(np.array(pars[1 : 1 + self.k])).T @ g_inner[self.n_inner - self.nbins :]
        return g

    # -- the Kernels interface -----------------------------------------------------------------
    def clone(self) -> "CallableSignalKernels":
        return CallableSignalKernels(self.inner.clone(), self.signal, self.k, self.nbins, self.step)

    def nll(self, pars, data, sat) -> float:
        return self.inner.nll(self._embed(pars), data, sat)

    def nll_grad(self, pars, data, sat):
        f, g = self.inner.nll_grad(self._embed(pars), data, sat)
        return f, self._outer_grad(pars, g)

    def hvp(self, pars, vec, data, sat):
        f, g = self.nll_grad(pars, data, sat)
        h = 1e-5 * max(1.0, float(np.max(np.abs(pars)))) / max(1e-300, float(np.max(np.abs(vec))))
        gp = self.nll_grad(pars + h * vec, data, sat)[1]
        gm = self.nll_grad(pars - h * vec, data, sat)[1]
        return f, g, (gp - gm) / (2.0 * h)

    def hessian(self, pars, data, sat, columns=None) -> np.ndarray:
        H = np.zeros((self.n_outer, self.n_outer))
        cols = range(self.n_outer) if columns is None else columns
        for j in cols:
            e = np.zeros(self.n_outer)
            e[j] = 1.0
            H[:, j] = self.hvp(pars, e, data, sat)[2]
        return 0.5 * (H + H.T) if columns is None else H

    def expected(self, pars) -> np.ndarray:
        return self.inner.expected(self._embed(pars))

    def rate_jacobian(self, pars) -> np.ndarray:
        inner = self._embed(pars)
        Ji = self.inner.rate_jacobian(inner)
        J = np.zeros((Ji.shape[0], self.n_outer))
        keep = self.map >= 0
        J[:, self.map[keep]] = Ji[:, keep]
        if self.k:
            J[:, 1 : 1 + self.k] = Ji[:, ~keep] @ self._jacobian(np.array(pars[1 : 1 + self.k]))
        return J

    def data_model(self):
        return self.inner.data_model()

    def _map_pos(self, pos: np.ndarray) -> np.ndarray:
        return np.where(pos >= 0, self.map[np.clip(pos, 0, None)], -1)

    def mvn_blocks(self):
        return [(self._map_pos(pos), didx, cov, c) for pos, didx, cov, c in self.inner.mvn_blocks()]

    def constraints(self, parameters_only: bool = True):
        par, didx, kind, scale = self.inner.constraints(parameters_only)
        return self._map_pos(par), didx, kind, scale

    def constraint_hessian(self) -> np.ndarray:
        Hi = self.inner.constraint_hessian()
        keep = np.flatnonzero(self.map >= 0)
        H = np.zeros((self.n_outer, self.n_outer))
        H[np.ix_(self.map[keep], self.map[keep])] = Hi[np.ix_(keep, keep)]
        return H

    def constraint_curvature(self) -> np.ndarray:
        return np.diag(self.constraint_hessian()).copy()


def outer_table(inner: ParameterTable, k: int, nbins: int, names: list[str], bounds) -> ParameterTable:
    """Spey's parameter table [mu, phi..., rest] from the compiled one [mu, rest..., yields]."""
    m = inner.n - nbins
    lo_hi = np.array([(-np.inf if b[0] is None else b[0], np.inf if b[1] is None else b[1])
                      for b in bounds], dtype=float).reshape(-1, 2)
    ph_init = np.clip(np.ones(k), lo_hi[:, 0], lo_hi[:, 1]) if k else np.zeros(0)
    inits = np.concatenate([inner.inits[:1], ph_init, inner.inits[1:m]])
    bnds = np.vstack([inner.bounds[:1], lo_hi, inner.bounds[1:m]])
    fixed = np.concatenate([inner.fixed[:1], np.zeros(k, bool), inner.fixed[1:m]])
    sets = [ParamSetInfo(inner.sets[0].name, 0, 1, inner.sets[0].kind)]
    sets += [ParamSetInfo(n, 1 + j, 1, "signal") for j, n in enumerate(names)]
    sets += [ParamSetInfo(s.name, s.start + k, s.size, s.kind) for s in inner.sets[1:] if s.name != "signal_yields"]
    return ParameterTable(names=(inner.names[0], *names, *inner.names[1:m]), inits=inits, bounds=bnds,
                          fixed=fixed, sets=tuple(sets), poi_index=0, poi_name=inner.names[0])
