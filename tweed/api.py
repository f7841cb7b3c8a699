"""The library entry points that wire the pipeline together:

    spec --(front end)--> IR --(passes)--> optimised IR --(numba backend)--> CompiledModel
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tweed.codegen.numba_backend import NumbaKernels
from tweed.compiler.frontends import histfactory
from tweed.compiler.frontends import simplified as sl_frontend
from tweed.compiler.frontends.detect import detect
from tweed.compiler.frontends.histfactory.lower import InterpCodes
from tweed.compiler.frontends.source import parse_json, read_bytes, read_json
from tweed.compiler.pipeline import parse_pipeline, run_pipeline
from tweed.errors import InputError
from tweed.ir.module import Module
from tweed.ir.node import Const, Node
from tweed.ir.ops import Op
from tweed.ir.printer import print_module
from tweed.runtime.model import Channel, CompiledModel, ParameterTable, ParamSetInfo


@dataclass(frozen=True)
class Loaded:
    """A spec read by its front end: the unoptimised IR and what the front end knows."""

    module: Module
    format: str
    spec: Any  # the front end's own view (HistFactorySpec for HistFactory)
    options: dict | None = None

    @property
    def domain(self) -> Node | None:
        """Rates the fits keep >= 0 beyond the Poisson means (Module.domain)."""
        return self.module.domain

    @property
    def background(self) -> np.ndarray | None:
        """A-priori expected main data the front end knows (simplified likelihoods), else None."""
        return self.spec.background.copy() if self.format == "simplified" else None

    def sample_yields(self, pars) -> dict[str, dict[str, np.ndarray]]:
        """Expected yields of every sample in every channel at pars (IR interpreter)."""
        from tweed.compiler.frontends.histfactory.lower import sample_rates
        from tweed.ir.interpret import evaluate

        if self.format != "histfactory":
            raise ValueError(f"per-sample yields are not available for {self.format} models")
        if (self.options or {}).get("expressions"):
            raise ValueError("per-sample yields are not available for a reparametrised model")
        opts = self.options or {}
        rates = sample_rates(self.spec.ast, self.module, opts.get("measurement"), opts["codes"])
        nodes = [n for ch in rates.values() for n in ch.values()]
        vals = evaluate(self.module, np.asarray(pars, dtype=float), nodes=nodes)
        out = {}
        for ch, samples in rates.items():
            nb = next(c.nbins for c in self.spec.ast.channels if c.name == ch)
            out[ch] = {s: np.broadcast_to(vals[id(n)], (nb,)).astype(float) for s, n in samples.items()}
        return out


def read(
    source: Any,
    patches=(),
    patchset: Any = None,
    patch_name: str | None = None,
    measurement: str | None = None,
    normsys_code: str | None = None,
    histosys_code: str | None = None,
    require_poi: bool = True,
    digest_check: bool = True,
    source_name: str | None = None,
    model: str | None = None,
    expressions: dict[str, str] | None = None,
    param_ranges: dict[str, tuple] | None = None,
) -> Loaded:
    """Run the front end for the spec's format (detected from content) and return its IR.

    expressions {name: text} replace scalar parameters by expressions of new parameters
    (tweed.compiler.reparametrize), e.g. {"mu": "sqrt(k)"}; param_ranges {new name: (lo, hi,
    init or None)} set the new parameters' ranges."""
    loaded = _read(source, patches, patchset, patch_name, measurement, normsys_code, histosys_code,
                   require_poi, digest_check, source_name, model)
    if expressions:
        from tweed.compiler.reparametrize import reparametrize

        module, _ = reparametrize(loaded.module, expressions, param_ranges)
        opts = dict(loaded.options or {}, expressions=dict(expressions))
        return Loaded(module, loaded.format, loaded.spec, opts)
    if param_ranges:
        raise InputError("--param-range sets the range of parameters that an --expr introduces; "
                         "there is no --expr")
    return loaded


