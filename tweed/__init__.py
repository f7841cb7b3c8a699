"""Tweed: a compiler for the statistical models of particle physics.

The pipeline, in processing order::

    specs/ -> compiler/frontends/ -> ir/ -> compiler/passes/ -> codegen/ -> runtime/

Quick use from Python::

    import tweed
    model = tweed.load("BkgOnly.json", patches=["patch.json"])
    result = tweed.infer.hypotest(model, 1.0)
"""

from tweed.errors import TweedError, InputError  # noqa: F401

__version__ = "0.1.0"


def load(source, **options):
    """Read a spec (path, ``"-"`` for stdin, or a dict) and compile it into a CompiledModel.

    Keyword options are those of :func:`tweed.api.load`.
    """
    from tweed.api import load as _load

    return _load(source, **options)


def __getattr__(name):
    # ``tweed.infer`` is imported lazily so that ``import tweed`` stays cheap.
    if name == "infer":
        import tweed.runtime.infer as infer

        return infer
    raise AttributeError(name)
