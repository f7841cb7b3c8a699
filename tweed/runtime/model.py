"""CompiledModel: the one interface the runtime sees, whatever the backend.

It holds the kernels (value, exact gradient, Hessian, expected data), the parameter table,
and the observed data (main bins followed by auxiliary data, pyhf's layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from scipy.special import gammaln, xlogy

_F8 = np.dtype(np.float64)


def poisson_saturation(n: np.ndarray) -> np.ndarray:
    """Per datum n, the Poisson NLL at the rate lambda = n: n - n ln n + lgamma(n+1) (0 where
    n = 0). The kernels compute a Poisson term as this constant plus n (r - 1 - ln r),
    r = lambda / n (with log1p): lambda - n ln(lambda) + lgamma(n+1) rounds each of its terms,
    which for a Barlow-Beeston auxiliary datum of 1e11 are ~5e12 and cancel to O(1), so the
    NLL would jump by ~1e-3 between neighbouring floating-point values of the gamma factor and a
    fit would stall on that noise (3L-eRJR). The constant is computed as pyhf computes
    -ln Pois(n | n) (SciPy's xlogy and gammaln, the same operations in the same order), so
    where lambda = n the term is pyhf's to the last bit."""
    n = np.asarray(n, dtype=float)
    return np.where(n != 0.0, (n - xlogy(n, n)) + gammaln(n + 1.0), 0.0)


class Kernels(Protocol):
    name: str

    def nll(self, pars: np.ndarray, data: np.ndarray, sat: np.ndarray) -> float: ...
    def nll_grad(self, pars, data, sat) -> tuple[float, np.ndarray]: ...
    def hvp(self, pars, vec, data, sat) -> tuple[float, np.ndarray, np.ndarray]: ...
    def hessian(self, pars, data, sat, columns=None) -> np.ndarray: ...
    def expected(self, pars) -> np.ndarray: ...
    def data_model(self) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class ParamSetInfo:
    name: str
    start: int
    size: int
    kind: str


@dataclass(frozen=True)
class ParameterTable:
    names: tuple[str, ...]
    inits: np.ndarray
    bounds: np.ndarray  # (n, 2)
    fixed: np.ndarray  # bool (n,)
    sets: tuple[ParamSetInfo, ...]
    poi_index: int | None
    poi_name: str | None

    @property
    def n(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a component ("mu", "gamma_stat[2]") or of a scalar set's only component."""
        try:
            return self.names.index(name)
        except ValueError:
            for s in self.sets:
                if s.name == name and s.size == 1:
                    return s.start
        raise KeyError(f"no parameter named {name!r}")

    def kind_of(self, i: int) -> str:
        for s in self.sets:
            if s.start <= i < s.start + s.size:
                return s.kind
        return "?"


@dataclass(frozen=True)
class Channel:
    name: str
    start: int
    stop: int


@dataclass
class CompiledModel:
    kernels: Kernels
    params: ParameterTable
    data: np.ndarray  # observed: main + auxiliary
    n_main: int
    channels: tuple[Channel, ...] = ()
    meta: dict = field(default_factory=dict)
    ir_text: str | None = None  # the optimised IR, for `tweed inspect --ir`
    # a-priori expected main data (background only) when the front end knows them better than
    # the model at its nominal parameters (simplified likelihoods: the published background)
    background: np.ndarray | None = None
    # kernels whose expected main rates are the model's domain constraints (>= 0 at a fit
    # result; see api._domain_kernels), or None
    domain: Kernels | None = None
    # the model's NLL plus -sum_i w_i ln(domain rate_i), the weights w appended to the data
    # (api._barrier_kernels): a log barrier for interior-point fits inside the domain; or a
    # function that builds them (on first use: most fits never leave the domain); or None
    barrier: "Kernels | Callable[[], Kernels] | None" = None

    def __post_init__(self):
        # kernels are compiled for writable C arrays: a read-only one would compile again
        self.data = np.require(self.data, float, ["C", "W"])
        self._sat_cache = (self.data, poisson_saturation(self.data))
        self._kind, self._width = self.kernels.data_model()
        self._shape = (self.params.n,)
        self._own_nll_grad = self._bind_own_nll_grad()

    def _bind_own_nll_grad(self):
        """The kernels' nll_grad bound to the model's own data, if the backend offers it."""
        bind = getattr(self.kernels, "bound_nll_grad", None)
        return None if bind is None else bind(*self._sat_cache)

    def __getstate__(self):  # the bound call is a closure: rebuilt, not pickled
        state = dict(self.__dict__)
        state.pop("_own_nll_grad", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._own_nll_grad = self._bind_own_nll_grad()

    # -- parameter table shortcuts --------------------------------------------------------
    @property
    def n_params(self) -> int:
        return self.params.n

    @property
    def par_names(self) -> tuple[str, ...]:
        return self.params.names

    @property
    def poi_index(self) -> int | None:
        return self.params.poi_index

    @property
    def poi_name(self) -> str | None:
        return self.params.poi_name

    @property
    def n_data(self) -> int:
        return self.data.size

    def inits(self) -> np.ndarray:
        return self.params.inits.copy()

    def bounds(self) -> np.ndarray:
        return self.params.bounds.copy()

    def fixed(self) -> np.ndarray:
        return self.params.fixed.copy()

    # -- evaluation -------------------------------------------------------------------------
    def _data(self, data) -> tuple[np.ndarray, np.ndarray]:
        if data is None:
            return self._sat_cache
        data = np.require(data, float, ["C", "W"])
        if data.shape != self.data.shape:
            raise ValueError(f"data has {data.size} entries, the model expects {self.data.size}")
        if data is self._sat_cache[0]:
            return self._sat_cache
        return data, poisson_saturation(data)

    def _pars(self, pars) -> np.ndarray:
        if type(pars) is np.ndarray and pars.dtype is _F8 and pars.shape == self._shape:
            flags = pars.flags
            if flags.c_contiguous and flags.writeable:  # as the kernels take it: no copy, no checks
                return pars
        pars = np.require(pars, float, ["C", "W"])
        if pars.shape != self._shape:
            raise ValueError(f"expected {self.n_params} parameters, got shape {pars.shape}")
        return pars

    def nll(self, pars, data=None) -> float:
        """-ln L(pars | data), all normalisation constants included (pyhf's -logpdf)."""
        d, lg = self._data(data)
        return self.kernels.nll(self._pars(pars), d, lg)

    def twice_nll(self, pars, data=None) -> float:
        return 2.0 * self.nll(pars, data)

    def logpdf(self, pars, data=None) -> float:
        return -self.nll(pars, data)

    def nll_and_grad(self, pars, data=None) -> tuple[float, np.ndarray]:
        if data is None and type(pars) is np.ndarray and pars.dtype is _F8 and pars.shape == self._shape:
            # the common call, on the model's own data: _pars's no-copy test inlined (calling
            # _pars here cost ~0.2 of the ~0.5 us this path saves on 1Lbb) and one bound kernel call
            flags = pars.flags
            if flags.c_contiguous and flags.writeable and self._own_nll_grad is not None:
                return self._own_nll_grad(pars)
        d, lg = self._data(data)
        return self.kernels.nll_grad(self._pars(pars), d, lg)

    def hvp(self, pars, vec, data=None) -> np.ndarray:
        d, lg = self._data(data)
        return self.kernels.hvp(self._pars(pars), vec, d, lg)[2]

    def hessian(self, pars, data=None, free_only: bool = False) -> np.ndarray:
        """Exact Hessian of the NLL; with free_only, columns of fixed parameters are left zero."""
        d, lg = self._data(data)
        cols = np.flatnonzero(~self.params.fixed) if free_only else None
        return self.kernels.hessian(self._pars(pars), d, lg, cols)

    def expected_data(self, pars, include_auxdata: bool = True) -> np.ndarray:
        """Expected main counts, then the expectation of every auxiliary measurement."""
        out = self.kernels.expected(self._pars(pars))
        return out if include_auxdata else out[: self.n_main]

    def with_data(self, data) -> "CompiledModel":
        """The same model with other observed data (same layout)."""
        data = np.asarray(data, dtype=float)
        if data.shape != self.data.shape:
            raise ValueError(f"data has {data.size} entries, the model expects {self.data.size}")
        return CompiledModel(self.kernels, self.params, data, self.n_main, self.channels,
                             dict(self.meta), self.ir_text, self.background, self.domain, self.barrier)

    def clone(self) -> "CompiledModel":
        """An independent evaluator of the same model (own buffers): one per thread."""
        twin = CompiledModel(self.kernels.clone(), self.params, self.data, self.n_main, self.channels,
                             dict(self.meta), self.ir_text, self.background,
                             None if self.domain is None else self.domain.clone(),
                             self.barrier.clone() if hasattr(self.barrier, "clone") else self.barrier)
        for key in ("_fit_guess", "_H0"):  # share the (read-only) fit metric
            if key in self.__dict__:
                twin.__dict__[key] = self.__dict__[key]
        return twin

    def barrier_kernels(self) -> Kernels | None:
        """The barrier kernels (see `barrier`), built on first use."""
        if self.barrier is not None and not hasattr(self.barrier, "minimize"):
            self.barrier = self.barrier()
        return self.barrier

    def domain_rates(self, pars) -> np.ndarray:
        """Values of the domain constraints at pars (each must be >= 0); empty without."""
        if self.domain is None:
            return np.zeros(0)
        return self.domain.expected(self._pars(pars))

    def domain_jacobian(self, pars) -> np.ndarray:
        return self.domain.rate_jacobian(self._pars(pars))

    def apriori_data(self) -> np.ndarray:
        """Data for a-priori expected results (Spey's ExpectationType.apriori): the background-only
        expectation in the main bins (the front end's, else the model's at its nominal parameters
        with the POI at 0) and the observed auxiliary data."""
        out = self.data.copy()
        x = self.inits()
        if self.poi_index is not None:
            x[self.poi_index] = 0.0
        if self.background is not None:
            out[: self.n_main] = self.background
        else:
            out[: self.n_main] = self.expected_data(x, include_auxdata=False)
        events = self._kind == 3  # unbinned terms: the Asimov weights at the same point
        if np.any(events):
            out[events] = self.expected_data(x)[events]
        return out

    def fit(self, data=None, **options):
        """Maximum-likelihood fit (see tweed.runtime.fit.fit)."""
        from tweed.runtime.fit import fit

        return fit(self, data=data, **options)

    @property
    def unbinned(self) -> bool:
        """Whether the likelihood has unbinned terms (Asimov data: quadrature weights; no toys)."""
        return bool(getattr(self.kernels, "has_unbinned", False))

    def require_sampling(self, what: str) -> None:
        """A clear error for what needs pseudo-data of an unbinned term."""
        if self.unbinned:
            from tweed.errors import InputError

            raise InputError(f"{what} is not available for this model: it needs pseudo-data, which Tweed "
                             "does not sample for unbinned terms (fits, profile scans, asymptotic CLs and "
                             "limits work)")

    def asimov_data(self, poi_value: float, data=None, **fit_options) -> np.ndarray:
        """pyhf's Asimov data: expected data at the POI-fixed fit to (observed) data."""
        from tweed.runtime.fit import fit

        res = fit(self, data=data, poi_value=poi_value, hessian=False, **fit_options)
        return self.expected_data(res.bestfit)

    def sample(self, pars, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """n pseudo-datasets at pars: Poisson main and Poisson/Gaussian auxiliary data."""
        self.require_sampling("sampling pseudo-data")
        rng = rng or np.random.default_rng()
        lam = self.expected_data(pars)
        out = np.empty((n, lam.size))
        logn = self._kind == 4
        out[:, logn] = np.exp(rng.normal(np.log(lam[logn]), self._width[logn], size=(n, int(logn.sum()))))
        pois = self._kind == 0
        out[:, pois] = rng.poisson(np.clip(lam[pois], 0.0, None), size=(n, int(pois.sum())))
        gaus = self._kind == 1
        out[:, gaus] = rng.normal(lam[gaus], self._width[gaus], size=(n, int(gaus.sum())))
        for _, didx, cov, _ in self.kernels.mvn_blocks() if np.any(self._kind == 2) else ():
            out[:, didx] = rng.multivariate_normal(lam[didx], cov, size=n)
        return out
