"""A module: the parameter table, the observed data, and the likelihood terms.

The NLL of a module at parameters p is the sum of its terms' values. Rates and
constraints are expression graphs hanging off the terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from tweed.ir.node import Const, Node, topo_order


@dataclass(frozen=True)
class ParamSet:
    """A named group of parameter components (pyhf's parameter set).

    ``kind`` records where it came from (normfactor, normsys, staterror, ...) for reports;
    the likelihood itself only depends on the terms.
    """

    name: str
    inits: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    fixed: tuple[bool, ...]
    kind: str = "free"
    scalar: bool = True  # named "x" (True) or "x[0]", "x[1]", ... (False), as pyhf names them

    @property
    def size(self) -> int:
        return len(self.inits)

    def component_names(self) -> list[str]:
        if self.scalar:
            return [self.name]
        return [f"{self.name}[{i}]" for i in range(self.size)]


@dataclass(frozen=True)
class Channel:
    """Layout of the main data: channel name and its slice of the main bins."""

    name: str
    start: int
    stop: int

    @property
    def nbins(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Module:
    params: tuple[ParamSet, ...]
    data: Const  # observed data: main bins followed by auxiliary data (pyhf's layout)
    terms: tuple[Node, ...]
    channels: tuple[Channel, ...] = ()
    n_main: int = 0
    poi: str | None = None
    meta: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # rates that fits must keep >= 0 beyond the Poisson means (Spey's positivity constraint on
    # the background of a simplified likelihood): an optimiser constraint, not a term
    domain: Node | None = None

    # -- parameter table ---------------------------------------------------------------
    @cached_property
    def offsets(self) -> dict[str, int]:
        out, k = {}, 0
        for p in self.params:
            out[p.name] = k
            k += p.size
        return out

    @cached_property
    def n_params(self) -> int:
        return sum(p.size for p in self.params)

    def param_set(self, name: str) -> ParamSet:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @cached_property
    def par_names(self) -> list[str]:
        return [n for p in self.params for n in p.component_names()]

    @cached_property
    def poi_index(self) -> int | None:
        return None if self.poi is None else self.offsets[self.poi]

    def inits(self) -> np.ndarray:
        return np.array([x for p in self.params for x in p.inits], dtype=float)

    def bounds(self) -> np.ndarray:
        return np.array([b for p in self.params for b in p.bounds], dtype=float).reshape(-1, 2)

    def fixed(self) -> np.ndarray:
        return np.array([f for p in self.params for f in p.fixed], dtype=bool)

    # -- graph -------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        return topo_order(list(self.terms) + ([self.domain] if self.domain is not None else []))

    def consts(self) -> list[Const]:
        """Every constant the module refers to, in first-use order (data first)."""
        seen: dict[str, Const] = {self.data.digest: self.data}
        for node in self.nodes():
            for _, v in node.attrs:
                if isinstance(v, Const) and v.digest not in seen:
                    seen[v.digest] = v
        return list(seen.values())

    def with_terms(self, terms: tuple[Node, ...] | list[Node]) -> "Module":
        return replace(self, terms=tuple(terms))

    def with_data(self, data) -> "Module":
        return replace(self, data=data if isinstance(data, Const) else Const(np.asarray(data, float)))

    def meta_dict(self) -> dict[str, str]:
        return dict(self.meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Module):
            return NotImplemented
        return (
            self.params == other.params
            and self.data == other.data
            and len(self.terms) == len(other.terms)
            and all(a is b for a, b in zip(self.terms, other.terms))
            and self.channels == other.channels
            and self.n_main == other.n_main
            and self.poi == other.poi
            and self.meta == other.meta
            and self.domain is other.domain
        )

    __hash__ = None  # type: ignore[assignment]
