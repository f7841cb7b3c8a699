"""Hypothesis strategies: valid HistFactory workspaces with every modifier type, shared
parameters, several channels, and signal patches."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

pos = st.floats(min_value=0.5, max_value=200.0, allow_nan=False, allow_infinity=False)
frac = st.floats(min_value=0.02, max_value=0.3, allow_nan=False)
# extreme but valid: tiny and huge yields, large relative uncertainties
extreme_pos = st.builds(lambda e: 10.0**e, st.floats(min_value=-4, max_value=5))
extreme_frac = st.floats(min_value=0.001, max_value=0.9, allow_nan=False)


def _vary(draw, nominal, rel):
    up = [x * (1 + draw(frac)) for x in nominal]
    down = [x * (1 - draw(frac)) for x in nominal]
    return up, down


@st.composite
def workspaces(draw, max_channels=3, max_bins=3, with_signal_patch=False, extreme=False):
    global pos, frac
    if extreme:
        pos, frac = extreme_pos, extreme_frac
    else:
        pos, frac = _POS, _FRAC
    nch = draw(st.integers(1, max_channels))
    shared_nbins = draw(st.integers(1, max_bins))  # channels that share a shapefactor use it
    channels, observations = [], []
    uses_lumi = False
    for c in range(nch):
        nb = shared_nbins if draw(st.booleans()) else draw(st.integers(1, max_bins))
        samples = []
        nsamp = draw(st.integers(1, 3))
        for s in range(nsamp):
            data = [draw(pos) for _ in range(nb)]
            if draw(st.integers(0, 5)) == 0:
                data[draw(st.integers(0, nb - 1))] = 0.0  # an empty bin
            mods = []
            if c == 0 and s == 0:
                mods.append({"name": "mu", "type": "normfactor", "data": None})
            if draw(st.booleans()):
                mods.append({"name": draw(st.sampled_from(["k1", "k2"])), "type": "normfactor", "data": None})
            if draw(st.booleans()):
                uses_lumi = True
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            for name in draw(st.lists(st.sampled_from(["a1", "a2", "a3"]), unique=True, max_size=2)):
                hi, lo = 1 + draw(frac), 1 - draw(frac)
                if draw(st.booleans()):
                    hi, lo = lo, hi  # anti-correlated variations
                mods.append({"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}})
            for name in draw(st.lists(st.sampled_from(["a1", "h1", "h2"]), unique=True, max_size=2)):
                up, down = _vary(draw, data, frac)
                mods.append({"name": name, "type": "histosys", "data": {"hi_data": up, "lo_data": down}})
            if draw(st.booleans()):
                mods.append({"name": f"stat_{c}", "type": "staterror",
                             "data": [x * draw(frac) for x in data]})
            if draw(st.integers(0, 3)) == 0:
                mods.append({"name": f"shapesys_{c}_{s}", "type": "shapesys",
                             "data": [x * draw(frac) for x in data]})
            if nb == shared_nbins and draw(st.integers(0, 4)) == 0:
                mods.append({"name": "sf_shared", "type": "shapefactor", "data": None})
            samples.append({"name": f"s{s}", "data": data, "modifiers": mods})
        # staterror must be carried by the same samples in each channel: keep per channel names
        channels.append({"name": f"ch{c}", "samples": samples})
        observations.append({"name": f"ch{c}", "data": [float(draw(st.integers(0, 150))) for _ in range(nb)]})
    params = []
    if uses_lumi:
        params.append({"name": "lumi", "auxdata": [1.0], "sigmas": [0.03], "bounds": [[0.8, 1.2]], "inits": [1.0]})
    if draw(st.booleans()):
        params.append({"name": "a1", "auxdata": [draw(st.floats(-0.5, 0.5))]})
    if draw(st.booleans()):
        params.append({"name": "mu", "bounds": [[0.0, 20.0]], "inits": [draw(st.floats(0.5, 2.0))]})
    if draw(st.integers(0, 3)) == 0:
        params.append({"name": "k1", "fixed": True, "inits": [1.2], "bounds": [[0.0, 5.0]]})
    ws = {"channels": channels, "observations": observations,
          "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": params}}],
          "version": "1.0.0"}
    if not with_signal_patch:
        return ws
    nb0 = len(channels[0]["samples"][0]["data"])
    patch = [{"op": "add", "path": "/channels/0/samples/-", "value": {
        "name": "zsignal", "data": [draw(pos) for _ in range(nb0)],
        "modifiers": [{"name": "mu", "type": "normfactor", "data": None},
                      {"name": "a2", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}}]}}]
    return ws, patch


_POS, _FRAC = pos, frac


def random_points(model_inits, bounds, fixed, rng: np.random.Generator, n: int = 3):
    """Points near the inits (where expected rates stay positive), fixed ones at their inits."""
    pts = []
    for _ in range(n):
        x = model_inits + rng.normal(0, 0.2, size=model_inits.shape)
        x = np.clip(x, bounds[:, 0] + 1e-6, bounds[:, 1] - 1e-6)
        x[fixed] = model_inits[fixed]
        pts.append(x)
    return pts
