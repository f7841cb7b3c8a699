"""The bad-input matrix: every case is an input a user could give and the one-line error
Tweed must answer with (file, location, what was expected). tests/errors/test_matrix.py runs
them; tools/make_errors_doc.py writes docs/errors.md from them."""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import dataclass, field
from typing import Callable

from tests.models import counting_card, rich_workspace, simple_workspace
from tweed.compiler.frontends.histfactory.patches import digest


@dataclass
class Case:
    id: str
    what: str  # the mistake, in words
    files: Callable[[], dict]  # name -> str | bytes | dict/list (JSON)
    args: list[str]  # {name} placeholders are replaced by the files' paths
    message: str  # a substring of the one-line error
    location: str | None = None  # a substring naming where (JSON path, line, ...)
    command: str = "cls"
    output: bool = True  # pass -o OUT and check that no output file is left


def ws(**edits):
    def make():
        w = simple_workspace()
        for path, value in edits.items():
            _set(w, path, value)
        return {"ws.json": w}
    return make


def rich(mutate):
    def make():
        w = rich_workspace()
        mutate(w)
        return {"ws.json": w}
    return make


def _set(doc, path, value):
    keys = path.split("/")
    for k in keys[:-1]:
        doc = doc[int(k)] if isinstance(doc, list) else doc[k]
    last = keys[-1]
    if value is DELETE:
        del doc[int(last) if isinstance(doc, list) else last]
    elif isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


DELETE = object()
S0 = "channels/0/samples/0"
S1 = "channels/0/samples/1"


def text(t):
    return lambda: {"ws.json": t}


def with_patch(patch, base=None):
    def make():
        return {"ws.json": base or simple_workspace(), "p.json": patch}
    return make


