"""The generic rewrite driver: local rules run bottom-up, each node to a fixed point.

A rule takes a node whose args are already rewritten and returns a replacement or None;
`applies_to(op, ...)` declares which ops a rule looks at, so others are not even offered.
Replacements built by a rule are rewritten too; a memo keeps every node visited once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tweed.ir.module import Module
from tweed.ir.node import Node
from tweed.ir.ops import Op

Rule = Callable[[Node, Module], "Node | None"]


_SAME = object()


class _Rewriter:
    def __init__(self, rules: Sequence[Rule], module: Module, memo=None):
        self.rules = rules
        self.memo = memo
        # a rule may declare the ops it looks at (rule.ops); others are skipped without a call
        self.by_op: dict = {}
        for op in Op:
            self.by_op[op] = [r for r in rules if op in getattr(r, "ops", (op,))]
        self.module = module
        self.done: dict[int, Node] = {}
        self.keep: list[Node] = []  # keeps ids in `done` from being reused

    def _pending(self, root: Node) -> list[Node]:
        """The nodes under root not yet rewritten, args first; a node found in the memo (or
        done) is resolved on the spot and its subgraph is not walked."""
        order: list[Node] = []
        seen: set[int] = set()
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if id(node) in seen or id(node) in self.done or self._recall(node):
                    continue
                seen.add(id(node))
            if i < len(node.args):
                stack.append((node, i + 1))
                stack.append((node.args[i], 0))
            else:
                order.append(node)
        return order

    def _recall(self, n: Node) -> bool:
        if self.memo is None:
            return False
        hit = self.memo.get(n)
        if hit is None:
            return False
        cur = n if hit is _SAME else hit
        self.done[id(n)] = cur
        self.done[id(cur)] = cur
        self.keep.extend((n, cur))
        return True

    def node(self, node: Node) -> Node:
        for n in self._pending(node):
            if id(n) in self.done:  # rewritten meanwhile, inside a rule's new subgraph
                continue
            args = tuple(self.done[id(a)] for a in n.args)
            cur = n if all(x is y for x, y in zip(args, n.args)) else Node(n.op, args, n.attrs)
            cur = self._fix(cur)
            if self.memo is not None:
                self.memo[n] = _SAME if cur is n else cur
            self.done[id(n)] = cur
            self.done[id(cur)] = cur
            self.keep.extend((n, cur))
        return self.done[id(node)]

    def _fix(self, cur: Node) -> Node:
        while True:
            for rule in self.by_op[cur.op]:
                out = rule(cur, self.module)
                if out is not None and out is not cur:
                    if out.shape != cur.shape:
                        raise AssertionError(f"rule {rule.__name__} changed a shape")
                    # new subgraphs built by the rule are rewritten before we go on
                    cur = self.node(out) if id(out) not in self.done else self.done[id(out)]
                    break
            else:
                return cur


def applies_to(*ops: Op):
    def deco(rule):
        rule.ops = frozenset(ops)
        return rule

    return deco


def rewrite_module(module: Module, rules: Sequence[Rule], memo=None) -> Module:
    """Rewrite every term's graph. `memo` (a WeakKeyDictionary kept by the pass) remembers
    results across calls: valid for rules that look at the node only, never the module, so
    a signal scan re-folds only the samples a patch changed."""
    rw = _Rewriter(rules, module, memo)
    return module.with_terms([rw.node(t) for t in module.terms])
