"""The runnable examples in docs/ run."""

import os
import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_notebook_example(tmp_path, capsys):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        runpy.run_path(str(REPO / "docs" / "examples" / "notebook.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "CLs_obs" in out and "upper_limit_obs" in out and "68% interval" in out
    assert (tmp_path / "brazil.png").exists()