def patchset(mutate=None, ws_edit=None):
    def make():
        w = simple_workspace()
        ps = {"version": "1.0.0",
              "metadata": {"references": {"hepdata": "ins1234567"}, "digests": {"sha256": digest(w)},
                           "labels": ["m1"], "description": "grid"},
              "patches": [{"metadata": {"name": "p1", "values": [100]}, "patch": [
                  {"op": "add", "path": "/channels/0/samples/-", "value": {
                      "name": "s2", "data": [1.0, 2.0],
                      "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}}]}]}
        if mutate:
            mutate(ps)
        if ws_edit:
            ws_edit(w)
        return {"ws.json": w, "ps.json": ps}
    return make


def _shapefactor_mismatch():
    def channel(name, data):
        return {"name": name, "samples": [{"name": "s", "data": data, "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None},
            {"name": "sf", "type": "shapefactor", "data": None}]}]}
    return {"ws.json": {"channels": [channel("A", [1.0, 2.0]), channel("B", [3.0])],
                        "observations": [{"name": "A", "data": [1.0, 2.0]}, {"name": "B", "data": [3.0]}],
                        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
                        "version": "1.0.0"}}


def sl(**edits):
    """A 2-bin simplified likelihood with edits (None deletes a key)."""
    def make():
        doc = {"observed": [51.0, 48.0], "background": [50.0, 52.0], "covariance": [[25.0, 5.0], [5.0, 49.0]],
               "signal": [12.0, 11.0]}
        for k, v in edits.items():
            if v is DELETE:
                doc.pop(k)
            else:
                doc[k] = v
        return {"sl.json": doc}

    return make


CARD = counting_card()


def card(edit=lambda t: t, extra=None):
    def make():
        out = {"card.txt": edit(CARD)}
        out.update(extra or {})
        return out

    return make


def hs3(mutate=None):
    """The HS3 of the simple workspace, mutated."""
    def make():
        from tweed import api

        doc = api.convert(api.read(simple_workspace()), "hs3")
        if mutate:
            mutate(doc)
        return {"m.hs3.json": doc}

    return make


def _root_file() -> bytes:
    """A small ROOT file with one histogram (bkg), written with uproot."""
    import tempfile

    import numpy as np
    import uproot

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/in.root"
        with uproot.recreate(path) as f:
            f["bkg"] = (np.array([10.0]), np.array([0.0, 1.0]))
        return open(path, "rb").read()


def _dup_patch(ps):
    ps["patches"].append(copy.deepcopy(ps["patches"][0]))


def _lumi_config(w, **kw):
    for p in w["measurements"][0]["config"]["parameters"]:
        if p["name"] == "lumi":
            p.update(kw)


CASES: list[Case] = [
    # -- reading files ---------------------------------------------------------------------
    Case("missing-file", "the workspace file does not exist", lambda: {}, ["{ws.json}"], "no such file"),
    Case("empty-file", "an empty file", text(""), ["{ws.json}"], "empty file"),
    Case("truncated-json", "JSON cut off in the middle", text('{"channels": [{"name": "a"'), ["{ws.json}"],
         "invalid JSON", "line 1 column"),
    Case("invalid-json", "a syntax error (double comma)", text('{"channels": [1,, 2]}'), ["{ws.json}"],
         "invalid JSON", "line 1 column"),
    Case("not-utf8", "binary content", lambda: {"ws.json": b"\xff\xfe\x00bad"}, ["{ws.json}"], "not UTF-8"),
    Case("gz-not-gzip", "a .gz name on plain text", lambda: {"ws.json.gz": "{}"}, ["{ws.json.gz}"],
         "not gzip"),
    Case("corrupt-gzip", "a damaged gzip file", lambda: {"ws.json.gz": gzip.compress(b"{}")[:-6]},
         ["{ws.json.gz}"], "corrupt gzip"),
    Case("directory", "a directory instead of a file", lambda: {"d/x.json": "{}"}, ["{d}"], "directory"),
    Case("unknown-format", "JSON that is no model", text('{"hello": 1}'), ["{ws.json}"],
         "unrecognised model format"),
    Case("patch-as-workspace", "a JSON Patch given as the workspace",
         text('[{"op": "add", "path": "/x", "value": 1}]'), ["{ws.json}"], "this is a JSON Patch"),
    Case("patchset-as-workspace", "a patchset given as the workspace",
         lambda: {"ws.json": patchset()()["ps.json"]}, ["{ws.json}"], "this is a patchset"),
    # -- workspace structure (schema) -------------------------------------------------------
    Case("missing-channels", "no 'channels'", ws(channels=DELETE), ["{ws.json}"],
         "'channels' is a required property", "/"),
    Case("missing-version", "no 'version'", ws(version=DELETE), ["{ws.json}"], "'version' is a required"),
    Case("wrong-version", "version 2.0.0", ws(version="2.0.0"), ["{ws.json}"], "'1.0.0' was expected", "/version"),
    Case("extra-top-key", "an unknown top-level key", ws(extra=1), ["{ws.json}"],
         "Additional properties are not allowed", "/"),
    Case("empty-channels", "an empty channel list", ws(channels=[]), ["{ws.json}"], "should be non-empty",
         "/channels"),
    Case("sample-no-data", "a sample without data", ws(**{f"{S0}/data": DELETE}), ["{ws.json}"],
         "'data' is a required property", "/channels/0/samples/0"),
    Case("sample-data-string", "a yield given as a string", ws(**{f"{S0}/data/0": "5"}), ["{ws.json}"],
         "is not of type 'number'", "/channels/0/samples/0/data/0"),
    Case("sample-empty-data", "an empty yield list", ws(**{f"{S0}/data": []}), ["{ws.json}"],
         "should be non-empty", "/channels/0/samples/0/data"),
    Case("unknown-modifier-type", "modifier type 'shapesyst'", ws(**{f"{S1}/modifiers/0/type": "shapesyst"}),
         ["{ws.json}"], "is not one of", "/channels/0/samples/1/modifiers/0/type"),
    Case("modifier-no-name", "a modifier without a name", ws(**{f"{S0}/modifiers/0/name": DELETE}),
         ["{ws.json}"], "'name' is a required property", "/channels/0/samples/0/modifiers/0"),
    Case("normsys-no-hi", "a normsys without 'hi'",
         rich(lambda w: w["channels"][0]["samples"][0]["modifiers"][2]["data"].pop("hi")), ["{ws.json}"],
         "'hi' is a required property", "/channels/0/samples/0/modifiers/2/data"),
    Case("normfactor-with-data", "a normfactor carrying data", ws(**{f"{S0}/modifiers/0/data": [1.0]}),
         ["{ws.json}"], "is not of type 'null'", "/channels/0/samples/0/modifiers/0/data"),
    Case("lumi-wrong-name", "a lumi modifier not named 'lumi'",
         rich(lambda w: w["channels"][0]["samples"][0]["modifiers"][1].update(name="lumi2")), ["{ws.json}"],
         "'lumi' was expected", "/channels/0/samples/0/modifiers/1/name"),
    Case("observation-no-name", "an observation without a name", ws(**{"observations/0/name": DELETE}),
         ["{ws.json}"], "'name' is a required property", "/observations/0"),
    Case("measurement-no-poi", "a measurement without a POI", ws(**{"measurements/0/config/poi": DELETE}),
         ["{ws.json}"], "'poi' is a required property", "/measurements/0/config"),
    Case("bounds-not-pairs", "bounds given as a flat list",
         ws(**{"measurements/0/config/parameters": [{"name": "mu", "bounds": [0, 10]}]}), ["{ws.json}"],
         "is not of type 'array'", "/measurements/0/config/parameters/0/bounds/"),
    # -- workspace content (cross-field checks) ----------------------------------------------
    Case("duplicate-channel", "two channels with one name",
         lambda: {"ws.json": (lambda w: (w["channels"].append(copy.deepcopy(w["channels"][0])), w)[1])(simple_workspace())},
         ["{ws.json}"], "duplicate channel name 'singlechannel'", "/channels/1"),
    Case("duplicate-sample", "two samples with one name", ws(**{f"{S1}/name": "signal"}), ["{ws.json}"],
         "duplicate sample name 'signal'", "/channels/0/samples/1"),
    Case("duplicate-modifier", "one modifier twice on a sample",
         rich(lambda w: w["channels"][0]["samples"][0]["modifiers"].append(
             copy.deepcopy(w["channels"][0]["samples"][0]["modifiers"][0]))), ["{ws.json}"],
         "duplicate modifier normfactor 'mu'", "/channels/0/samples/0/modifiers/3"),
    Case("duplicate-observation", "two observations of one channel",
         lambda: {"ws.json": (lambda w: (w["observations"].append(copy.deepcopy(w["observations"][0])), w)[1])(simple_workspace())},
         ["{ws.json}"], "duplicate observation name", "/observations/1"),
    Case("sample-bins-mismatch", "a sample with more bins than the channel",
         ws(**{f"{S1}/data": [50.0, 52.0, 1.0]}), ["{ws.json}"], "has 3 bins, but channel", "/channels/0/samples/1/data"),
    Case("observation-bins-mismatch", "an observation with fewer bins", ws(**{"observations/0/data": [55.0]}),
         ["{ws.json}"], "has 1 bins, channel 'singlechannel' has 2", "/observations/0/data"),
    Case("histosys-bins-mismatch", "a histosys template with the wrong bin count",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"][1]["data"].update(hi_data=[1.0])), ["{ws.json}"],
         "has 1 bins, the sample has 3", "/channels/0/samples/1/modifiers/1/data/hi_data"),
    Case("staterror-bins-mismatch", "staterror uncertainties with the wrong bin count",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"][3].update(data=[1.0, 2.0])), ["{ws.json}"],
         "has 2 bins, the sample has 3", "/channels/0/samples/1/modifiers/3/data"),
    Case("shapesys-bins-mismatch", "shapesys uncertainties with the wrong bin count",
         ws(**{f"{S1}/modifiers/0/data": [5.0]}), ["{ws.json}"], "has 1 bins, the sample has 2",
         "/channels/0/samples/1/modifiers/0/data"),
    Case("missing-observation", "a channel without an observation", ws(**{"observations/0/name": "other"}),
         ["{ws.json}"], "has no observation", "/channels/0"),
    Case("nan-yield", "a NaN yield", ws(**{f"{S0}/data/1": float("nan")}), ["{ws.json}"],
         "sample yield is nan, expected a finite number", "/channels/0/samples/0/data/1"),
    Case("inf-yield", "an infinite yield", ws(**{f"{S0}/data/0": float("inf")}), ["{ws.json}"],
         "sample yield is inf", "/channels/0/samples/0/data/0"),
    Case("negative-yield", "a negative yield", ws(**{f"{S1}/data/0": -3.0}), ["{ws.json}"],
         "sample yield is negative", "/channels/0/samples/1/data/0"),
    Case("negative-observation", "a negative observed count", ws(**{"observations/0/data/1": -1.0}),
         ["{ws.json}"], "observed count is negative", "/observations/0/data/1"),
    Case("nan-observation", "a NaN observed count", ws(**{"observations/0/data/0": float("nan")}),
         ["{ws.json}"], "observed count is nan", "/observations/0/data/0"),
    Case("negative-uncertainty", "a negative shapesys uncertainty", ws(**{f"{S1}/modifiers/0/data/1": -7.0}),
         ["{ws.json}"], "shapesys uncertainty is negative", "/channels/0/samples/1/modifiers/0/data/1"),
    Case("nan-staterror", "a NaN staterror uncertainty",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"][3]["data"].__setitem__(0, float("nan"))),
         ["{ws.json}"], "staterror uncertainty is nan", "/channels/0/samples/1/modifiers/3/data/0"),
    Case("nan-histosys", "a NaN histosys template",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"][1]["data"]["lo_data"].__setitem__(2, float("nan"))),
         ["{ws.json}"], "histosys template is nan", "/channels/0/samples/1/modifiers/1/data/lo_data/2"),
    Case("zero-normsys-code4", "a normsys factor of 0 with code4 (log of 0)",
         rich(lambda w: w["channels"][0]["samples"][0]["modifiers"][2]["data"].update(lo=0.0)), ["{ws.json}"],
         "code4 needs positive factors", "/channels/0/samples/0/modifiers/2/data/lo"),
    Case("negative-histosys-code4", "a negative template with histosys code4",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"][1]["data"]["lo_data"].__setitem__(0, -1.0)),
         ["{ws.json}", "--histosys-interp", "code4"], "code4 needs positive templates",
         "/channels/0/samples/1/modifiers/1/data/lo_data/0"),
    Case("shared-shapesys", "one shapesys name on two samples",
         rich(lambda w: w["channels"][0]["samples"][1]["modifiers"].append(
             {"name": "other_unc", "type": "shapesys", "data": [1.0, 1.0, 1.0]})), ["{ws.json}"],
         "a shapesys cannot be shared", "/channels/0/samples/1/modifiers/4"),
    Case("name-reuse", "one name as normfactor and normsys",
         ws(**{f"{S1}/modifiers": [{"name": "mu", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}),
         ["{ws.json}"], "incompatible parameter settings", "/channels/0/samples/1/modifiers/0"),
    Case("shapefactor-bins", "a shapefactor shared by channels of different bin counts", _shapefactor_mismatch,
         ["{ws.json}"], "shared by channels with 2 and 1 bins"),
    Case("staterror-mismatched-carriers", "a staterror spanning channels carried by different samples",
         rich(lambda w: w["channels"][1]["samples"][0]["modifiers"].append(
             {"name": "stat_SR", "type": "staterror", "data": [1.0, 1.0, 1.0]})), ["{ws.json}"],
         "carried by different samples"),
    # -- measurements and parameters ---------------------------------------------------------
    Case("unknown-poi", "a POI no modifier defines", ws(**{"measurements/0/config/poi": "mu_SIG"}), ["{ws.json}"],
         "POI 'mu_SIG' of measurement 'meas' is not a parameter", "/measurements/0/config/poi"),
    Case("vector-poi", "a per-bin parameter as POI", ws(**{"measurements/0/config/poi": "uncorr_bkguncrt"}),
         ["{ws.json}"], "the POI must be a single parameter", "/measurements/0/config/poi"),
    Case("unknown-measurement", "--measurement naming none", ws(), ["{ws.json}", "--measurement", "other"],
         "no measurement named 'other'"),
    Case("duplicate-measurement", "two measurements with one name",
         lambda: {"ws.json": (lambda w: (w["measurements"].append(copy.deepcopy(w["measurements"][0])), w)[1])(simple_workspace())},
         ["{ws.json}"], "duplicate measurement name", "/measurements/1"),
    Case("duplicate-parameter-config", "two configs of one parameter",
         ws(**{"measurements/0/config/parameters": [{"name": "mu"}, {"name": "mu"}]}), ["{ws.json}"],
         "duplicate parameter config name 'mu'", "/measurements/0/config/parameters/1"),
    Case("bounds-reversed", "bounds with lo > hi",
         ws(**{"measurements/0/config/parameters": [{"name": "mu", "bounds": [[5.0, 1.0]]}]}), ["{ws.json}"],
         "lower bound 5.0 is above upper bound 1.0", "/measurements/0/config/parameters/0/bounds/0"),
    Case("init-outside-bounds", "an init outside its bounds",
         ws(**{"measurements/0/config/parameters": [{"name": "mu", "inits": [20.0]}]}), ["{ws.json}"],
         "init 20.0 of parameter 'mu' is outside its bounds", "/measurements/0/config/parameters/0/inits/0"),
    Case("config-wrong-length", "inits of the wrong length for a per-bin parameter",
         ws(**{"measurements/0/config/parameters": [{"name": "uncorr_bkguncrt", "inits": [1.0]}]}),
         ["{ws.json}"], "has 1 entries, expected 2", "/measurements/0/config/parameters/0/inits"),
    Case("config-unused-key", "sigmas for a normfactor",
         ws(**{"measurements/0/config/parameters": [{"name": "mu", "sigmas": [0.1]}]}), ["{ws.json}"],
         "does not use 'sigmas'", "/measurements/0/config/parameters/0/sigmas"),
    Case("zero-sigma", "a zero Gaussian width", rich(lambda w: _lumi_config(w, sigmas=[0.0])), ["{ws.json}"],
         "sigma is 0.0, expected > 0", "/measurements/0/config/parameters/0/sigmas/0"),
    Case("lumi-no-config", "a lumi modifier without its parameter config",
         rich(lambda w: w["measurements"][0]["config"]["parameters"].pop(0)), ["{ws.json}"],
         "needs inits from a parameter config named 'lumi'"),
    Case("unknown-interp-code", "--normsys-interp code9", ws(), ["{ws.json}", "--normsys-interp", "code9"],
         "unknown normsys interpolation code"),
    # -- patches and patchsets ---------------------------------------------------------------
    Case("patch-path-missing", "a patch adding to channel 3 of 1",
         with_patch([{"op": "add", "path": "/channels/3/samples/-", "value": {}}]), ["{ws.json}", "-p", "{p.json}"],
         "patch operation 0 (add /channels/3/samples/-) does not apply", "/0"),
    Case("patch-test-fails", "a patch whose test op fails",
         with_patch([{"op": "test", "path": "/version", "value": "0.9"}]), ["{ws.json}", "-p", "{p.json}"],
         "test failed", "/0"),
    Case("patch-not-a-patch", "a patch file that is a JSON object", with_patch({"op": "add"}),
         ["{ws.json}", "-p", "{p.json}"], "does not match the HistFactory jsonpatch schema"),
    Case("patch-bad-op", "a patch op 'append'", with_patch([{"op": "append", "path": "/x", "value": 1}]),
         ["{ws.json}", "-p", "{p.json}"], "is not one of", "/0/op"),
    Case("patch-breaks-workspace", "a patch adding a sample without modifiers",
         with_patch([{"op": "add", "path": "/channels/0/samples/-", "value": {"name": "x", "data": [1.0, 2.0]}}]),
         ["{ws.json}", "-p", "{p.json}"], "'modifiers' is a required property", "/channels/0/samples/2"),
    Case("patch-bins-mismatch", "a patch adding a sample with the wrong bin count",
         with_patch([{"op": "add", "path": "/channels/0/samples/-",
                      "value": {"name": "x", "data": [1.0], "modifiers": []}}]),
         ["{ws.json}", "-p", "{p.json}"], "has 1 bins, but channel", "/channels/0/samples/2/data"),
    Case("patch-invalid-json", "a patch file with a syntax error", lambda: {"ws.json": simple_workspace(), "p.json": "[{"},
         ["{ws.json}", "-p", "{p.json}"], "invalid JSON"),
    Case("patchset-digest", "a patchset made for another workspace",
         patchset(ws_edit=lambda w: w["observations"][0]["data"].__setitem__(0, 56.0)),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p1"], "patchset digest mismatch",
         "/metadata/digests"),
    Case("patchset-unknown-patch", "a patch name not in the patchset", patchset(),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p2"], "no patch named 'p2'"),
    Case("patchset-no-name", "--patchset without --patch-name", patchset(), ["{ws.json}", "--patchset", "{ps.json}"],
         "needs --patch-name"),
    Case("patch-name-no-patchset", "--patch-name without --patchset", ws(), ["{ws.json}", "--patch-name", "p1"],
         "--patch-name given without --patchset"),
    Case("patchset-schema", "a patchset without metadata", patchset(lambda ps: ps.pop("metadata")),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p1"], "'metadata' is a required property"),
    Case("patchset-values-labels", "patch values not matching the labels",
         patchset(lambda ps: ps["patches"][0]["metadata"].update(values=[1, 2])),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p1"],
         "patch has 2 values but the patchset has 1 labels", "/patches/0/metadata/values"),
    Case("patchset-duplicate-names", "two patches with one name", patchset(_dup_patch),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p1"], "duplicate patch name 'p1'",
         "/patches/1/metadata/name"),
    Case("patchset-bad-digest-format", "a digest that is no hash",
         patchset(lambda ps: ps["metadata"].update(digests={"sha256": "abc"})),
         ["{ws.json}", "--patchset", "{ps.json}", "--patch-name", "p1"], "does not match", "/metadata/digests/sha256"),
    # -- command options ---------------------------------------------------------------------
    Case("toys-zero", "--toys 0", ws(), ["{ws.json}", "--toys", "0"], "--toys needs a positive number"),
    Case("workers-without-toys", "--workers without --toys", ws(), ["{ws.json}", "--workers", "2"],
         "--workers and --scheduler distribute toys: give --toys N too"),
    Case("fixed-poi", "a POI fixed by the measurement",
         ws(**{"measurements/0/config/parameters": [{"name": "mu", "fixed": True}]}), ["{ws.json}"],
         "the POI 'mu' is fixed"),
    Case("limit-bad-scan", "--scan that is no grid", ws(), ["{ws.json}", "--scan", "0-5"], "expected START:STOP:N",
         command="limit"),
    Case("profile-unknown-param", "scan-profile of an unknown parameter", ws(),
         ["{ws.json}", "--param", "nope", "--range", "0:1:3"], "no parameter named 'nope'", command="scan-profile"),
    Case("profile-bad-range", "scan-profile with a malformed range", ws(),
         ["{ws.json}", "--param", "mu", "--range", "0:1"], "expected START:STOP:N", command="scan-profile"),
    Case("merge-toys-not-toys", "merge-toys on a workspace", ws(), ["{ws.json}"], "not a Tweed toy file",
         command="merge-toys", output=False),
    Case("contour-not-jsonl", "plot contour on a file that is no JSON lines", text("not json\n"),
         ["{ws.json}", "--x", "m1", "--y", "m2"], "not a JSON line", "line 1", command="plot contour"),
    Case("scan-missing-patchset", "scan with a missing patchset file", ws(), ["{ws.json}", "{nope.json}"],
         "no such file", command="scan"),
    # -- simplified likelihoods ------------------------------------------------------------
    Case("sl-length-mismatch", "a 2-bin background with 1-bin data (Spey fails later, in numpy)",
         sl(observed=[51.0]), ["{sl.json}"], "background has 2 entries, but there are 1 bins", "/background"),
    Case("sl-covariance-shape", "a covariance of the wrong size", sl(covariance=[[25.0]]), ["{sl.json}"],
         "covariance must be 2x2", "/covariance"),
    Case("sl-not-positive-definite", "a covariance that is not positive definite",
         sl(covariance=[[25.0, 40.0], [40.0, 49.0]]), ["{sl.json}"], "covariance is not positive definite",
         "/covariance"),
    Case("sl-asymmetric-covariance", "an asymmetric covariance", sl(covariance=[[25.0, 5.0], [4.0, 49.0]]),
         ["{sl.json}"], "covariance is not symmetric", "/covariance/0/1"),
    Case("sl-covariance-not-number", "a covariance entry that is no number",
         sl(covariance=[[25.0, "5"], [5.0, 49.0]]), ["{sl.json}"], "is not of type 'number'", "/covariance/0/1"),
    Case("sl-covariance-boolean", "a boolean in the covariance", sl(covariance=[[25.0, 5.0], [True, 49.0]]),
         ["{sl.json}"], "is not of type 'number'", "/covariance/1/0"),
    Case("sl-negative-background", "a negative background", sl(background=[50.0, -2.0]), ["{sl.json}"],
         "background value is negative", "/background/1"),
    Case("sl-nan", "NaN in the observed counts", text('{"observed": [NaN, 48], "background": [50, 52], '
                                                       '"covariance": [[25, 5], [5, 49]], "signal": [1, 1]}'),
         ["{ws.json}"], "expected a finite number", "/observed/0"),
    Case("sl-no-signal", "no signal yields", sl(signal=DELETE), ["{sl.json}"], "no signal yields"),
    Case("sl-unknown-model", "--model that does not exist", sl(), ["{sl.json}", "--model", "gaussian"],
         "unknown simplified-likelihood model 'gaussian'"),
    Case("sl-model-needs-key", "--model third_moment_expansion without third moments", sl(),
         ["{sl.json}", "--model", "third_moment_expansion"], "needs 'third_moment'"),
    Case("sl-model-on-workspace", "--model on a HistFactory workspace", ws(), ["{ws.json}", "--model", "poisson"],
         "--model selects a simplified-likelihood model"),
    Case("sl-bad-expression", "a signal expression that does not parse",
         sl(signal={"expression": "mu * (s +", "coefficients": {"s": [1.0, 2.0]}}), ["{sl.json}"],
         "cannot parse expression"),
    Case("sl-patch", "a patch applied to a simplified likelihood", sl(),
         ["{sl.json}", "-p", "{sl.json}"], "patches apply to HistFactory workspaces"),
    # -- datacards -----------------------------------------------------------------------
    Case("dc-bad-number", "a systematic value that is no number", card(lambda t: t + "x lnN 1.1 1.1y\n"),
         ["{card.txt}"], "cannot parse '1.1y'", "line 11, column 11"),
    Case("dc-column-count", "a rate line with a column too few", card(lambda t: t.replace("rate 3.5 10.2", "rate 3.5")),
         ["{card.txt}"], "rates: 1 columns, but the 'bin' line", "line 9"),
    Case("dc-too-few-values", "a systematic with fewer values than columns", card(lambda t: t + "y lnN 1.1\n"),
         ["{card.txt}"], "has 1 values, but there are 2 columns", "line 11"),
    Case("dc-unsupported", "an unsupported systematic type", card(lambda t: t + "z trG 0.1 0.1\n"),
         ["{card.txt}"], "'trG' is not supported", "line 11, column 3"),
    Case("dc-negative-lnn", "a negative lnN kappa", card(lambda t: t + "w lnN -1.1 1\n"),
         ["{card.txt}"], "a lnN value must be >= 0", "line 11, column 7"),
    Case("dc-no-rate", "a card without a rate line", card(lambda t: t.replace("rate 3.5 10.2\n", "")),
         ["{card.txt}"], "no 'rate' line"),
    Case("dc-missing-root-file", "a shapes line naming a missing ROOT file",
         card(lambda t: t.replace("bin SR\n", "shapes * * missing.root $PROCESS\nbin SR\n", 1)),
         ["{card.txt}"], "ROOT file 'missing.root' not found", "line 4"),
    Case("dc-missing-histogram", "a template missing from its ROOT file",
         card(lambda t: t.replace("bin SR\n", "shapes * * in.root $PROCESS\nbin SR\n", 1),
              {"in.root": _root_file()}), ["{card.txt}"], "histogram 'sig' (process sig, channel SR) is missing",
         "line 4"),
    Case("dc-workspace-shape", "a parametric (RooWorkspace) shape",
         card(lambda t: t.replace("bin SR\n", "shapes * * in.root w:pdf_$PROCESS\nbin SR\n", 1),
              {"in.root": _root_file()}), ["{card.txt}"], "is a RooWorkspace object", "line 4"),
    Case("dc-edit-unsupported", "an unsupported nuisance edit", card(lambda t: t + "nuisance edit flip sig SR lumi\n"),
         ["{card.txt}"], "nuisance edit 'flip' is not supported", "line 11"),
    Case("dc-signal-and-background", "a process that is signal in one bin and background in another",
         card(lambda t: t.replace("process 0 1", "process 0 0")), ["{card.txt}"], "has no background process with a non-zero rate", "line 9"),
    # -- HS3 and HistFactory XML -------------------------------------------------------------
    Case("hs3-undefined-distribution", "a likelihood naming a distribution that is not defined",
         hs3(lambda d: d["likelihoods"][0]["distributions"].__setitem__(0, "model_nope")), ["{m.hs3.json}"],
         "undefined distribution 'model_nope'", "/likelihoods/0/distributions/0"),
    Case("hs3-undefined-data", "a likelihood naming data that is not defined",
         hs3(lambda d: d["likelihoods"][0]["data"].__setitem__(0, "nodata")), ["{m.hs3.json}"],
         "needs a binned datum", "/likelihoods/0/data/0"),
    Case("hs3-unknown-modifier", "an unknown modifier type",
         hs3(lambda d: d["distributions"][0]["samples"][0]["modifiers"][0].__setitem__("type", "bogus")),
         ["{m.hs3.json}"], "modifier type 'bogus' is not supported", "/distributions/0/samples/0/modifiers/0/type"),
    Case("hs3-unsupported-distribution", "an unsupported distribution in the likelihood",
         hs3(lambda d: d["distributions"][0].__setitem__("type", "crystalball_dist")), ["{m.hs3.json}"],
         "'crystalball_dist' is not supported with binned data", "/distributions/0/type"),
    Case("hs3-bin-mismatch", "data with a bin too few",
         hs3(lambda d: d["data"][0]["contents"].pop()), ["{m.hs3.json}"], "bins of data", "/data/0/contents"),
    Case("hs3-no-metadata", "HS3 without metadata.hs3_version",
         hs3(lambda d: d.pop("metadata")), ["{m.hs3.json}"], "metadata.hs3_version", "/metadata"),
    Case("hs3-unknown-analysis", "--measurement naming no analysis", hs3(),
         ["{m.hs3.json}", "--measurement", "nope"], "no analysis named 'nope'", "/analyses"),
    Case("xml-missing-channel", "a top-level XML naming a missing channel XML",
         lambda: {"top.xml": "<Combination OutputFilePrefix='x'><Input>./nope.xml</Input>"
                             "<Measurement Name='m' Lumi='1' LumiRelErr='0.1'><POI>mu</POI></Measurement></Combination>"},
         ["{top.xml}"], "'./nope.xml' not found"),
    Case("xml-syntax", "an XML syntax error",
         lambda: {"top.xml": "<Combination OutputFilePrefix='x'><Input>a.xml</Input>\n<Measurement></Combination>"},
         ["{top.xml}"], "invalid XML", "line 2"),
    Case("convert-not-expressible", "convert a datacard to HistFactory JSON", card(),
         ["{card.txt}", "--to", "histfactory"], "not expressible as a HistFactory workspace", command="convert"),
]
