"""Tweed as a Spey backend (entry-point group "spey.backend.plugins"):

    stat = spey.get_backend("tweed.simplified")(signal_yields=..., background_yields=...,
                                                 data=..., covariance_matrix=...)
    stat = spey.get_backend("tweed.histfactory")(workspace="BkgOnly.json", patches=["p.json"])

Spey then runs its own inference API (exclusion_confidence_level, poi_upper_limit, chi2,
...) on Tweed's compiled kernels: the NLL, its exact gradient and Hessian, and Spey's
optional fast paths (the profiled and the free fits, on data and on Asimov data), which
run Tweed's compiled fits. Conventions follow the model: Spey's for simplified likelihoods
(Asimov data keep the constraint centres), pyhf's for HistFactory workspaces.

Only importing this module needs spey; Tweed itself does not depend on it.
"""

from __future__ import annotations

import numpy as np
from spey import BackendBase, ExpectationType
from spey.base.model_config import ModelConfig

import tweed
from tweed.runtime.fit import fit


class _TweedBackend(BackendBase):
    version = tweed.__version__
    author = "Tweed developers"
    spey_requires = ">=0.2.0"
    doi = []
    arXiv = []

    def __init__(self, model):
        self.model = model
        self._asimov: dict = {}

    # -- data ---------------------------------------------------------------------------------
    def _data(self, expected=ExpectationType.observed, data=None) -> np.ndarray:
        m = self.model
        if data is not None:
            d = np.asarray(data, dtype=float).reshape(-1)
            if d.size == m.n_data:
                return d
            if d.size == m.n_main:  # main bins only: the model's own auxiliary data
                full = m.data.copy()
                full[: m.n_main] = d
                return full
            raise ValueError(f"data has {d.size} entries; the model has {m.n_main} bins "
                             f"({m.n_data} with auxiliary data)")
        if expected == ExpectationType.apriori:
            return m.apriori_data()
        return m.data

    def _bounds(self, allow_negative_signal=True, par_bounds=None):
        b = self.model.bounds() if par_bounds is None else np.array(par_bounds, dtype=float)
        i = self.model.poi_index
        if not allow_negative_signal:
            b[i, 0] = max(b[i, 0], 0.0)
        return b

    def _fit(self, data, poi=None, allow_negative_signal=True, init_pars=None, par_bounds=None):
        init = None if init_pars is None else np.array(init_pars, dtype=float)
        bounds = self._bounds(allow_negative_signal, par_bounds)
        if init is None:
            init = np.clip(self.model.inits(), bounds[:, 0], bounds[:, 1])
        res = fit(self.model, data, init=init, bounds=bounds, poi_value=poi, hessian=False)
        return res.twice_nll / 2.0, res.bestfit

    # -- the BackendBase interface ------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        m = self.model
        x = m.inits()
        x[m.poi_index] = 1.0
        y = x.copy()
        y[m.poi_index] = 0.0
        return bool(np.any(np.abs(m.expected_data(x, False) - m.expected_data(y, False)) > 0))

    def config(self, allow_negative_signal: bool = True, poi_upper_bound: float = 10.0) -> ModelConfig:
        m = self.model
        b = m.bounds()
        i = m.poi_index
        lo = float(b[i, 0])
        b[i] = (lo if allow_negative_signal else max(lo, 0.0), poi_upper_bound)
        return ModelConfig(poi_index=i, minimum_poi=lo, suggested_init=m.inits().tolist(),
                           suggested_bounds=[tuple(map(float, r)) for r in b],
                           parameter_names=list(m.par_names), suggested_fixed=m.fixed().tolist())

    def get_logpdf_func(self, expected=ExpectationType.observed, data=None):
        d = self._data(expected, data)
        return lambda pars: -self.model.nll(np.asarray(pars, dtype=float), d)

    def get_objective_function(self, expected=ExpectationType.observed, data=None, do_grad=True):
        d = self._data(expected, data)
        if do_grad:
            return lambda pars: self.model.nll_and_grad(np.asarray(pars, dtype=float), d)
        return lambda pars: self.model.nll(np.asarray(pars, dtype=float), d)

    def get_hessian_logpdf_func(self, expected=ExpectationType.observed, data=None):
        d = self._data(expected, data)
        return lambda pars: -self.model.hessian(np.asarray(pars, dtype=float), d)

    def get_sampler(self, pars):
        pars = np.asarray(pars, dtype=float)

        def sampler(sample_size: int, include_auxiliary: bool = True) -> np.ndarray:
            s = self.model.sample(pars, int(sample_size))
            return s if include_auxiliary else s[:, : self.model.n_main]

        return sampler

    def expected_data(self, pars, include_auxiliary: bool = True):
        m = self.model
        e = m.expected_data(np.asarray(pars, dtype=float))
        if m.meta.get("conventions") == "spey":  # constraint centres stay where they are
            e[m.n_main:] = m.data[m.n_main:]
        return e if include_auxiliary else e[: m.n_main]

    # -- Spey's optional fast paths: Tweed's compiled fits ---------------------------------------------
    def negative_loglikelihood(self, poi_test=1.0, expected=ExpectationType.observed, data=None,
                               return_parameters=False, init_pars=None, par_bounds=None, **kwargs):
        nll, pars = self._fit(self._data(expected, data), float(poi_test), True, init_pars, par_bounds)
        return (nll, pars) if return_parameters else nll

    def minimize_negative_loglikelihood(self, expected=ExpectationType.observed, allow_negative_signal=True,
                                        data=None, init_pars=None, par_bounds=None, poi_indices=None,
                                        **kwargs):
        if poi_indices is not None:
            raise NotImplementedError("several POIs: Spey's generic path")
        nll, pars = self._fit(self._data(expected, data), None, allow_negative_signal, init_pars, par_bounds)
        return float(pars[self.model.poi_index]), nll

    def _asimov_data(self, expected, test_statistics):
        key = (str(expected), test_statistics)
        if key not in self._asimov:
            mu = 1.0 if test_statistics == "q0" else 0.0
            _, pars = self._fit(self._data(expected), mu, test_statistics in ("q", "qmu"))
            self._asimov[key] = self.expected_data(pars)
        return self._asimov[key]

    def asimov_negative_loglikelihood(self, poi_test=1.0, expected=ExpectationType.observed,
                                      test_statistics="qtilde", init_pars=None, par_bounds=None, **kwargs):
        data = self._asimov_data(expected, test_statistics)
        return self._fit(data, float(poi_test), True, init_pars, par_bounds)[0]

    def minimize_asimov_negative_loglikelihood(self, expected=ExpectationType.observed,
                                               test_statistics="qtilde", init_pars=None, par_bounds=None,
                                               poi_indices=None, **kwargs):
        if poi_indices is not None:
            raise NotImplementedError("several POIs: Spey's generic path")
        data = self._asimov_data(expected, test_statistics)
        nll, pars = self._fit(data, None, test_statistics in ("q", "qmu"), init_pars, par_bounds)
        return float(pars[self.model.poi_index]), nll