def _read(source, patches, patchset, patch_name, measurement, normsys_code, histosys_code,
          require_poi, digest_check, source_name, model) -> Loaded:
    if isinstance(source, (dict, list)):
        doc, name = source, source_name or "<workspace>"
    else:
        raw, name = read_bytes(source)
        from tweed.compiler.frontends import xml as xml_frontend

        if xml_frontend.looks_like_xml(raw):  # HistFactory XML + ROOT (hist2workspace inputs)
            if model is not None:
                raise InputError(f"--model selects a simplified-likelihood model; {name} is HistFactory XML",
                                 source=name)
            doc = xml_frontend.read(source, measurement=measurement)
            spec = histfactory.load(doc, patches=list(patches), patchset=patchset, patch_name=patch_name,
                                    digest_check=digest_check, source_name=name)
            codes = InterpCodes.of(normsys_code, histosys_code)
            module = histfactory.to_module(spec, measurement=measurement, codes=codes, require_poi=require_poi)
            return Loaded(module, "histfactory", spec, {"measurement": measurement, "codes": codes, "from": "xml"})
        if raw.lstrip()[:8] == b"tweed-ir":  # the IR text form (tweed combine -o x.tir writes it)
            from tweed.errors import IRError
            from tweed.ir.parser import parse_module
            from tweed.ir.verify import verify

            if patches or patchset is not None or patch_name is not None or model is not None:
                raise InputError("patches and --model do not apply to an IR file", source=name)
            try:
                module = parse_module(raw.decode("utf-8"))
                verify(module)
            except IRError as exc:
                raise InputError(str(exc), source=name) from None
            return Loaded(module, "ir", None, {})
        try:
            doc = parse_json(raw, name)
        except InputError:
            from tweed.compiler.frontends import datacard

            text = raw.decode("utf-8", "replace")
            if not datacard.looks_like_datacard(text):
                raise
            if patches or patchset is not None or patch_name is not None:
                raise InputError(f"patches apply to HistFactory workspaces; {name} is a datacard", source=name)
            if model is not None:
                raise InputError(f"--model selects a simplified-likelihood model; {name} is a datacard",
                                 source=name)
            card = datacard.load(raw, name)
            return Loaded(datacard.lower(card), "datacard", card, {})
    fmt = detect(doc, name)
    if fmt != "histfactory" and (patches or patchset is not None or patch_name is not None):
        raise InputError(f"patches apply to HistFactory workspaces; {name} is a {fmt} model",
                         source=name)
    if fmt == "simplified":
        spec = sl_frontend.load(doc, name, model=model)
        return Loaded(sl_frontend.lower(spec), fmt, spec, {"model": spec.model})
    if model is not None:
        raise InputError(f"--model selects a simplified-likelihood model; {name} is a {fmt} model",
                         source=name)
    if fmt == "hs3":
        from tweed.compiler.frontends import hs3

        return Loaded(hs3.load(doc, name, analysis=measurement), fmt, doc, {"analysis": measurement})
    if fmt == "histfactory":
        spec = histfactory.load(doc, patches=list(patches), patchset=patchset,
                                patch_name=patch_name, digest_check=digest_check, source_name=name)
        codes = InterpCodes.of(normsys_code, histosys_code)
        module = histfactory.to_module(spec, measurement=measurement, codes=codes,
                                       require_poi=require_poi)
        return Loaded(module, fmt, spec, {"measurement": measurement, "codes": codes})
    raise AssertionError(fmt)


