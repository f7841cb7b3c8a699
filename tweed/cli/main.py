"""The `tweed` command: cls, fit, limit, discovery, inspect, demo.

Every model command takes the same spec options (workspace, patches, patchset point,
measurement, interpolation codes). Bad input prints one line `tweed: error: ...` on stderr
and exits with code 2; a fit that does not converge exits with code 3.
"""

from __future__ import annotations

import functools
import sys
import warnings

import click

from tweed.cli.output import dumps, emit_json
from tweed.errors import FitError, InputError, IRError

EXIT_INPUT = 2
EXIT_FIT = 3


def _fail(message: str, code: int) -> None:
    click.echo(f"tweed: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)
        except InputError as exc:
            _fail(exc.one_line(), EXIT_INPUT)
        except (ValueError, IRError) as exc:
            _fail(str(exc).replace("\n", " "), EXIT_INPUT)
        except FitError as exc:
            _fail(str(exc).replace("\n", " "), EXIT_FIT)
        except KeyboardInterrupt:
            click.echo("tweed: interrupted", err=True)
            sys.exit(130)

    return wrapper


def spec_options(fn):
    """The options every model command shares."""
    opts = [
        click.argument("workspace", type=str),
        click.option("-p", "--patch", "patches", multiple=True, metavar="PATCH",
                     help="JSON Patch file applied to the workspace (repeatable, in order)."),
        click.option("--patchset", metavar="PATCHSET", help="pyhf patchset file (.json or .json.gz)."),
        click.option("--patch-name", metavar="NAME", help="Which patch of --patchset to apply."),
        click.option("--no-digest-check", is_flag=True,
                     help="Apply a patchset even if its workspace digest does not match."),
        click.option("--measurement", metavar="NAME", help="Measurement to use (default: the first)."),
        click.option("--normsys-interp", default="code4", show_default=True,
                     help="normsys interpolation: code0, code1, code2, code4."),
        click.option("--histosys-interp", default="code4p", show_default=True,
                     help="histosys interpolation: code0, code2, code4, code4p."),
        click.option("--model", "sl_model", metavar="NAME", default=None,
                     help="Simplified likelihoods: uncorrelated_background, correlated_background, "
                          "third_moment_expansion, effective_sigma, poisson, normal, multivariate_normal "
                          "(default: third_moment_expansion with third moments, else correlated_background)."),
        click.option("--expr", "exprs", multiple=True, metavar="NAME=EXPRESSION",
                     help="Replace parameter NAME by an expression of new parameters, e.g. mu=sqrt(k) "
                          "or mu=c1**2+c2**2 (repeatable; docs/simplified.md)."),
        click.option("--param-range", "param_ranges", multiple=True, metavar="NAME=LO:HI[:INIT]",
                     help="Range (and initial value) of a parameter an --expr introduces."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _load(kw: dict, require_poi: bool):
    from tweed import api
    from tweed.compiler.reparametrize import parse_assignment, parse_range

    return api.read(
        kw["workspace"], patches=kw["patches"], patchset=kw["patchset"], patch_name=kw["patch_name"],
        measurement=kw["measurement"], normsys_code=kw["normsys_interp"],
        histosys_code=kw["histosys_interp"], require_poi=require_poi,
        digest_check=not kw["no_digest_check"], model=kw.get("sl_model"),
        expressions=dict(parse_assignment(e) for e in kw.get("exprs", ())) or None,
        param_ranges=dict(parse_range(r) for r in kw.get("param_ranges", ())) or None,
    )


def _compile(kw: dict, require_poi: bool = True):
    return _compile_loaded(_load(kw, require_poi))


def _compile_loaded(loaded):
    from tweed import api

    return api.compile_module(loaded)


SPEC_KEYS = ("workspace", "patches", "patchset", "patch_name", "no_digest_check", "measurement",
             "normsys_interp", "histosys_interp", "sl_model", "exprs", "param_ranges")

APRIORI_HELP = ("Expected results a priori: fit the background-only expectation instead of the "
                "observed data (Spey's apriori); default: a posteriori.")


def _split(kwargs: dict) -> tuple[dict, dict]:
    spec = {k: kwargs.pop(k) for k in SPEC_KEYS}
    return spec, kwargs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tweed")
def cli():
    """Tweed: compile statistical models of particle physics and run inference on them."""


@cli.command()
@spec_options
@click.option("--poi-value", "mu", default=1.0, show_default=True, type=float, help="POI value to test.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q", "q0"]), default="qtilde", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write the JSON result here (atomically).")
@click.option("--details", is_flag=True, help="Also print CLs+b, CLb, test statistics and fit status.")
@click.option("--toys", "ntoys", type=int, default=None, metavar="N",
              help="Toy-based CLs with N toys per hypothesis instead of asymptotics.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the toys.")
@click.option("--first-toy", type=int, default=0, show_default=True,
              help="Index of the first toy (split a run into jobs; merge with `tweed merge-toys`).")
@click.option("--save-toys", metavar="FILE", help="Also write every toy's test statistic here.")
@click.option("--workers", type=int, default=None, metavar="K",
              help="Run the toys on a local dask cluster of K processes (chunks of toys per task).")
@click.option("--scheduler", metavar="ADDRESS", help="Run the toys on this dask scheduler's cluster.")
@click.option("--allow-failed-fits", is_flag=True,
              help="Return CLs even if one of its fits did not converge (it is then unreliable).")
@click.option("--apriori", is_flag=True, help=APRIORI_HELP)
@handle_errors
def cls(**kwargs):
    """CLs at one POI value: {"CLs_obs": x, "CLs_exp": [-2s..+2s]} (as pyhf cls).

    Asymptotic by default; with --toys, from pseudo-experiments (pyhf's ToyCalculator)."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer

    if (kw["workers"] is not None or kw["scheduler"]) and kw["ntoys"] is None:
        raise InputError("--workers and --scheduler distribute toys: give --toys N too")
    if kw["workers"] is not None and kw["workers"] < 1:
        raise InputError("--workers needs a positive number of processes")
    loaded = _load(spec, True)
    model = None if kw["ntoys"] is not None and (kw["workers"] or kw["scheduler"]) else _compile_loaded(loaded)
    if kw["ntoys"] is not None:
        if kw["ntoys"] < 1:
            raise InputError("--toys needs a positive number of toys")
        if model is None:
            res = infer.toy_hypotest_distributed(loaded, kw["mu"], ntoys=kw["ntoys"], seed=kw["seed"],
                                                 test_stat=kw["test_stat"], first_toy=kw["first_toy"],
                                                 scheduler=kw["scheduler"], workers=kw["workers"],
                                                 progress=sys.stderr.isatty())
        else:
            res = infer.toy_hypotest(model, kw["mu"], ntoys=kw["ntoys"], seed=kw["seed"],
                                     test_stat=kw["test_stat"], first_toy=kw["first_toy"])
        if kw["save_toys"]:
            res.save(kw["save_toys"])
        if any(res.failed.values()):
            click.echo(f"tweed: warning: toys whose fits failed (left out): {res.failed}", err=True)
        emit_json(res.to_full_dict() if kw["details"] else res.to_dict(), kw["output"])
        return
    res = infer.hypotest(model, kw["mu"], test_stat=kw["test_stat"], allow_failed_fits=kw["allow_failed_fits"],
                         apriori=kw["apriori"])
    failed = [k for k, f in res.details.fits.items() if not f.success]
    if failed:
        click.echo(f"tweed: warning: fits that did not converge: {', '.join(failed)}", err=True)
    emit_json(res.to_full_dict() if kw["details"] else res.to_dict(), kw["output"])


def _labelled(values, what: str) -> dict[str, str]:
    out = {}
    for v in values:
        lab, sep, rest = v.partition("=")
        if not sep or not lab or not rest:
            raise InputError(f"{what}: expected LABEL=VALUE, got {v!r}")
        out.setdefault(lab, [])
        out[lab].append(rest)
    return out


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="LABEL=MODEL...")
@click.option("--map", "map_file", metavar="FILE", help="Correlation map (YAML or JSON; docs/combination.md).")
@click.option("-p", "--patch", "patches", multiple=True, metavar="LABEL=PATCH", help="JSON Patch for one input.")
@click.option("--patchset", "patchsets", multiple=True, metavar="LABEL=PATCHSET")
@click.option("--patch-name", "patch_names", multiple=True, metavar="LABEL=NAME")
@click.option("--model", "sl_models", multiple=True, metavar="LABEL=NAME", help="Simplified-likelihood model of an input.")
@click.option("-o", "--output", metavar="FILE",
              help="Write the combined model (format: --to); every format written is read back by every command.")
@click.option("--to", "out_format", type=click.Choice(["auto", "histfactory", "hs3", "ir"]), default="auto",
              show_default=True, help="Format of -o: auto = HistFactory JSON for a .json name when every input is a "
                                      "HistFactory workspace, HS3 for other .json names, Tweed IR text otherwise.")
@click.option("--report", metavar="FILE", help="Write the merge report as JSON.")
@click.option("--cls", "do_cls", is_flag=True, help="Also print the CLs (mu = 1) of every input and of the combination.")
@click.option("--limit", "do_limit", is_flag=True, help="Also print the upper limits of every input and of the combination.")
@handle_errors
def combine(inputs, map_file, patches, patchsets, patch_names, sl_models, output, out_format, report, do_cls,
            do_limit):
    """Combine models of any formats into one likelihood: parameters matched by name and by a
    correlation map; prints the merge report (and CLs or limits with --cls/--limit)."""
    from tweed import api
    from tweed.cli.output import write_atomic
    from tweed.compiler.passes.merge_nuisances import CorrelationMap, combine as merge, load_map
    from tweed.ir.printer import print_module

    paths = {}
    for item in inputs:
        lab, sep, path = item.partition("=")
        if not sep:
            from pathlib import Path

            lab, path = Path(item).stem.split(".")[0], item
        if lab in paths:
            raise InputError(f"two inputs are labelled {lab!r}")
        paths[lab] = path
    opts = {"patches": _labelled(patches, "--patch"), "patchset": _labelled(patchsets, "--patchset"),
            "patch_name": _labelled(patch_names, "--patch-name"), "model": _labelled(sl_models, "--model")}
    for key, val in opts.items():
        for lab in val:
            if lab not in paths:
                raise InputError(f"--{key.replace('_', '-')} {lab}=...: no input is labelled {lab!r}")
    loaded = {}
    for lab, path in paths.items():
        loaded[lab] = api.read(path, patches=opts["patches"].get(lab, ()),
                               patchset=(opts["patchset"].get(lab) or [None])[0],
                               patch_name=(opts["patch_name"].get(lab) or [None])[0],
                               model=(opts["model"].get(lab) or [None])[0])
    cmap = load_map(map_file) if map_file else CorrelationMap()
    module, rep = merge({k: v.module for k, v in loaded.items()}, cmap)
    combined = api.Loaded(module, "combined", None, {})
    for line in rep.lines():
        click.echo(f"tweed combine: {line}", err=True)
    results = {"parameters": len(module.par_names), "bins": module.n_main, "report": rep.to_dict()}
    if do_cls or do_limit:
        from tweed.runtime import infer

        for lab, item in list(loaded.items()) + [("combined", combined)]:
            m = api.compile_module(item)
            r = {}
            if do_cls:
                r["CLs_obs"] = infer.hypotest(m, 1.0).CLs_obs
            if do_limit:
                r["upper_limit_obs"] = infer.upper_limit(m).upper_limit_obs
            results[lab] = r
    if report:
        write_atomic(report, dumps(rep.to_dict(), indent=1))
    if output:
        all_hf = all(item.format == "histfactory" for item in loaded.values())
        to = out_format if out_format != "auto" else (
            "ir" if not output.endswith(".json") else "histfactory" if all_hf else "hs3")
        if to == "histfactory":
            from tweed.compiler.exporters.histfactory import combined_workspace

            docs = {lab: (item.spec.doc if item.format == "histfactory" else None) for lab, item in loaded.items()}
            text = dumps(combined_workspace(docs, rep, module.poi), indent=1)
        elif to == "hs3":
            from tweed.compiler.exporters.hs3_generic import from_module

            text = dumps(from_module(module), indent=1)
        else:
            text = print_module(module)
        write_atomic(output, text)
    emit_json(results, None)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--points", type=int, default=10, show_default=True, help="Random parameter points compared.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-fit", is_flag=True, help="Skip the best-fit comparison.")
@click.option("--rtol", type=float, default=1e-10, show_default=True, help="Relative NLL tolerance for 'same'.")
@click.option("-o", "--output", metavar="FILE")
@handle_errors
def diff(a, b, points, seed, no_fit, rtol, output):
    """Are A and B the same likelihood? Parameter mapping, NLL at random points, best fits.
    Exit code 0 when they are (to --rtol), 1 when not."""
    from tweed import api
    from tweed.runtime.diff import diff as compare

    res = compare(api.load(a, require_poi=False), api.load(b, require_poi=False), points=points, seed=seed,
                  fits=not no_fit, rtol=rtol)
    emit_json(res.to_dict(), output)
    if not res.same:
        sys.exit(1)


@cli.command()
@spec_options
@click.option("--to", "target", required=True, type=click.Choice(["hs3", "histfactory", "simplified", "xml", "ir"]))
@click.option("-o", "--output", metavar="FILE|DIR", required=True,
              help="Output file (a directory for --to xml: config/*.xml and data/*.root).")
@handle_errors
def convert(**kwargs):
    """Write a model in another format: HS3 JSON, HistFactory JSON, a simplified likelihood,
    HistFactory XML + ROOT, or Tweed IR text (docs/hs3.md)."""
    spec, kw = _split(kwargs)
    from tweed import api
    from tweed.cli.output import write_atomic

    loaded = _load(spec, require_poi=False)
    if kw["target"] == "xml":
        import shutil
        import tempfile
        from pathlib import Path

        out = Path(kw["output"])
        tmp = Path(tempfile.mkdtemp(prefix=".tweed-xml-", dir=out.parent if out.parent.exists() else None))
        try:
            top = api.convert(loaded, "xml", out=tmp)
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        click.echo(f"tweed convert: wrote {out / top.relative_to(tmp)}", err=True)
        return
    result = api.convert(loaded, kw["target"])
    write_atomic(kw["output"], result if isinstance(result, str) else dumps(result, indent=1))


@cli.command(name="merge-toys")
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", metavar="FILE", help="Write the merged toys here (tweed toy format).")
@click.option("--details", is_flag=True)
@handle_errors
def merge_toys(files, output, details):
    """Merge toy files of one seed over consecutive toy ranges; print the CLs of the union."""
    from tweed.runtime.toys import ToyResult

    merged = ToyResult.merge([ToyResult.load(f) for f in files])
    if output:
        merged.save(output)
    emit_json(merged.to_full_dict() if details else merged.to_dict(), None)


def _fit_table(model, res) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"fit: twice_nll = {res.twice_nll:.6f}  status = {res.status}")
    t.add_column("parameter")
    t.add_column("best fit", justify="right")
    t.add_column("uncertainty", justify="right")
    t.add_column("", justify="left")
    unc = res.uncertainties
    for i, name in enumerate(res.par_names):
        note = "fixed" if res.fixed[i] else ("at bound" if name in res.at_bounds else "")
        u = "" if unc is None or res.fixed[i] else f"{unc[i]:.6g}"
        t.add_row(name, f"{res.bestfit[i]:.6g}", u, note)
    Console().print(t)


@cli.command()
@spec_options
@click.option("--poi-value", "mu", type=float, default=None, help="Fix the POI at this value.")
@click.option("--format", "fmt", type=click.Choice(["auto", "json", "table"]), default="auto",
              show_default=True, help="auto: a table on a terminal, JSON otherwise.")
@click.option("-o", "--output", metavar="FILE", help="Write the JSON result here (atomically).")
@handle_errors
def fit(**kwargs):
    """Maximum-likelihood fit: best-fit values, Hessian uncertainties, twice the NLL."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer

    loaded = _load(spec, require_poi=kw["mu"] is not None)
    from tweed import api

    model = api.compile_module(loaded)
    res = infer.fit(model, poi_value=kw["mu"])
    fmt = kw["fmt"]
    if fmt == "auto":
        fmt = "table" if sys.stdout.isatty() and not kw["output"] else "json"
    if fmt == "table" and not kw["output"]:
        _fit_table(model, res)
    else:
        emit_json(res.to_dict(), kw["output"])
    if not res.success:
        click.echo(f"tweed: warning: the fit did not converge ({res.status}): {res.message}", err=True)
        sys.exit(EXIT_FIT)


def _scan_grid(text: str, what: str = "--scan"):
    import numpy as np

    try:
        a, b, n = text.split(":")
        if int(n) < 2:
            raise ValueError
        return np.linspace(float(a), float(b), int(n))
    except ValueError:
        raise InputError(f"{what}: expected START:STOP:N with N >= 2, e.g. 0:5:21; got {text!r}") from None


@cli.command()
@spec_options
@click.option("--level", default=0.05, show_default=True, type=float, help="CLs level of the limit.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde", show_default=True)
@click.option("--scan", metavar="START:STOP:N", help="Grid scan with interpolation instead of root finding.")
@click.option("-o", "--output", metavar="FILE", help="Write the JSON result here (atomically).")
@click.option("--details", is_flag=True, help="Also print every scanned POI value with its CLs.")
@click.option("--plot", metavar="FILE", help="Also draw CLs against the POI with the Brazil band.")
@click.option("--apriori", is_flag=True, help=APRIORI_HELP)
@handle_errors
def limit(**kwargs):
    """Upper limits on the POI: {"upper_limit_obs": x, "upper_limit_exp": [-2s..+2s]}."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer

    model = _compile(spec)
    scan = _scan_grid(kw["scan"]) if kw["scan"] else None
    res = infer.upper_limit(model, level=kw["level"], test_stat=kw["test_stat"], scan=scan,
                            apriori=kw["apriori"])
    emit_json(res.to_full_dict() if kw["details"] else res.to_dict(), kw["output"])
    if kw["plot"]:
        from tweed.runtime import plots

        plots.save(plots.brazil(res, model.poi_name), kw["plot"])


@cli.command()
@spec_options
@click.option("--poi-value", "mu", default=1.0, show_default=True, type=float, help="POI value to test.")
@click.option("--allow-negative-signal", is_flag=True,
              help="Let the unconditional fit take the POI below 0 (Spey's allow_negative_signal).")
@click.option("--apriori", is_flag=True, help=APRIORI_HELP)
@click.option("-o", "--output", metavar="FILE", help="Write the JSON result here (atomically).")
@handle_errors
def chi2(**kwargs):
    """chi2 = 2 (NLL(mu) - NLL_min) with the nuisance parameters profiled (Spey's chi2)."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer

    model = _compile(spec)
    data = model.apriori_data() if kw["apriori"] else None
    res = infer.chi2(model, kw["mu"], data=data, allow_negative_signal=kw["allow_negative_signal"])
    emit_json(res.to_dict(), kw["output"])


@cli.command()
@spec_options
@click.option("-o", "--output", metavar="FILE", required=True, help="Where to write the simplified likelihood.")
@click.option("--fit", "mode", type=click.Choice(["postfit", "prefit"]), default="postfit", show_default=True,
              help="Background-only model fitted to the data, or at its nominal parameters.")
@click.option("--samples", type=int, default=10000, show_default=True,
              help="Samples of the nuisance parameters for the third moments.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--compare-patch", "compare", multiple=True, metavar="NAME",
              help="Also report the full and the simplified CLs (mu = 1) for this patchset point (repeatable).")
@handle_errors
def simplify(**kwargs):
    """Full -> simplified: background, covariance (Hessian), third moments (sampling) and signal
    of a model, written as a simplified likelihood (tweed/specs/simplified)."""
    spec, kw = _split(kwargs)
    from tweed import api
    from tweed.cli.output import write_atomic
    from tweed.runtime import simplify as simp

    loaded = _load(spec, require_poi=False)
    model = api.compile_module(loaded)
    if kw["samples"] < 100:
        raise InputError("--samples: at least 100 samples are needed for third moments")
    bins = [f"{c.name}[{i}]" for c in model.channels for i in range(c.stop - c.start)]
    doc = simp.simplify(model, mode=kw["mode"], samples=kw["samples"], seed=kw["seed"],
                        name=str(spec["workspace"]), bin_names=bins or None)
    rows = []
    if kw["compare"]:
        if not spec["patchset"]:
            raise InputError("--compare-patch needs --patchset")
        fulls = {}
        for name in kw["compare"]:
            fulls[name] = api.compile_module(_load(dict(spec, patch_name=name), require_poi=True))
        rows = simp.compare(fulls, doc, mode=kw["mode"])
    write_atomic(kw["output"], dumps(doc, indent=1))
    click.echo(f"tweed simplify: {len(doc['observed'])} bins written to {kw['output']}", err=True)
    if rows:
        emit_json({"comparison": rows}, None)


@cli.command()
@click.argument("kind", default="all")
@handle_errors
def cite(kind):
    """BibTeX for the methods in use: KIND is all, histfactory, simplified, a simplified model
    (third_moment_expansion, effective_sigma, ...), toys, or a model file."""
    from tweed.cite import bibtex

    click.echo(bibtex(kind), nl=False)


@cli.command()
@spec_options
@click.option("-o", "--output", metavar="FILE", help="Write the JSON result here (atomically).")
@handle_errors
def discovery(**kwargs):
    """Discovery test (q0): observed and expected p-value and significance."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer

    model = _compile(spec)
    emit_json(infer.discovery(model).to_dict(), kw["output"])


@cli.command()
@spec_options
@click.option("--ir", "ir_stage", type=click.Choice(["none", "input", "optimised"]), default="none",
              show_default=True, help="Print the IR text (before or after the pass pipeline).")
@click.option("--format", "fmt", type=click.Choice(["auto", "json", "text"]), default="auto",
              show_default=True)
@handle_errors
def inspect(**kwargs):
    """Channels, samples, bins and parameters by type."""
    spec, kw = _split(kwargs)
    from tweed.cli.inspect import inspect_text, summary
    from tweed.ir.printer import print_module

    loaded = _load(spec, require_poi=False)
    if kw["ir_stage"] == "input":
        click.echo(print_module(loaded.module), nl=False)
        return
    if kw["ir_stage"] == "optimised":
        from tweed import api

        click.echo(api.optimised_ir(loaded.module), nl=False)
        return
    info = summary(loaded)
    fmt = kw["fmt"]
    if fmt == "auto":
        fmt = "text" if sys.stdout.isatty() else "json"
    click.echo(inspect_text(info) if fmt == "text" else dumps(info, indent=2))


@cli.command()
@click.argument("workspace")
@click.argument("patchset")
@click.option("-o", "--output", default="scan.jsonl", show_default=True, metavar="FILE",
              help="JSON-lines results; an existing file is resumed (finished points are skipped).")
@click.option("--patch-name", "names", multiple=True, metavar="NAME", help="Only these points (repeatable).")
@click.option("--poi-value", "mu", default=1.0, show_default=True, type=float)
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde", show_default=True)
@click.option("--limits", is_flag=True, help="Also compute the upper limits of every point.")
@click.option("--scheduler", metavar="ADDRESS", help="Use this dask scheduler instead of a local cluster.")
@click.option("--workers", type=int, default=None, help="Local cluster size (default: one per CPU).")
@click.option("--no-digest-check", is_flag=True)
@click.option("--measurement", metavar="NAME")
@click.option("--normsys-interp", default="code4", show_default=True)
@click.option("--histosys-interp", default="code4p", show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@handle_errors
def scan(workspace, patchset, output, names, mu, test_stat, limits, scheduler, workers,
         no_digest_check, measurement, normsys_interp, histosys_interp, no_progress):
    """CLs (and limits) for every point of a patchset, in parallel on dask.distributed."""
    from tweed import scan as scanning
    from tweed.compiler.frontends.histfactory.lower import normalize_code

    scanning.check_inputs(workspace, patchset)
    opts = scanning.ScanOptions(mu=mu, test_stat=test_stat, limits=limits, measurement=measurement,
                                normsys_code=normalize_code("normsys", normsys_interp),
                                histosys_code=normalize_code("histosys", histosys_interp))
    summary = scanning.scan(workspace, patchset, output, opts, names=list(names) or None,
                            scheduler=scheduler, workers=workers, digest_check=not no_digest_check,
                            progress=not no_progress and sys.stderr.isatty())
    click.echo(f"tweed scan: {summary.done} points done, {summary.skipped} already in {output}, "
               f"{summary.failed} failed, {summary.seconds:.1f} s", err=True)
    for name, err in summary.failures[:10]:
        click.echo(f"  failed: {name}: {err}", err=True)
    if summary.failed:
        sys.exit(EXIT_FIT)


def _range(text: str, name: str):
    return _scan_grid(text, f"--range of {name}")


@cli.command(name="scan-profile")
@spec_options
@click.option("--param", "names", multiple=True, required=True, metavar="NAME",
              help="Parameter to scan (once for 1D, twice for 2D).")
@click.option("--range", "ranges", multiple=True, required=True, metavar="START:STOP:N",
              help="Grid of each --param, in the same order.")
@click.option("-o", "--output", metavar="FILE")
@click.option("--plot", metavar="FILE", help="Also draw the profile (1D) or its contours (2D).")
@handle_errors
def scan_profile(**kwargs):
    """Profile-likelihood scan in one or two parameters, with 68%/95% intervals (1D)."""
    spec, kw = _split(kwargs)
    from tweed.runtime.profile import profile_scan

    if len(kw["names"]) != len(kw["ranges"]) or len(kw["names"]) not in (1, 2):
        raise InputError("give one or two --param, each with its --range")
    model = _compile(spec, require_poi=False)
    for n in kw["names"]:
        if n not in model.par_names:
            raise InputError(f"no parameter named {n!r} in the model")
    grids = [_range(r, n) for n, r in zip(kw["names"], kw["ranges"])]
    scan = profile_scan(model, list(kw["names"]), grids)
    emit_json(scan.to_dict(), kw["output"])
    if kw["plot"]:
        from tweed.runtime import plots

        plots.save(plots.profile(scan), kw["plot"])


@cli.command()
@spec_options
@click.option("-o", "--output", metavar="FILE")
@click.option("--plot", metavar="FILE", help="Also draw the impact ranking.")
@click.option("--pulls", "pulls_plot", metavar="FILE", help="Also draw the pulls and constraints.")
@click.option("--top", type=int, default=20, show_default=True, help="Parameters shown in --plot.")
@click.option("--workers", type=int, default=None, help="Threads for the refits (default: CPUs).")
@handle_errors
def ranking(**kwargs):
    """Pre- and post-fit impacts of every nuisance parameter on the POI, pulls, constraints."""
    spec, kw = _split(kwargs)
    from tweed.runtime.ranking import ranking as rank

    model = _compile(spec)
    res = rank(model, workers=kw["workers"])
    emit_json(res.to_dict(), kw["output"])
    from tweed.runtime import plots

    if kw["plot"]:
        plots.save(plots.impacts(res, kw["top"]), kw["plot"])
    if kw["pulls_plot"]:
        plots.save(plots.pulls(res), kw["pulls_plot"])


@cli.command()
@spec_options
@click.option("-o", "--output", metavar="FILE")
@handle_errors
def gof(**kwargs):
    """Goodness of fit: saturated-model test and its p-value, chi2 per channel."""
    spec, kw = _split(kwargs)
    from tweed.runtime.gof import goodness_of_fit

    model = _compile(spec, require_poi=False)
    emit_json(goodness_of_fit(model).to_dict(), kw["output"])


@cli.group()
def plot():
    """Plots from results or models (PNG, PDF, SVG by the file name)."""


@plot.command(name="contour")
@click.argument("scan_file")
@click.option("--x", "x", required=True, help="Patch label on the x axis (e.g. m1).")
@click.option("--y", "y", required=True, help="Patch label on the y axis (e.g. m2).")
@click.option("--level", default=0.05, show_default=True, type=float)
@click.option("-o", "--output", required=True, metavar="FILE")
@handle_errors
def plot_contour(scan_file, x, y, level, output):
    """Exclusion contour (observed, expected, +-1 sigma) from a `tweed scan` JSON-lines file."""
    import json as _json

    from tweed.runtime import plots

    records = []
    with open(scan_file, encoding="utf-8") as fh:
        for k, line in enumerate(fh, 1):
            try:
                records.append(_json.loads(line))
            except _json.JSONDecodeError:
                raise InputError("not a JSON line", source=scan_file, location=f"line {k}") from None
    for r in records:
        if x not in r.get("values", {}) or y not in r.get("values", {}):
            raise InputError(f"scan records have no labels {x!r} and {y!r}", source=scan_file)
    plots.save(plots.contour(records, x, y, level), output)


@plot.command(name="yields")
@spec_options
@click.option("--postfit", is_flag=True, help="At the best fit (default: at the initial values).")
@click.option("-o", "--output", required=True, metavar="FILE")
@handle_errors
def plot_yields(**kwargs):
    """Stacked expected yields per sample and the data, per channel (pre- or post-fit)."""
    spec, kw = _split(kwargs)
    from tweed import api
    from tweed.runtime import infer, plots

    loaded = _load(spec, require_poi=False)
    model = api.compile_module(loaded)
    pars = infer.fit(model, hessian=False).require_success().bestfit if kw["postfit"] else model.inits()
    ys = loaded.sample_yields(pars)
    data = {c.name: model.data[c.start:c.stop] for c in model.channels}
    plots.save(plots.yields(ys, data, "post-fit" if kw["postfit"] else "pre-fit"), kw["output"])


@plot.command(name="correlation")
@spec_options
@click.option("-o", "--output", required=True, metavar="FILE")
@handle_errors
def plot_correlation(**kwargs):
    """Correlation matrix of the best fit."""
    spec, kw = _split(kwargs)
    from tweed.runtime import infer, plots

    model = _compile(spec, require_poi=False)
    plots.save(plots.correlation(infer.fit(model).require_success()), kw["output"])


@cli.command()
@click.option("-o", "--output", metavar="FILE", help="Also write the results as JSON here.")
@handle_errors
def demo(output):
    """Fit, CLs and upper limit on the example workspace that ships with Tweed."""
    from tweed.cli.demo import run_demo

    run_demo(output)


def main(argv=None):
    cli.main(args=argv, prog_name="tweed")


if __name__ == "__main__":
    main()
