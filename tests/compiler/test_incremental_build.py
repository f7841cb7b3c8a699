"""A signal scan rebuilds the same background at every point: the patch application shares
unchanged parts, the parser and the lowering reuse unchanged samples, and fuse-modifiers
reuses its per-sample decomposition. Here: the reuse happens, and a model built with warm
caches is the model built from nothing (same NLL to the last bit), also when a signal adds
parameters that shift the offsets of the background's."""

from __future__ import annotations

import copy

import jsonpatch
import numpy as np
import pytest

from tests.models import rich_workspace, simple_workspace
from tests.strategies import random_points
from tweed.api import compile_module, read
from tweed.compiler import clear_caches
from tweed.compiler.frontends.histfactory.patches import Patch, apply_patches


def signal(name, data, extra=()):
    mods = [{"name": "mu", "type": "normfactor", "data": None}, *extra]
    return {"op": "add", "path": "/channels/0/samples/-", "value": {"name": name, "data": data,
                                                                   "modifiers": mods}}


# "aaa_*" parameters sort first among the normsys: they shift the offsets of the background's
POINTS = [
    [signal("sig_a", [1.0, 2.0, 0.5])],
    [signal("sig_b", [2.0, 1.0, 0.2], [{"name": "aaa_sig_syst", "type": "normsys",
                                        "data": {"hi": 1.2, "lo": 0.85}}])],
    [signal("sig_c", [0.5, 0.5, 3.0], [{"name": "aaa_sig_syst", "type": "normsys",
                                        "data": {"hi": 1.1, "lo": 0.9}},
                                       {"name": "aab_shape", "type": "histosys",
                                        "data": {"hi_data": [0.6, 0.6, 3.3], "lo_data": [0.4, 0.45, 2.8]}}])],
    # a channel "AA" (sorted first) whose samples carry stat_SR too: the SR samples' slice of
    # the staterror set moves
    [signal("sig_a", [1.0, 2.0, 0.5]),
     {"op": "add", "path": "/channels/-", "value": {"name": "AA", "samples": [
         {"name": "bkg", "data": [5.0], "modifiers": [{"name": "stat_SR", "type": "staterror", "data": [0.5]}]},
         {"name": "other", "data": [1.0], "modifiers": [{"name": "stat_SR", "type": "staterror", "data": [0.2]}]}]}},
     {"op": "add", "path": "/observations/-", "value": {"name": "AA", "data": [7.0]}}],
    [signal("sig_a", [1.0, 2.0, 0.5])],
]


def nll_values(ws, ops):
    cm = compile_module(read(ws, patches=[Patch(ops=ops, source="<patch>")]).module)
    rng = np.random.default_rng(7)
    xs = [cm.inits()] + random_points(cm.inits(), cm.bounds(), cm.fixed(), rng)
    return cm.par_names, [cm.nll(x) for x in xs]


def test_warm_caches_build_the_same_models():
    ws = rich_workspace()
    warm = [nll_values(ws, ops) for ops in POINTS]
    for ops, (names, values) in zip(POINTS, warm):
        clear_caches()
        fresh_names, fresh_values = nll_values(ws, ops)
        assert list(names) == list(fresh_names)
        assert values == fresh_values  # bit for bit
    assert "aaa_sig_syst" in warm[1][0] and warm[1][0] != warm[0][0]  # the offsets did move


def test_unchanged_samples_are_reused():
    ws = rich_workspace()
    first = read(ws, patches=[Patch(ops=POINTS[0], source="<p>")]).spec.ast
    second = read(ws, patches=[Patch(ops=POINTS[1], source="<p>")]).spec.ast
    a, b = first.channels[1].samples, second.channels[1].samples
    assert all(x is y for x, y in zip(a, b))  # the untouched channel's samples: same objects
    sig_a = [s for s in first.channels[0].samples if s.name == "sig_a"]
    assert sig_a and all(s.name != "sig_a" for s in second.channels[0].samples)
    clear_caches()  # then a build starts from nothing
    third = read(ws, patches=[Patch(ops=POINTS[1], source="<p>")]).spec.ast
    assert not any(x is y for x, y in zip(b, third.channels[1].samples))


def test_a_document_changed_in_place_is_parsed_again():
    ws = simple_workspace()
    assert read(ws).spec.ast.channels[0].samples[1].data == (50.0, 52.0)
    ws["channels"][0]["samples"][1]["data"][0] = 60.0  # same dict objects, new content
    again = read(ws)
    assert again.spec.ast.channels[0].samples[1].data == (60.0, 52.0)
    assert compile_module(again.module).expected_data(again.module.inits())[0] == pytest.approx(65.0)


@pytest.mark.parametrize("ops", [
    [{"op": "add", "path": "/channels/0/samples/0", "value": {"name": "x", "data": [1.0, 1.0], "modifiers": []}},
     {"op": "add", "path": "/channels/0/samples/0/modifiers/-",
      "value": {"name": "mu", "type": "normfactor", "data": None}},
     {"op": "replace", "path": "/channels/0/samples/0/data/1", "value": 4.0}],
    [{"op": "replace", "path": "/observations/0/data", "value": [1.0, 2.0]},
     {"op": "replace", "path": "/measurements/0/config/poi", "value": "mu"},
     {"op": "add", "path": "/measurements/0/config/parameters/-", "value": {"name": "mu", "bounds": [[0, 5]]}},
     {"op": "add", "path": "/measurements/0/config/parameters/0/inits", "value": [2.0]}],
    [{"op": "remove", "path": "/channels/0/samples/0"},
     {"op": "copy", "from": "/channels/0/samples/0", "path": "/channels/0/samples/-"},
     {"op": "replace", "path": "/channels/0/samples/1/name", "value": "bkg2"},
     {"op": "move", "from": "/observations/0", "path": "/observations/-"}],
])
def test_patches_match_the_library_and_change_no_input(ops):
    ws = simple_workspace()
    ws_before, ops_before = copy.deepcopy(ws), copy.deepcopy(ops)
    got = apply_patches(ws, [Patch(ops=ops, source="<p>")])
    assert got == jsonpatch.apply_patch(copy.deepcopy(ws), copy.deepcopy(ops))
    assert ws == ws_before and ops == ops_before
