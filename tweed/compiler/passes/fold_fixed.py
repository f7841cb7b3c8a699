"""fold-fixed: substitute fixed parameters by their init values (not in the default pipeline).

Requires: a verified module.
Guarantees: no param node reads a component marked fixed.
Preserves: the NLL at every point whose fixed components equal their inits; the parameter
  table (fixed entries stay, their gradient becomes zero). Not in the default pipeline
  because pyhf lets a caller hold a fixed parameter at a value other than its init
  (init_pars); enable with TWEED_PIPELINE=fold-fixed,fold-constants,fuse-modifiers,prune.
"""

from __future__ import annotations

import numpy as np

from tweed.compiler.passes import register
from tweed.compiler.passes.fold_constants import const
from tweed.compiler.passes.rewrite import applies_to, rewrite_module
from tweed.ir.module import Module
from tweed.ir.node import Node
from tweed.ir.ops import Op


@applies_to(Op.PARAM)
def fixed_param(node: Node, m: Module) -> Node | None:
    if node.op is not Op.PARAM:
        return None
    p = m.param_set(node.attr("name"))
    start = node.attr("start", 0)
    stop = node.attr("stop", 1)
    if not all(p.fixed[start:stop]):
        return None
    vals = np.array(p.inits[start:stop], dtype=float)
    return const(vals[0] if node.shape == () else vals)


@register("fold-fixed")
def fold_fixed(module: Module) -> Module:
    return rewrite_module(module, (fixed_param,))
