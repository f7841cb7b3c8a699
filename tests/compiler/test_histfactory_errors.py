"""Bad HistFactory input: one clear error naming the file and the JSON path."""

import copy
import gzip
import json

import pytest

from tests.models import rich_workspace, simple_workspace
from tweed.api import read
from tweed.compiler.frontends.histfactory.patches import digest
from tweed.errors import InputError


def write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def error_of(*args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        read(*args, **kwargs)
    return info.value


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.json", '{"channels": [\n  {"name": "a",, }]}')
    e = error_of(path)
    assert e.source == path and "invalid JSON" in e.message and e.location.startswith("line 2")


def test_schema_violation_names_the_json_path():
    ws = simple_workspace()
    ws["channels"][0]["samples"][1]["modifiers"][0]["type"] = "shapesyst"
    e = error_of(ws)
    assert e.location == "/channels/0/samples/1/modifiers/0/type"
    assert "schema" in e.message


def test_missing_key_and_wrong_type():
    ws = simple_workspace()
    del ws["channels"][0]["samples"][0]["data"]
    assert "'data' is a required property" in error_of(ws).message
    ws = simple_workspace()
    ws["observations"][0]["data"][1] = "48"
    assert error_of(ws).location == "/observations/0/data/1"


def test_bin_count_mismatches():
    ws = simple_workspace()
    ws["channels"][0]["samples"][1]["data"] = [50.0, 52.0, 1.0]
    e = error_of(ws)
    assert e.location == "/channels/0/samples/1/data" and "3 bins" in e.message
    ws = simple_workspace()
    ws["observations"][0]["data"] = [55.0]
    assert error_of(ws).location == "/observations/0/data"
    ws = rich_workspace()
    ws["channels"][0]["samples"][1]["modifiers"][1]["data"]["hi_data"] = [1.0]
    assert error_of(ws).location == "/channels/0/samples/1/modifiers/1/data/hi_data"


@pytest.mark.parametrize("value,what", [(float("nan"), "finite"), (float("inf"), "finite"), (-3.0, "negative")])
def test_nan_inf_and_negative_yields(value, what):
    ws = simple_workspace()
    ws["channels"][0]["samples"][0]["data"][1] = value
    e = error_of(ws)
    assert e.location == "/channels/0/samples/0/data/1" and what in e.message


def test_unknown_poi_and_unknown_measurement():
    ws = simple_workspace()
    ws["measurements"][0]["config"]["poi"] = "mu_SIG"
    e = error_of(ws)
    assert e.location == "/measurements/0/config/poi" and "'mu_SIG'" in e.message
    # without a POI requirement (fit, inspect) a background-only workspace is fine
    assert read(ws, require_poi=False).module.poi is None
    assert "no measurement named" in error_of(simple_workspace(), measurement="other").message


def test_config_errors():
    ws = simple_workspace()
    ws["measurements"][0]["config"]["parameters"] = [{"name": "mu", "bounds": [[2.0, 1.0]]}]
    assert "lower bound" in error_of(ws).message
    ws["measurements"][0]["config"]["parameters"] = [{"name": "mu", "inits": [20.0]}]
    assert "outside its bounds" in error_of(ws).message
    ws["measurements"][0]["config"]["parameters"] = [{"name": "mu", "sigmas": [1.0]}]
    assert "does not use 'sigmas'" in error_of(ws).message
    ws["measurements"][0]["config"]["parameters"] = [{"name": "uncorr_bkguncrt", "inits": [1.0]}]
    assert "has 1 entries, expected 2" in error_of(ws).message


def test_lumi_without_config():
    ws = rich_workspace()
    ws["measurements"][0]["config"]["parameters"] = []
    assert "needs inits from a parameter config named 'lumi'" in error_of(ws).message


def test_name_reuse_across_incompatible_types():
    ws = simple_workspace()
    ws["channels"][0]["samples"][1]["modifiers"].append({"name": "mu", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}})
    assert "incompatible" in error_of(ws).message


def test_duplicate_names():
    ws = simple_workspace()
    ws["channels"][0]["samples"][1]["name"] = "signal"
    assert "duplicate sample name 'signal'" in error_of(ws).message


def test_patch_that_does_not_apply(tmp_path):
    patch = write(tmp_path, "p.json", [{"op": "add", "path": "/channels/3/samples/-", "value": {}}])
    e = error_of(simple_workspace(), patches=[patch])
    assert e.source == patch and e.location == "/0" and "does not apply" in e.message
    patch = write(tmp_path, "q.json", [{"op": "test", "path": "/version", "value": "2.0.0"}])
    assert "test failed" in error_of(simple_workspace(), patches=[patch]).message


def test_patch_that_makes_an_invalid_workspace(tmp_path):
    patch = write(tmp_path, "p.json", [{"op": "add", "path": "/channels/0/samples/-",
                                        "value": {"name": "x", "data": [1.0]}}])
    e = error_of(simple_workspace(), patches=[patch])
    assert "modifiers" in e.message and e.location == "/channels/0/samples/2"


def _patchset(ws, algorithm="sha256"):
    return {
        "version": "1.0.0",
        "metadata": {"references": {"hepdata": "ins1234567"}, "digests": {algorithm: digest(ws, algorithm)},
                     "labels": ["m1"], "description": "test"},
        "patches": [{"metadata": {"name": "p500", "values": [500]}, "patch": [
            {"op": "add", "path": "/channels/0/samples/-", "value": {
                "name": "sig2", "data": [1.0, 1.0],
                "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}}]}],
    }


def test_patchset_digest_checked(tmp_path):
    ws = simple_workspace()
    ps = write(tmp_path, "ps.json", _patchset(ws))
    assert read(ws, patchset=ps, patch_name="p500").module.n_main == 2
    other = copy.deepcopy(ws)
    other["observations"][0]["data"][0] = 56.0
    e = error_of(other, patchset=ps, patch_name="p500")
    assert "digest mismatch" in e.message and e.location == "/metadata/digests"
    assert read(other, patchset=ps, patch_name="p500", digest_check=False).module.n_main == 2
    assert "no patch named 'p50'" in error_of(ws, patchset=ps, patch_name="p50").message


def test_patchset_read_from_gzip(tmp_path):
    ws = simple_workspace()
    p = tmp_path / "ps.json.gz"
    p.write_bytes(gzip.compress(json.dumps(_patchset(ws, "md5")).encode()))
    assert read(ws, patchset=str(p), patch_name="p500").module.n_main == 2
    bad = tmp_path / "bad.json.gz"
    bad.write_text("{}")
    assert "not gzip" in error_of(str(bad)).message


def test_wrong_kind_of_document(tmp_path):
    ws = simple_workspace()
    assert "this is a patchset" in error_of(_patchset(ws)).message
    assert "JSON Patch" in error_of([{"op": "add", "path": "/x", "value": 1}]).message
    assert "no such file" in error_of(str(tmp_path / "missing.json")).message


def test_code4_needs_positive_normsys_factors():
    ws = simple_workspace()
    ws["channels"][0]["samples"][0]["modifiers"].append({"name": "n", "type": "normsys", "data": {"hi": 1.1, "lo": 0.0}})
    e = error_of(ws)
    assert "code4 needs positive factors" in e.message and e.location.endswith("/data/lo")
    assert read(ws, normsys_code="code0").module is not None


def test_unknown_interpolation_code():
    assert "unknown normsys interpolation code" in error_of(simple_workspace(), normsys_code="code9").message
