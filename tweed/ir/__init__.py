"""The graph IR: nodes (node.py), the op set (ops.py), modules (module.py),
the text form (printer.py, parser.py), the verifier (verify.py) and the
reference interpreter that defines the semantics (interpret.py)."""

from tweed.ir.ops import Op, INTERP_CODES  # noqa: F401
from tweed.ir.node import Const, Node  # noqa: F401
from tweed.ir.module import Module, ParamSet  # noqa: F401
