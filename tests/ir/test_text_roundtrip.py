"""parse(print(m)) == m, on hand-made and front-end-made modules, before and after passes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.models import rich_workspace, simple_workspace
from tests.strategies import workspaces
from tweed.api import read
from tweed.compiler.pipeline import run_pipeline
from tweed.errors import IRError
from tweed.ir.interpret import nll
from tweed.ir.parser import parse_module
from tweed.ir.printer import print_module


@pytest.mark.parametrize("ws", [simple_workspace(), rich_workspace()])
@pytest.mark.parametrize("optimised", [False, True])
def test_roundtrip(ws, optimised):
    m = read(ws).module
    if optimised:
        m = run_pipeline(m)
    text = print_module(m)
    back = parse_module(text)
    assert back == m
    assert print_module(back) == text
    x = m.inits()
    assert nll(back, x) == nll(m, x)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workspaces())
def test_roundtrip_generated(ws):
    m = read(ws).module
    for stage in (m, run_pipeline(m)):
        assert parse_module(print_module(stage)) == stage


def test_parser_rejects_edited_constants():
    text = print_module(read(simple_workspace()).module)
    line = next(l for l in text.splitlines() if l.startswith("const") and "5.0, 3.0" in l)
    with pytest.raises(IRError, match="digest"):
        parse_module(text.replace(line, line.replace("5.0, 3.0", "5.0, 3.5")))


def test_parser_reports_syntax_errors():
    with pytest.raises(IRError, match="cannot parse"):
        parse_module("tweed-ir 1\n%0 = = param\n")


def test_text_form_is_one_line_per_node():
    m = run_pipeline(read(rich_workspace()).module)
    node_lines = [l for l in print_module(m).splitlines() if l.startswith("%")]
    assert len(node_lines) == len(m.nodes())
    assert all(" : f64[" in l for l in node_lines)
