"""The compiler: front ends (spec -> IR), passes (IR -> IR), exporters (IR -> spec)."""


def clear_caches() -> None:
    """Forget what the HistFactory front end and the passes remember between builds (the
    parsed and lowered samples, the fused decompositions, the folded nodes, the workspaces
    known to be valid; docs/design.md, "Signal scans rebuild only what a patch adds"): the
    next build then costs what a first build costs, and their memory is released."""
    import importlib

    # (importlib: the packages export functions named like these modules)
    hf = importlib.import_module("tweed.compiler.frontends.histfactory")
    ast = importlib.import_module("tweed.compiler.frontends.histfactory.ast")
    lower = importlib.import_module("tweed.compiler.frontends.histfactory.lower")
    fold = importlib.import_module("tweed.compiler.passes.fold_constants")
    fuse = importlib.import_module("tweed.compiler.passes.fuse_modifiers")
    for cache in (hf._VALID, ast._SAMPLES, lower._REQS, lower._RATES, fold._MEMO, fuse._PRODUCTS):
        cache.clear()
