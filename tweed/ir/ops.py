"""The closed op set of the IR. Shapes are () (scalar) or (n,) (vector); dtype is always f64.

Every op has NumPy semantics defined in interpret.py. Attribute values are hashable:
ints, floats, strings, tuples, and Const (a content-addressed constant table entry).
"""

from __future__ import annotations

import enum


class Op(enum.Enum):
    # --- expected rates ---------------------------------------------------------------
    CONST = "const"  # constant tensor {value=@c}
    PARAM = "param"  # components of one parameter set {name, start, stop}; no start/stop: scalar
    PARAMS = "params"  # the whole parameter vector in table order {size}
    GATHER = "gather"  # out[i] = x[index[i]] {index=@int}
    INTERP_FACTOR = "interp_factor"  # factor f(alpha), f(0)=1, f(+1)=hi, f(-1)=lo {code, lo, hi}
    INTERP_SHIFT = "interp_shift"  # shift d(alpha) added to nom; nom+d(+-1)=hi/lo {code, lo, nom, hi}
    ADD = "add"  # elementwise sum of 2+ args; scalar args broadcast
    MUL = "mul"  # elementwise product of 2+ args; scalar args broadcast
    CONCAT = "concat"  # concatenation of 1+ args (a scalar counts as length 1)
    SEGMENT_SUM = "segment_sum"  # out[s] = sum(x[offsets[s]:offsets[s+1]]) {offsets=@int}
    SEGMENT_PROD = "segment_prod"  # out[s] = prod(x[offsets[s]:offsets[s+1]]) {offsets=@int}
    EXPR = "expr"  # elementwise expression of the args x0, x1, ... {expr} (tweed/specs/expr.lark)
    # --- likelihood terms (value: a scalar contribution to the NLL) ---------------------
    POISSON = "poisson"  # sum_i -ln Pois_c(data[index_i] | x_i), continuous Poisson {index}
    GAUSS = "gauss"  # sum_i -ln N(data[index_i] | x_i, sigma_i) {index, sigma}
    POISSON_AUX = "poisson_aux"  # sum_i -ln Pois_c(data[index_i] | x_i*tau_i) {index, tau}
    MVNORMAL = "mvnormal"  # -ln MVN(data[index] | x, Sigma) {index, precision=Sigma^-1 flat, logdet}
    # -ln LogN(data[index_i] | mu=x_i, sigma_i) {index, sigma}
    LOGNORMAL = "lognormal"
    # extended unbinned likelihood: rate - sum_i data[index_i] ln density_i over points (events
    # and a quadrature grid on the observable's range [lo, hi]); density = the event-rate density
    # at each point, rate = the expected number of events (0 for a plain pdf); data[index_i] =
    # event weights (grid points 0); expected data[index_i] = grid_i * density_i (Asimov weights)
    UNBINNED = "unbinned"  # args: density (n,), rate () {index, grid, points, observable, lo, hi}


TERM_OPS = frozenset({Op.POISSON, Op.GAUSS, Op.POISSON_AUX, Op.MVNORMAL, Op.LOGNORMAL, Op.UNBINNED})

# Interpolation codes, named as pyhf names them ("4p" is pyhf's code4p = ROOT histosys code 4).
# Which codes an op accepts: the verifier's table.
INTERP_CODES = {
    Op.INTERP_FACTOR: ("0", "1", "2", "4"),
    Op.INTERP_SHIFT: ("0", "2", "4", "4p"),
}

# Attribute keys per op: required, optional.
ATTR_KEYS: dict[Op, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Op.CONST: (("value",), ()),
    Op.PARAM: (("name",), ("start", "stop")),
    Op.PARAMS: (("size",), ()),
    Op.GATHER: (("index",), ()),
    Op.INTERP_FACTOR: (("code", "hi", "lo"), ()),
    Op.INTERP_SHIFT: (("code", "hi", "lo", "nom"), ()),
    Op.ADD: ((), ()),
    Op.MUL: ((), ()),
    Op.CONCAT: ((), ()),
    Op.SEGMENT_SUM: (("offsets",), ()),
    Op.SEGMENT_PROD: (("offsets",), ()),
    Op.EXPR: (("expr",), ()),
    Op.POISSON: (("index",), ()),
    Op.GAUSS: (("index", "sigma"), ()),
    Op.POISSON_AUX: (("index", "tau"), ()),
    Op.MVNORMAL: (("index", "logdet", "precision"), ()),
    Op.LOGNORMAL: (("index", "sigma"), ()),
    Op.UNBINNED: (("grid", "hi", "index", "lo", "observable", "points"), ()),
}

# Number of args per op: (min, max); None = unbounded.
ARITY: dict[Op, tuple[int, int | None]] = {
    Op.CONST: (0, 0),
    Op.PARAM: (0, 0),
    Op.PARAMS: (0, 0),
    Op.GATHER: (1, 1),
    Op.INTERP_FACTOR: (1, 1),
    Op.INTERP_SHIFT: (1, 1),
    Op.ADD: (2, None),
    Op.MUL: (2, None),
    Op.CONCAT: (1, None),
    Op.SEGMENT_SUM: (1, 1),
    Op.SEGMENT_PROD: (1, 1),
    Op.EXPR: (1, None),
    Op.POISSON: (1, 1),
    Op.GAUSS: (1, 1),
    Op.POISSON_AUX: (1, 1),
    Op.MVNORMAL: (1, 1),
    Op.LOGNORMAL: (1, 1),
    Op.UNBINNED: (2, 2),
}
