import pytest

from tests.models import simple_workspace
from tweed.api import read
from tweed.errors import IRError
from tweed.ir import Const, Node, Op
from tweed.ir.verify import verify


def module():
    return read(simple_workspace()).module


def test_valid_module_passes():
    m = module()
    assert verify(m) is m


def test_unknown_parameter_is_reported_with_the_node_text():
    m = module()
    bad = Node(Op.POISSON, (Node(Op.PARAM, (), {"name": "nope"}),), {"index": Const([0])})
    with pytest.raises(IRError, match=r"unknown parameter set 'nope'.*param \{name=\"nope\"\}"):
        verify(m.with_terms([bad]))


def test_out_of_range_gather_and_bad_code():
    m = module()
    p = Node(Op.PARAMS, (), {"size": m.n_params})
    g = Node(Op.GATHER, (p,), {"index": Const([0, 5])})
    with pytest.raises(IRError, match="index out of range"):
        verify(m.with_terms([Node(Op.POISSON, (g,), {"index": Const([0, 1])})]))
    a = Node(Op.PARAM, (), {"name": "mu"})
    f = Node(Op.INTERP_FACTOR, (a,), {"code": "4p", "lo": Const(0.9), "hi": Const(1.1)})
    with pytest.raises(IRError, match="code '4p' not one of"):
        verify(m.with_terms([Node(Op.POISSON, (f,), {"index": Const([0])})]))


def test_terms_must_be_terms_and_data_in_range():
    m = module()
    a = Node(Op.PARAM, (), {"name": "mu"})
    with pytest.raises(IRError, match="not a likelihood term"):
        verify(m.with_terms([a]))
    with pytest.raises(IRError, match="data index out of range"):
        verify(m.with_terms([Node(Op.GAUSS, (a,), {"index": Const([99]), "sigma": Const(1.0)})]))
    with pytest.raises(IRError, match="must be positive"):
        verify(m.with_terms([Node(Op.GAUSS, (a,), {"index": Const([0]), "sigma": Const(0.0)})]))
