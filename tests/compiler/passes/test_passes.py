"""Each pass: IR text before and after, and the same NLL as the interpreter on the input."""

import os

import numpy as np
import pytest

from tests.models import rich_workspace, simple_workspace
from tests.strategies import random_points
from tweed.api import read
from tweed.compiler import passes
from tweed.compiler.pipeline import DEFAULT_PIPELINE, parse_pipeline, run_pipeline
from tweed.ir import Op
from tweed.ir.interpret import nll
from tweed.ir.printer import print_module
from tweed.ir.verify import verify


def ops(m):
    return [n.op for n in m.nodes()]


def same_nll(a, b, rtol=1e-12):
    rng = np.random.default_rng(1)
    for x in [a.inits()] + random_points(a.inits(), a.bounds(), a.fixed(), rng):
        np.testing.assert_allclose(nll(b, x), nll(a, x), rtol=rtol)


def test_fold_constants_drops_identity_modifiers_and_sums_constant_samples():
    ws = simple_workspace()
    ws["channels"][0]["samples"].append({"name": "const_bkg", "data": [3.0, 4.0], "modifiers": []})
    ws["channels"][0]["samples"].append({"name": "flat", "data": [1.0, 1.0], "modifiers": [
        {"name": "noop_norm", "type": "normsys", "data": {"hi": 1.0, "lo": 1.0}},
        {"name": "noop_histo", "type": "histosys", "data": {"hi_data": [1.0, 1.0], "lo_data": [1.0, 1.0]}}]})
    before = read(ws).module
    after = passes.get("fold-constants")(before)
    verify(after)
    text_before, text_after = print_module(before), print_module(after)
    assert "interp_factor" in text_before and "interp_shift" in text_before
    assert "interp_factor" not in text_after and "interp_shift" not in text_after
    # const_bkg and flat (now parameter-free) became one constant [4, 5] in the channel sum
    channel_sum = [n for n in after.nodes() if n.op is Op.ADD and n.shape == (2,)][-1]
    consts = [a for a in channel_sum.args if a.op is Op.CONST]
    assert len(consts) == 1 and consts[0].attr("value").array.tolist() == [4.0, 5.0]
    same_nll(before, after)


def test_fuse_modifiers_batches_every_kind():
    before = passes.get("fold-constants")(read(rich_workspace()).module)
    after = passes.get("fuse-modifiers")(before)
    verify(after)
    o = ops(after)
    assert o.count(Op.INTERP_FACTOR) == 1 and o.count(Op.INTERP_SHIFT) == 1
    assert o.count(Op.PARAM) == 0 and o.count(Op.PARAMS) == 1
    assert [t.op for t in after.terms] == [Op.POISSON, Op.GAUSS, Op.POISSON_AUX]
    same_nll(before, after)


def test_fuse_leaves_unknown_forms_alone():
    """A channel whose rate is not a sum of products stays as it is, in place."""
    from tweed.ir import Const, Node

    m = read(rich_workspace()).module
    rate = m.terms[0].args[0]
    odd = Node(Op.MUL, (rate.args[0], rate.args[0]))  # (sum)^2 is not HistFactory's form
    new_rate = Node(Op.CONCAT, (rate.args[0], odd))
    m2 = m.with_terms([Node(Op.POISSON, (new_rate,), m.terms[0].attrs)] + list(m.terms[1:]))
    fused = passes.get("fuse-modifiers")(m2)
    verify(fused)
    same_nll(m2, fused)


def test_prune_drops_unused_sets_and_reports_decoupled_ones():
    from dataclasses import replace

    from tweed.ir.module import ParamSet

    m = read(simple_workspace()).module
    extra = ParamSet("unused", (0.0,), ((-1.0, 1.0),), (False,), "normsys")
    m2 = replace(m, params=m.params + (extra,))
    pruned = passes.get("prune")(passes.get("fuse-modifiers")(m2))
    verify(pruned)
    assert [p.name for p in pruned.params] == [p.name for p in m.params]
    assert pruned.meta_dict()["pruned"] == "unused"
    same_nll(m, pruned)
    rich = run_pipeline(read(rich_workspace()).module)
    assert "decoupled" not in rich.meta_dict()


def test_default_pipeline_preserves_the_nll():
    before = read(rich_workspace()).module
    after = run_pipeline(before)
    assert parse_pipeline(None) == DEFAULT_PIPELINE
    same_nll(before, after)


def test_fold_fixed_substitutes_fixed_parameters():
    ws = rich_workspace()
    ws["measurements"][0]["config"]["parameters"][0]["fixed"] = True  # lumi
    m = read(ws).module
    folded = run_pipeline(m, ("fold-fixed", "fold-constants"))
    assert all(n.attr("name") != "lumi" for n in folded.nodes() if n.op is Op.PARAM)
    x = m.inits()
    np.testing.assert_allclose(nll(folded, x), nll(m, x), rtol=1e-12)


def test_unknown_pass_name():
    with pytest.raises(KeyError, match="unknown pass 'fuse'"):
        parse_pipeline("fold-constants,fuse")


def test_print_after_dumps_the_ir(monkeypatch, capsys):
    import io

    monkeypatch.setenv("TWEED_PRINT_AFTER", "fuse-modifiers")
    monkeypatch.setenv("TWEED_TIME_PASSES", "1")
    buf = io.StringIO()
    run_pipeline(read(simple_workspace()).module, stream=buf)
    out = buf.getvalue()
    assert "// IR after fuse-modifiers" in out and "// IR after prune" not in out
    assert "// pass prune:" in out and "params {size=3}" in out