class TweedHistFactory(_TweedBackend):
    """A HistFactory workspace (pyhf JSON) compiled by Tweed; options as tweed.load's."""

    name = "tweed.histfactory"

    def __init__(self, workspace, patches=(), patchset=None, patch_name=None, measurement=None, **options):
        super().__init__(tweed.load(workspace, patches=list(patches), patchset=patchset,
                                    patch_name=patch_name, measurement=measurement, **options))


class TweedSimplified(_TweedBackend):
    """A simplified likelihood compiled by Tweed, with Spey's argument names; `model` picks
    Spey's model (default: third_moment_expansion with third moments, correlated_background
    with a covariance, uncorrelated_background with absolute uncertainties). A file written in
    Tweed's simplified format can be given as `source` instead."""

    name = "tweed.simplified"

    def __init__(self, signal_yields=None, background_yields=None, data=None, covariance_matrix=None,
                 absolute_uncertainties=None, third_moment=None, correlation_matrix=None,
                 absolute_uncertainty_envelops=None, modifiers=None, model=None, source=None,
                 n_signal_parameters=0, signal_parameter_bounds=None):
        from tweed import api

        if source is not None:
            super().__init__(api.load(source, model=model))
            return
        super().__init__(api.simplified(
            data, background_yields, signal_yields, model=model, covariance=covariance_matrix,
            uncertainties=absolute_uncertainties, third_moment=third_moment, correlation=correlation_matrix,
            uncertainty_envelopes=absolute_uncertainty_envelops, signal_uncertainties=modifiers,
            n_signal_parameters=n_signal_parameters, signal_parameter_bounds=signal_parameter_bounds))
