"""Small workspaces written for the tests (the project's own, not corpus files)."""

from __future__ import annotations

import copy


def simple_workspace(signal=(5.0, 3.0), bkg=(50.0, 52.0), unc=(5.0, 7.0), obs=(55.0, 48.0)) -> dict:
    """pyhf's uncorrelated_background layout: a signal normfactor and a shapesys per bin."""
    return {
        "channels": [{"name": "singlechannel", "samples": [
            {"name": "signal", "data": list(signal),
             "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "background", "data": list(bkg),
             "modifiers": [{"name": "uncorr_bkguncrt", "type": "shapesys", "data": list(unc)}]},
        ]}],
        "observations": [{"name": "singlechannel", "data": list(obs)}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def rich_workspace() -> dict:
    """Every modifier type, shared parameters (jes is a histosys and a normsys; fake_shape
    spans both channels), two channels, an empty bin, a shifted auxiliary datum."""
    return copy.deepcopy({
        "channels": [
            {"name": "SR", "samples": [
                {"name": "sig", "data": [3.0, 6.0, 2.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "theory", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}}]},
                {"name": "bkg", "data": [20.0, 12.0, 5.0], "modifiers": [
                    {"name": "k_bkg", "type": "normfactor", "data": None},
                    {"name": "jes", "type": "histosys",
                     "data": {"hi_data": [21.5, 12.9, 5.6], "lo_data": [18.8, 11.2, 4.7]}},
                    {"name": "jes", "type": "normsys", "data": {"hi": 1.04, "lo": 0.97}},
                    {"name": "stat_SR", "type": "staterror", "data": [1.2, 0.9, 0.0]}]},
                {"name": "fakes", "data": [2.0, 1.5, 1.0], "modifiers": [
                    {"name": "fake_shape", "type": "shapefactor", "data": None}]},
                {"name": "other", "data": [6.0, 4.0, 0.0], "modifiers": [
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "other_unc", "type": "shapesys", "data": [0.9, 0.8, 0.1]},
                    {"name": "stat_SR", "type": "staterror", "data": [0.5, 0.4, 0.0]}]}]},
            {"name": "CR", "samples": [
                {"name": "bkg", "data": [150.0, 80.0, 40.0], "modifiers": [
                    {"name": "k_bkg", "type": "normfactor", "data": None},
                    {"name": "jes", "type": "histosys",
                     "data": {"hi_data": [155.0, 83.0, 41.0], "lo_data": [146.0, 77.5, 38.8]}}]},
                {"name": "fakes", "data": [30.0, 25.0, 20.0], "modifiers": [
                    {"name": "fake_shape", "type": "shapefactor", "data": None}]}]},
        ],
        "observations": [{"name": "SR", "data": [27.0, 21.0, 6.0]},
                         {"name": "CR", "data": [190.0, 101.0, 63.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.9, 1.1]], "inits": [1.0]},
            {"name": "theory", "auxdata": [0.1]},
            {"name": "mu", "bounds": [[0.0, 8.0]]}]}}],
        "version": "1.0.0",
    })


def counting_card(lumi: str = "lumi", bkg_syst: bool = False) -> str:
    """A one-bin counting datacard (Combine's format): 3.5 signal on 10.2 background events,
    12 observed, a luminosity lnN on both and optionally a 20% background lnN."""
    return ("imax 1\njmax 1\nkmax *\nbin SR\nobservation 12\nbin SR SR\nprocess sig bkg\nprocess 0 1\n"
            f"rate 3.5 10.2\n{lumi} lnN 1.025 1.025\n" + ("bkgsys lnN - 1.2\n" if bkg_syst else ""))
