"""A generated HistFactory workspace of ~5000 bins and ~1100 parameters (seeded, reproducible)."""

from __future__ import annotations

import numpy as np


def generated_workspace(n_channels: int = 50, n_bins: int = 100, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    normsys = [f"ns_{i}" for i in range(300)]
    histosys = [f"hs_{i}" for i in range(200)]
    stat_channels = set(range(6))  # 6 x 100 staterror gammas
    channels, observations = [], []
    for c in range(n_channels):
        x = np.linspace(0, 1, n_bins)
        samples = []
        shapes = {"signal": 5 * np.exp(-((x - rng.uniform(0.2, 0.8)) ** 2) / 0.01),
                  "bkg_a": 200 * np.exp(-3 * x), "bkg_b": 50 * (1 - 0.5 * x), "bkg_c": 20 + 10 * x}
        for name, nominal in shapes.items():
            nominal = np.maximum(nominal * rng.uniform(0.8, 1.2), 0.05)
            mods = []
            if name == "signal":
                mods.append({"name": "mu", "type": "normfactor", "data": None})
            else:
                mods.append({"name": f"norm_{name}", "type": "normfactor", "data": None})
            for ns in rng.choice(normsys, size=8, replace=False):
                up = 1 + rng.uniform(0.01, 0.1)
                mods.append({"name": str(ns), "type": "normsys", "data": {"hi": up, "lo": 2 - up}})
            for hs in rng.choice(histosys, size=4, replace=False):
                tilt = rng.uniform(-0.05, 0.05) * (x - 0.5)
                mods.append({"name": str(hs), "type": "histosys", "data": {
                    "hi_data": (nominal * (1 + 0.03 + tilt)).tolist(),
                    "lo_data": (nominal * (1 - 0.03 - tilt)).tolist()}})
            if c in stat_channels:
                mods.append({"name": f"stat_{c}", "type": "staterror", "data": (0.05 * nominal).tolist()})
            samples.append({"name": name, "data": nominal.tolist(), "modifiers": mods})
        total = sum(np.array(s["data"]) for s in samples)
        channels.append({"name": f"ch_{c:02d}", "samples": samples})
        observations.append({"name": f"ch_{c:02d}", "data": rng.poisson(total).astype(float).tolist()})
    return {"channels": channels, "observations": observations,
            "measurements": [{"name": "gen", "config": {"poi": "mu", "parameters": []}}],
            "version": "1.0.0"}
