"""The generic rewrite driver: local rules run bottom-up, each node to a fixed point.

A rule takes a node whose args are already rewritten and returns a replacement or None.
Replacements built by a rule are rewritten too; a memo keeps every node visited once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tweed.ir.module import Module
from tweed.ir.node import Node, topo_order

Rule = Callable[[Node, Module], "Node | None"]


class _Rewriter:
    def __init__(self, rules: Sequence[Rule], module: Module):
        self.rules = rules
        self.module = module
        self.done: dict[int, Node] = {}
        self.keep: list[Node] = []  # keeps ids in `done` from being reused

    def node(self, node: Node) -> Node:
        for n in topo_order([node]):
            if id(n) in self.done:
                continue
            args = tuple(self.done[id(a)] for a in n.args)
            cur = n if all(x is y for x, y in zip(args, n.args)) else Node(n.op, args, n.attrs)
            cur = self._fix(cur)
            self.done[id(n)] = cur
            self.done[id(cur)] = cur
            self.keep.extend((n, cur))
        return self.done[id(node)]

    def _fix(self, cur: Node) -> Node:
        while True:
            for rule in self.rules:
                out = rule(cur, self.module)
                if out is not None and out is not cur:
                    if out.shape != cur.shape:
                        raise AssertionError(f"rule {rule.__name__} changed a shape")
                    # new subgraphs built by the rule are rewritten before we go on
                    cur = self.node(out) if id(out) not in self.done else self.done[id(out)]
                    break
            else:
                return cur


def rewrite_module(module: Module, rules: Sequence[Rule]) -> Module:
    rw = _Rewriter(rules, module)
    return module.with_terms([rw.node(t) for t in module.terms])