def compile_module(module: "Module | Loaded", pipeline: str | None = None,
                   background: np.ndarray | None = None) -> CompiledModel:
    """Optimise the IR with the pass pipeline and compile it with the numba backend (a Loaded
    also hands over what its front end knows beyond the IR)."""
    if isinstance(module, Loaded):
        module, background = module.module, module.background if background is None else background
    domain = module.domain
    opt = run_pipeline(module, parse_pipeline(pipeline) if pipeline else None)
    kernels = NumbaKernels.from_module(opt)
    sets = tuple(ParamSetInfo(p.name, opt.offsets[p.name], p.size, p.kind) for p in opt.params)
    table = ParameterTable(
        names=tuple(opt.par_names), inits=opt.inits(), bounds=opt.bounds(), fixed=opt.fixed(),
        sets=sets, poi_index=opt.poi_index, poi_name=opt.poi,
    )
    channels = tuple(Channel(c.name, c.start, c.stop) for c in opt.channels)
    return CompiledModel(kernels, table, opt.data.array.copy(), opt.n_main, channels,
                         meta=opt.meta_dict(), ir_text=None, background=background,
                         domain=None if domain is None else _domain_kernels(opt, domain),
                         barrier=None if domain is None else (lambda: _barrier_kernels(opt, domain)))


def _domain_kernels(opt: Module, domain: Node) -> NumbaKernels:
    """The domain rates compiled as the Poisson means of a module over the same parameters:
    its expected() gives their values, its rate_jacobian() their derivatives."""
    n = domain.size
    dom = Module(params=opt.params, data=Const(np.zeros(n)), n_main=n, poi=opt.poi,
                 terms=(Node(Op.POISSON, (domain,), {"index": Const(np.arange(n))}),))
    return NumbaKernels.from_module(run_pipeline(dom, ("fold-constants",)))


def _barrier_kernels(opt: Module, domain: Node) -> NumbaKernels:
    """The model's terms plus an `unbinned` term of the domain rates with no expected count:
    NLL - sum_i w_i ln(rate_i), the weights w entries appended to the data vector. With small
    weights it is the log barrier of the interior-point fits (fit._barrier_domain_fit)."""
    n = domain.size
    k = opt.data.array.size
    term = Node(Op.UNBINNED, (domain, Node(Op.CONST, (), {"value": Const(np.array(0.0))})), {
        "index": Const(np.arange(k, k + n)), "grid": Const(np.zeros(n)), "points": Const(np.zeros(n)),
        "observable": "domain", "lo": 0.0, "hi": 1.0})
    mod = Module(params=opt.params, data=Const(np.concatenate([opt.data.array, np.zeros(n)])),
                 terms=(*opt.terms, term), channels=opt.channels, n_main=opt.n_main, poi=opt.poi)
    return NumbaKernels.from_module(mod)


def load(source: Any, pipeline: str | None = None, **options) -> CompiledModel:
    """Read any supported spec and compile it: the one-call entry point (tweed.load)."""
    loaded = read(source, **options)
    return compile_module(loaded, pipeline=pipeline)


def optimised_ir(module: Module, pipeline: str | None = None) -> str:
    return print_module(run_pipeline(module, parse_pipeline(pipeline) if pipeline else None))


