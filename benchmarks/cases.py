"""The benchmark models: published likelihoods from ../shared/corpus plus one generated model."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "atlas-pyhf"


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    workspace: str  # path, or "generated"
    patch: str | None = None
    patchset: str | None = None
    patch_name: str | None = None
    fit_only: bool = False


CASES = [
    Case("1lbb", "1Lbb + C1N2_Wh_hbb_500_0", "SUSY-2019-08_1Lbb/BkgOnly.json",
         patch="SUSY-2019-08_1Lbb/patch_C1N2_Wh_hbb_500_0.json"),
    Case("stau", "stau combined + DS_440_80", "SUSY-2018-04_stau/Region-combined/BkgOnly.json",
         patch="SUSY-2018-04_stau/Region-combined/patch.DS_440_80_Staus.json"),
    Case("sbottom", "sbottom RegionA + 900_250_60", "SUSY-2018-31_sbottom-multib/RegionA/BkgOnly.json",
         patch="SUSY-2018-31_sbottom-multib/RegionA/patch.sbottom_900_250_60.json"),
    Case("3l", "3L-eRJR + ERJR_100p0_20p0", "SUSY-2018-06_3L-eRJR/BkgOnly.json",
         patchset="SUSY-2018-06_3L-eRJR/patchset.json", patch_name="ERJR_100p0_20p0"),
    Case("trilepton", "trilepton resonance (bkg-only)", "trilepton-resonance_2020/inclusive_bkgonly.json",
         fit_only=True),
    Case("generated", "generated 5000 bins / ~1100 parameters", "generated"),
]


def by_key(key: str) -> Case:
    return next(c for c in CASES if c.key == key)


def load_json(path: Path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def workspace_and_patches(case: Case) -> tuple[dict, list]:
    """The workspace dict and the list of JSON patches (patchset point resolved)."""
    if case.workspace == "generated":
        from benchmarks.generate import generated_workspace

        return generated_workspace(), []
    ws = load_json(CORPUS / case.workspace)
    patches = []
    if case.patch:
        patches.append(load_json(CORPUS / case.patch))
    if case.patchset:
        ps = load_json(CORPUS / case.patchset)
        patches.append(next(p["patch"] for p in ps["patches"] if p["metadata"]["name"] == case.patch_name))
    return ws, patches


def paths(case: Case) -> tuple[Path, list[Path]]:
    """Files for the whole-process comparison (patch files only)."""
    return CORPUS / case.workspace, [CORPUS / case.patch] if case.patch else []
