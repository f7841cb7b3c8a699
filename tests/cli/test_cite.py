"""`tweed cite`: offline BibTeX, chosen by model kind or by a model file."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tweed.cite import KINDS, entries, keys_for
from tweed.cli.main import cli


def test_every_entry_is_well_formed_bibtex():
    table = entries()
    assert {"Cowan:2010js", "Buckley:2018vdr", "Barlow:2004wg", "CMS:2017sl", "pyhf_joss"} <= set(table)
    for key, text in table.items():
        assert text.count("{") == text.count("}"), key
        assert "title" in text
    for kind in KINDS:
        assert all(k in table for k in keys_for(kind))


def test_cite_by_kind_and_by_file(tmp_path):
    run = CliRunner()
    out = run.invoke(cli, ["cite", "third_moment_expansion"]).output
    assert "1809.05548" in out and "1007.1727" in out and "physics/0406120" not in out
    p = tmp_path / "sl.json"
    p.write_text(json.dumps({"observed": [1.0], "background": [1.0], "uncertainty_envelopes": [[0.5, 0.3]],
                             "correlation": [[1.0]], "signal": [1.0]}))
    out = run.invoke(cli, ["cite", str(p)]).output  # effective_sigma by default for envelopes
    assert "physics/0406120" in out and "Barlow" in out
    r = run.invoke(cli, ["cite", "nonsense"])
    assert r.exit_code == 2 and "unknown kind" in r.stderr