def simplified(observed, background, signal, *, model: str | None = None, covariance=None,
               uncertainties=None, third_moment=None, correlation=None, uncertainty_envelopes=None,
               signal_uncertainties=None, n_signal_parameters: int = 0, signal_parameter_bounds=None,
               signal_parameter_names=None, name: str = "simplified") -> CompiledModel:
    """A compiled simplified likelihood from arrays, with Spey's argument names in spirit.

    signal: per-bin yields, or a callable f(phi) -> yields of K = n_signal_parameters
    parameters (Spey's callable signal): the model is compiled with the yields as inputs and
    the callable is evaluated from Python, its Jacobian by finite differences
    (tweed.runtime.callable_signal). Parameters: [mu, phi..., theta..., eta...].
    """
    doc = {"observed": np.asarray(observed, float).tolist(), "background": np.asarray(background, float).tolist(),
           "name": name}
    for key, value in (("covariance", covariance), ("uncertainties", uncertainties),
                       ("third_moment", third_moment), ("correlation", correlation),
                       ("uncertainty_envelopes", uncertainty_envelopes)):
        if value is not None:
            doc[key] = np.asarray(value, float).tolist()
    if signal_uncertainties:
        doc["signal_uncertainties"] = signal_uncertainties
    if model:
        doc["model"] = model
    if not callable(signal):
        doc["signal"] = np.asarray(signal, float).tolist()
        return load(doc)
    if signal_uncertainties:
        raise InputError("signal uncertainties need numeric signal yields, not a callable (as in Spey)")
    from tweed.runtime.callable_signal import CallableSignalKernels, outer_table

    k = int(n_signal_parameters)
    spec = sl_frontend.load(doc, f"<{name}>", model=model)
    spec.signal_callable = True
    inner = compile_module(Loaded(sl_frontend.lower(spec), "simplified", spec, {"model": spec.model}))
    nb = spec.nbins
    names = list(signal_parameter_names or [f"signal_par_{j}" for j in range(k)])
    bounds = list(signal_parameter_bounds or [(None, None)] * k)
    if len(names) != k or len(bounds) != k:
        raise InputError(f"n_signal_parameters={k}, but {len(names)} names and {len(bounds)} bounds were given")
    kern = CallableSignalKernels(inner.kernels, signal, k, nb)
    table = outer_table(inner.params, k, nb, names, bounds)
    dom = None if inner.domain is None else CallableSignalKernels(inner.domain, signal, k, nb)
    meta = dict(inner.meta, signal="callable")
    return CompiledModel(kern, table, inner.data, inner.n_main, inner.channels, meta=meta,
                         background=inner.background, domain=dom)


CONVERT_TARGETS = ("hs3", "histfactory", "simplified", "xml", "ir")


def convert(loaded: Loaded, to: str, out=None):
    """The model of `loaded` in another format: a JSON document (hs3, histfactory,
    simplified), IR text (ir), or XML + ROOT files written under `out` (xml; returns the
    top-level XML path). Exporters work from the front end's spec (sample structure, names)
    and the IR's parameter table; a model a format cannot express is an error saying why."""
    from tweed.ir.printer import print_module

    if to not in CONVERT_TARGETS:
        raise InputError(f"unknown target format {to!r}; expected one of {', '.join(CONVERT_TARGETS)}")
    fmt = loaded.format
    if to == "ir":
        return print_module(loaded.module)
    if (loaded.options or {}).get("expressions"):
        if to == "hs3":
            from tweed.compiler.exporters.hs3_generic import from_module

            return from_module(loaded.module)
        raise InputError("a reparametrised model (--expr) can only be written as HS3 or Tweed IR (--to hs3|ir)")
    if to == "histfactory" or to == "xml":
        if fmt == "histfactory":
            doc = loaded.spec.doc
        elif fmt == "hs3":
            from tweed.compiler.exporters.histfactory import from_hs3

            doc = from_hs3(loaded.spec, analysis=(loaded.options or {}).get("analysis"))
        else:
            raise InputError(f"a {fmt} model is not expressible as a HistFactory workspace (write it as hs3 or ir)")
        if to == "histfactory":
            return doc
        from tweed.compiler.exporters.xml import write

        if out is None:
            raise InputError("--to xml needs an output directory (-o DIR)")
        meas = (loaded.options or {}).get("measurement")
        return write(doc, out, measurement=meas)
    if to == "hs3":
        from tweed.compiler.exporters import hs3 as hs3_export

        if fmt == "histfactory":
            return hs3_export.from_histfactory(loaded.spec.doc, loaded.module, (loaded.options or {}).get("measurement"))
        if fmt == "simplified":
            return hs3_export.from_simplified(loaded.spec, loaded.module)
        if fmt == "hs3":
            from tweed.compiler.frontends.hs3 import legacy

            return legacy.normalise(loaded.spec) if legacy.is_legacy(loaded.spec) else loaded.spec
        from tweed.compiler.exporters.hs3_generic import from_module

        return from_module(loaded.module)  # datacards, IR text: rates as HS3 functions
    # simplified
    if fmt != "simplified":
        raise InputError(f"a {fmt} model is not a simplified likelihood: summarise it with `tweed simplify`")
    return sl_frontend.to_document(loaded.spec)
