"""The compiler: front ends (spec -> IR), passes (IR -> IR), exporters (IR -> spec)."""


def clear_caches() -> None:
    """Forget what the HistFactory front end and the passes remember between builds (the
    parsed and lowered samples, the fused decompositions, the folded nodes, the workspaces
    known to be valid; docs/design.md, "Signal scans rebuild only what a patch adds"): the
    next build then costs what a first build costs, and their memory is released."""
    import importlib
    import weakref

    hf = importlib.import_module("tweed.compiler.frontends.histfactory")
    ast = importlib.import_module("tweed.compiler.frontends.histfactory.ast")
    lower = importlib.import_module("tweed.compiler.frontends.histfactory.lower")
    fold = importlib.import_module("tweed.compiler.passes.fold_constants")
    fuse = importlib.import_module("tweed.compiler.passes.fuse_modifiers")
    hf._VALID.clear()
    ast._SAMPLES = {}
    for cache in (lower._REQS, lower._RATES):
        cache.current, cache.previous = {}, {}
    fold._MEMO.clear()
    fuse._PRODUCTS = weakref.WeakKeyDictionary()
