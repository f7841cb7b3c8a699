"""prune: drop parameter sets that reach nothing, and report them.

Requires: a verified module.
Guarantees: every parameter set is read by some node (a rate or a constraint); the module's
  meta carries "pruned" (dropped sets) and "decoupled" (sets read only by their own
  constraint: they do not change any rate, so their best fit is their auxiliary value).
Preserves: the NLL as a function of the remaining parameters; the order of the remaining
  parameter sets (so a HistFactory model keeps pyhf's parameter order).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tweed.compiler.passes import register
from tweed.compiler.passes.rewrite import applies_to, rewrite_module
from tweed.ir.module import Module
from tweed.ir.node import Const, Node, topo_order
from tweed.ir.ops import Op


def _reads(roots: list[Node], m: Module) -> set[str]:
    names: set[str] = set()
    flat_owner = np.repeat(np.arange(len(m.params)), [p.size for p in m.params])
    for n in topo_order(roots):
        if n.op is Op.PARAM:
            names.add(n.attr("name"))
        for a in n.args:
            if a.op is Op.PARAMS:
                if n.op is Op.GATHER:
                    owners = np.unique(flat_owner[n.attr("index").array])
                    names.update(m.params[i].name for i in owners)
                else:  # the whole vector is read
                    names.update(p.name for p in m.params)
    return names


@register("prune")
def prune(module: Module) -> Module:
    rates = [t for t in module.terms if t.op is Op.POISSON]
    constraints = [t for t in module.terms if t.op is not Op.POISSON]
    used_by_rates = _reads(rates, module)
    used = used_by_rates | _reads(constraints, module)
    dropped = [p.name for p in module.params if p.name not in used]
    decoupled = [p.name for p in module.params if p.name in used and p.name not in used_by_rates]
    meta = [(k, v) for k, v in module.meta if k not in ("pruned", "decoupled")]
    if decoupled:
        meta.append(("decoupled", ",".join(decoupled)))
    if not dropped:
        return _with_meta(module, meta)
    if module.poi in dropped:
        dropped.remove(module.poi)
    keep = [p for p in module.params if p.name not in dropped]
    old_off = module.offsets
    new_flat = []
    for p in keep:
        new_flat.extend(range(old_off[p.name], old_off[p.name] + p.size))
    remap = np.full(module.n_params, -1, dtype=np.int64)
    remap[np.array(new_flat, dtype=np.int64)] = np.arange(len(new_flat))
    new_params_node = Node(Op.PARAMS, (), {"size": len(new_flat)})

    @applies_to(Op.GATHER)
    def reindex(node: Node, m: Module) -> Node | None:
        if node.op is Op.GATHER and node.args[0].op is Op.PARAMS and node.args[0].attr("size") == module.n_params:
            return Node(Op.GATHER, (new_params_node,), {"index": Const(remap[node.attr("index").array])})
        return None

    out = rewrite_module(module, (reindex,))
    meta.append(("pruned", ",".join(dropped)))
    return replace(out, params=tuple(keep), meta=tuple(meta))


def _with_meta(module: Module, meta) -> Module:
    return replace(module, meta=tuple(meta))
