"""The HistFactory AST: a checked, typed view of a workspace document.

parse() turns a schema-valid workspace dict into these dataclasses and checks the rules a
schema cannot state (bin counts, unique names, finite and non-negative numbers), each error
naming the JSON path.
"""

from __future__ import annotations

import marshal
import math
from dataclasses import dataclass
from typing import Any

from tweed.errors import InputError


@dataclass(frozen=True)
class Modifier:
    name: str
    type: str
    data: Any  # None | {"hi","lo"} | {"hi_data","lo_data"} (tuples) | tuple of floats
    path: str


@dataclass(frozen=True)
class Sample:
    name: str
    data: tuple[float, ...]
    modifiers: tuple[Modifier, ...]
    path: str


@dataclass(frozen=True)
class Channel:
    name: str
    samples: tuple[Sample, ...]
    path: str

    @property
    def nbins(self) -> int:
        return len(self.samples[0].data)


@dataclass(frozen=True)
class ParamConfig:
    name: str
    path: str
    inits: tuple[float, ...] | None = None
    bounds: tuple[tuple[float, float], ...] | None = None
    fixed: bool | None = None
    auxdata: tuple[float, ...] | None = None
    sigmas: tuple[float, ...] | None = None
    factors: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Measurement:
    name: str
    poi: str
    parameters: tuple[ParamConfig, ...]
    path: str


@dataclass(frozen=True)
class Workspace:
    channels: tuple[Channel, ...]
    observations: dict[str, tuple[float, ...]]
    measurements: tuple[Measurement, ...]
    source: str

    def measurement(self, name: str | None) -> Measurement:
        if name is None:
            return self.measurements[0]
        for m in self.measurements:
            if m.name == name:
                return m
        known = ", ".join(repr(m.name) for m in self.measurements)
        raise InputError(f"no measurement named {name!r} (the workspace has {known})", source=self.source)


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise InputError(message, source=self.source, location=path)

    def numbers(self, values, path: str, *, nonneg: bool = False, what: str = "value") -> tuple[float, ...]:
        out = []
        for i, x in enumerate(values):
            x = float(x)
            if not math.isfinite(x):
                self.fail(f"{path}/{i}", f"{what} is {x}, expected a finite number")
            if nonneg and x < 0:
                self.fail(f"{path}/{i}", f"{what} is negative ({x}), expected >= 0")
            out.append(x)
        return tuple(out)

    def unique(self, names: list[str], path: str, what: str) -> None:
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in seen:
                self.fail(f"{path}/{i}", f"duplicate {what} name {n!r} (also at index {seen[n]})")
            seen[n] = i


def _modifier(ck: _Checker, m: dict, path: str, nbins: int) -> Modifier:
    t, data = m["type"], m["data"]
    if t == "normsys":
        lo, hi = ck.numbers([data["lo"], data["hi"]], f"{path}/data", what="normsys factor")
        data = {"lo": lo, "hi": hi}
    elif t == "histosys":
        fields = {}
        for key in ("hi_data", "lo_data"):
            vals = ck.numbers(data[key], f"{path}/data/{key}", what="histosys template")
            if len(vals) != nbins:
                ck.fail(f"{path}/data/{key}", f"has {len(vals)} bins, the sample has {nbins}")
            fields[key] = vals
        data = fields
    elif t in ("shapesys", "staterror"):
        data = ck.numbers(data, f"{path}/data", nonneg=True, what=f"{t} uncertainty")
        if len(data) != nbins:
            ck.fail(f"{path}/data", f"has {len(data)} bins, the sample has {nbins}")
    return Modifier(name=m["name"], type=t, data=data, path=path)


def _param_config(ck: _Checker, p: dict, path: str) -> ParamConfig:
    kw: dict[str, Any] = {}
    for key in ("inits", "auxdata", "sigmas", "factors"):
        if key in p:
            kw[key] = ck.numbers(p[key], f"{path}/{key}", what=key[:-1] if key != "auxdata" else key)
    if "sigmas" in kw:
        for i, s in enumerate(kw["sigmas"]):
            if s <= 0:
                ck.fail(f"{path}/sigmas/{i}", f"sigma is {s}, expected > 0")
    if "bounds" in p:
        pairs = []
        for i, b in enumerate(p["bounds"]):
            lo, hi = ck.numbers(b, f"{path}/bounds/{i}", what="bound")
            if lo > hi:
                ck.fail(f"{path}/bounds/{i}", f"lower bound {lo} is above upper bound {hi}")
            pairs.append((lo, hi))
        kw["bounds"] = tuple(pairs)
    if "fixed" in p:
        kw["fixed"] = bool(p["fixed"])
    return ParamConfig(name=p["name"], path=path, **kw)


