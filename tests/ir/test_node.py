import numpy as np
import pytest

from tweed.errors import IRError
from tweed.ir import Const, Node, Op


def test_hash_consing_returns_the_same_node():
    a = Node(Op.PARAM, (), {"name": "mu"})
    c = Node(Op.CONST, (), {"value": Const([1.0, 2.0])})
    m1 = Node(Op.MUL, (c, a))
    m2 = Node(Op.MUL, (Node(Op.CONST, (), {"value": Const(np.array([1.0, 2.0]))}), Node(Op.PARAM, (), {"name": "mu"})))
    assert m1 is m2
    assert Node(Op.MUL, (a, c)) is not m1  # argument order matters


def test_nodes_are_immutable():
    a = Node(Op.PARAM, (), {"name": "mu"})
    with pytest.raises(AttributeError):
        a.op = Op.CONST


def test_const_is_content_addressed_and_read_only():
    c1, c2 = Const([1.0, 2.0]), Const(np.array([1.0, 2.0]))
    assert c1 == c2 and hash(c1) == hash(c2)
    assert Const([1.0, 2.5]) != c1
    assert Const([1, 2]) != c1  # dtype is part of the content
    with pytest.raises(ValueError):
        c1.array[0] = 3.0


def test_shapes_and_broadcasting():
    s = Node(Op.PARAM, (), {"name": "mu"})
    v = Node(Op.CONST, (), {"value": Const([1.0, 2.0, 3.0])})
    assert s.shape == () and v.shape == (3,)
    assert Node(Op.MUL, (v, s)).shape == (3,)
    assert Node(Op.CONCAT, (v, s)).shape == (4,)
    assert Node(Op.SEGMENT_SUM, (v,), {"offsets": Const([0, 1, 3])}).shape == (2,)
    with pytest.raises(IRError, match="broadcast"):
        Node(Op.ADD, (v, Node(Op.CONST, (), {"value": Const([1.0, 2.0])})))


def test_signature_checks():
    with pytest.raises(IRError, match="args"):
        Node(Op.GATHER, (), {"index": Const([0])})
    with pytest.raises(IRError, match="attributes missing"):
        Node(Op.INTERP_FACTOR, (Node(Op.PARAM, (), {"name": "a"}),), {"code": "4"})
