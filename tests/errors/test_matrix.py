"""Every case of the bad-input matrix (tests/errors/cases.py): one line on stderr naming the
file and the location, exit code 2, no traceback, nothing on stdout, no output file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.errors.cases import CASES, Case
from tweed.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def materialise(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files().items():
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, str):
            p.write_text(content)
        else:
            p.write_text(json.dumps(content))
    return [re.sub(r"\{([^}]+)\}", lambda m: str(tmp / m.group(1)), a) for a in case.args]


def run_case(case: Case, tmp: Path):
    args = case.command.split() + materialise(case, tmp)
    out = tmp / "result.out"
    if case.output:
        args += ["-o", str(out)]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    return r, out


def test_matrix_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path):
    r, out = run_case(case, tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("tweed: error: "), r.stderr
    assert case.message in lines[0], lines[0]
    if case.location:
        assert case.location in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not out.exists()


def test_errors_doc_lists_every_case():
    doc = (REPO / "docs" / "errors.md").read_text()
    for c in CASES:
        assert f"`{c.id}`" in doc, f"docs/errors.md lacks {c.id}: run python tools/make_errors_doc.py"


@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("invalid-json", "patchset-digest", "nan-yield")],
                         ids=lambda c: c.id)
def test_real_process(case, tmp_path):
    args = [sys.executable, "-m", "tweed.cli.main", *case.command.split(), *materialise(case, tmp_path)]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and case.message in p.stderr