def _sample(ck: _Checker, s: dict, spath: str, nbins: int, channel: str) -> Sample:
    data = ck.numbers(s["data"], f"{spath}/data", nonneg=True, what="sample yield")
    if len(data) != nbins:
        ck.fail(
            f"{spath}/data",
            f"sample {s['name']!r} has {len(data)} bins, but channel {channel!r} has "
            f"{nbins} (from its first sample)",
        )
    seen: dict[tuple[str, str], int] = {}
    mods = []
    for mi, m in enumerate(s["modifiers"]):
        key = (m["name"], m["type"])
        if key in seen:
            ck.fail(
                f"{spath}/modifiers/{mi}",
                f"duplicate modifier {m['type']} {m['name']!r} (also at index {seen[key]})",
            )
        seen[key] = mi
        mods.append(_modifier(ck, m, f"{spath}/modifiers/{mi}", nbins))
    return Sample(s["name"], data, tuple(mods), spath)


# The samples of the last parsed workspace, by content (marshal bytes), path and bin count.
# A signal scan parses the same background samples for every point: they are taken from
# here, and are the same Sample objects, so the lowering's cache finds them too. Keyed by
# content, not identity, so a document changed in place is parsed again.
_SAMPLES: dict[tuple, Sample] = {}


def parse(doc: dict, source: str) -> Workspace:
    """Schema-valid workspace dict -> Workspace, with the cross-field checks."""
    global _SAMPLES
    ck = _Checker(source)
    used: dict[tuple, Sample] = {}
    ck.unique([c["name"] for c in doc["channels"]], "/channels", "channel")
    channels = []
    for ci, c in enumerate(doc["channels"]):
        cpath = f"/channels/{ci}"
        ck.unique([s["name"] for s in c["samples"]], f"{cpath}/samples", "sample")
        nbins = len(c["samples"][0]["data"])
        samples = []
        for si, s in enumerate(c["samples"]):
            spath = f"{cpath}/samples/{si}"
            key = (marshal.dumps(s), spath, nbins, c["name"])
            sample = _SAMPLES.get(key)
            if sample is None:
                sample = _sample(ck, s, spath, nbins, c["name"])
            used[key] = sample
            samples.append(sample)
        channels.append(Channel(c["name"], tuple(samples), cpath))
    by_name = {c.name: c for c in channels}
    ck.unique([o["name"] for o in doc["observations"]], "/observations", "observation")
    observations = {}
    for oi, o in enumerate(doc["observations"]):
        opath = f"/observations/{oi}"
        data = ck.numbers(o["data"], f"{opath}/data", nonneg=True, what="observed count")
        if o["name"] not in by_name:
            # pyhf ignores observations of channels the model does not have (signal patches
            # often remove validation regions but leave their observations).
            continue
        nb = by_name[o["name"]].nbins
        if len(data) != nb:
            ck.fail(f"{opath}/data", f"has {len(data)} bins, channel {o['name']!r} has {nb}")
        observations[o["name"]] = data
    for ci, c in enumerate(channels):
        if c.name not in observations:
            ck.fail(f"/channels/{ci}", f"channel {c.name!r} has no observation")
    ck.unique([m["name"] for m in doc["measurements"]], "/measurements", "measurement")
    measurements = []
    for mi, m in enumerate(doc["measurements"]):
        mpath = f"/measurements/{mi}"
        params = m["config"]["parameters"]
        ck.unique([p["name"] for p in params], f"{mpath}/config/parameters", "parameter config")
        configs = tuple(
            _param_config(ck, p, f"{mpath}/config/parameters/{pi}") for pi, p in enumerate(params)
        )
        measurements.append(Measurement(m["name"], m["config"]["poi"], configs, mpath))
    _SAMPLES = used
    return Workspace(tuple(channels), observations, tuple(measurements), source)
