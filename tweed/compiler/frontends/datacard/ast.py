"""Parse a CMS Combine datacard into a checked AST (../shared/docs/formats/datacards.md).

Combine's two phases: up to the first `rate` line only lines whose first token is a header
keyword count (everything else, comments and free text included, is skipped); after it,
lines starting with `#` or `--` are skipped, inline `#` comments are cut, per-column lines
keep their first K values (the rest is free text). Every remaining line is parsed with the
lark grammar tweed/specs/datacard.lark; errors name the file, line and column.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from tweed.errors import InputError
from tweed.specs import load_grammar

HEADER_KEYS = ("imax", "jmax", "kmax", "shapes", "observation", "Observation", "bin", "process", "rate")
PER_COLUMN = ("lnN", "lnU", "shape", "shape?", "shapeN", "shapeN?", "shapeU")
SUPPORTED_TYPES = ("lnN", "lnU", "shape", "shape?", "shapeN", "shapeN?")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(load_grammar("datacard.lark"), parser="lalr", lexer="contextual", start=["header", "directive"])


@dataclass
class Column:
    bin: str
    process: str
    pid: int

    @property
    def signal(self) -> bool:
        return self.pid <= 0


@dataclass
class Systematic:
    name: str
    type: str
    values: list  # per column: None (no effect), float, or (down, up)
    line: int
    args: tuple = ()
    nofloat: bool = False


@dataclass
class RateParam:
    name: str
    bin: str
    process: str
    line: int
    init: float | None = None
    range: tuple[float, float] | None = None
    formula: str | None = None
    args: tuple[str, ...] = ()


@dataclass
class Param:
    name: str
    mean: float
    sigma: float
    range: tuple[float, float] | None
    line: int


@dataclass
class AutoMCStats:
    channel: str
    threshold: float
    include_signal: bool
    hist_mode: int
    line: int


@dataclass
class ShapeLine:
    process: str
    channel: str
    file: str
    obj: str
    syst_obj: str | None
    line: int


@dataclass
class Card:
    source: str
    bins: list[str]  # channel labels, in card order
    observation: dict[str, float] | None
    columns: list[Column]
    rates: list[float]
    systematics: list[Systematic] = field(default_factory=list)
    rate_params: list[RateParam] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    ext_args: dict[str, tuple[float, tuple[float, float] | None]] = field(default_factory=dict)
    flat_params: list[str] = field(default_factory=list)
    auto_mc: list[AutoMCStats] = field(default_factory=list)
    shapes: list[ShapeLine] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)

    def processes(self, b: str) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.bin == b]

    def auto_mc_for(self, b: str) -> AutoMCStats | None:
        for a in self.auto_mc:
            if fnmatch.fnmatchcase(b, a.channel) or a.channel == b:
                return a
        return None


def _fail(source, line, msg, col=None):
    raise InputError(msg, source=source, location=f"line {line}" + (f", column {col}" if col else ""))


def _columns_of(raw: str) -> list[int]:
    """1-based start column of every whitespace-separated token of a line."""
    return [m.start() + 1 for m in re.finditer(r"\S+", raw)]


def _parse_line(text: str, start: str, source: str, line: int, raw: str):
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        # map the column in the cleaned text back to the raw line
        col = getattr(exc, "column", None)
        pos = max((col or 1) - 1, 0)  # character index in the cleaned text: which token holds it?
        tok_index = len(text[:pos].split()) - (0 if pos == 0 or text[pos - 1].isspace() else 1)
        cols = _columns_of(raw)
        where = cols[tok_index] if tok_index < len(cols) else (len(raw) + 1)
        bad = raw[where - 1 :].split()[0] if tok_index < len(cols) else "end of line"
        expected = sorted(getattr(exc, "expected", []) or [])
        hint = f"; expected one of {', '.join(expected[:6])}" if expected else ""
        _fail(source, line, f"cannot parse {bad!r} in {start} line {raw.strip()[:60]!r}{hint}", where)


def _num(tok) -> float:
    return float(str(tok))


def _range(tok) -> tuple[float, float]:
    a, b = str(tok)[1:-1].split(",")
    return float(a), float(b)


def _cell(t: Tree, source, line, col, typ):
    if t.data == "none":
        return None
    if t.data == "value":
        v = _num(t.children[0])
        if v < 0:
            _fail(source, line, f"a {typ} value must be >= 0, got {v}", col)
        return v
    down, up = _num(t.children[0]), _num(t.children[1])
    if typ not in ("lnN", "lnU") and not typ.endswith("?"):
        _fail(source, line, f"an asymmetric value down/up is only allowed for lnN and lnU, not {typ}", col)
    if down <= 0 or up <= 0:
        _fail(source, line, f"asymmetric lnN values must both be > 0, got {down}/{up}", col)
    return (down, up)


def _syst_name(tok: str) -> tuple[str, bool]:
    nofloat = tok.endswith("[nofloat]")
    name = tok[: -len("[nofloat]")] if nofloat else tok
    if name[:1].isdigit():
        name = "theta" + name  # as Combine does
    return name, nofloat


def parse(text: str, source: str) -> Card:
    lines = text.splitlines()
    header: dict[str, list] = {"bin": [], "process": []}
    counts: dict[str, tuple[str, int]] = {}
    observation = None
    rates = None
    shapes: list[ShapeLine] = []
    i = 0
    # ---- phase 1 -------------------------------------------------------------------------------
    for i, raw in enumerate(lines, start=1):
        toks = raw.split()
        if not toks or toks[0] not in HEADER_KEYS:
            continue
        key = toks[0]
        keep = toks[:2] if key in ("imax", "jmax", "kmax") else toks
        tree = _parse_line(" ".join(keep), "header", source, i, raw)
        kids = [str(c) for c in tree.children]
        if tree.data in ("imax", "jmax", "kmax"):
            counts[tree.data] = (kids[0], i)
        elif tree.data == "shapes":
            if len(kids) < 4 and kids[2] != "FAKE":
                _fail(source, i, "shapes: expected PROCESS CHANNEL FILE OBJECT [SYSTEMATIC-OBJECT]")
            shapes.append(ShapeLine(kids[0], kids[1], kids[2], kids[3] if len(kids) > 3 else "",
                                    kids[4] if len(kids) > 4 else None, i))
        elif tree.data == "observation":
            observation = ([float(x) for x in kids], i)
        elif tree.data == "bins":
            header["bin"].append((kids, i))
        elif tree.data == "processes":
            header["process"].append((kids, i))
        elif tree.data == "rates":
            rates = ([float(x) for x in kids], i)
            break
    else:
        _fail(source, len(lines), "no 'rate' line: not a datacard (expected imax/jmax/kmax, bin, "
                                  "observation, process and rate lines)")
    rate_line = i
    if len(header["process"]) != 2:
        _fail(source, rate_line, f"expected two 'process' lines (names and ids) before 'rate', found "
                                 f"{len(header['process'])}")
    if not header["bin"]:
        _fail(source, rate_line, "no 'bin' line before the 'process' lines")
    col_bins, bins_line = header["bin"][-1]
    obs_bins = header["bin"][0][0] if len(header["bin"]) > 1 else None
    (p1, l1), (p2, l2) = header["process"]

    def is_int(s):
        return re.fullmatch(r"[+-]?\d+", s) is not None

    if all(is_int(x) for x in p1) and not all(is_int(x) for x in p2):
        (p1, l1), (p2, l2) = (p2, l2), (p1, l1)
    if not all(is_int(x) for x in p2):
        bad = next(x for x in p2 if not is_int(x))
        _fail(source, l2, f"the second 'process' line must give integer process ids, got {bad!r}")
    k = len(col_bins)
    for what, vals, ln in (("process names", p1, l1), ("process ids", p2, l2), ("rates", rates[0], rates[1])):
        if len(vals) != k:
            _fail(source, ln, f"{what}: {len(vals)} columns, but the 'bin' line (line {bins_line}) has {k}")
    columns = [Column(b, p, int(pid)) for b, p, pid in zip(col_bins, p1, p2)]
    bins = list(dict.fromkeys(obs_bins or col_bins))
    obs = None
    if observation is not None:
        vals, ln = observation
        if len(vals) != len(bins):
            _fail(source, ln, f"observation has {len(vals)} values, but there are {len(bins)} bins")
        if any((v < 0 and v != -1) or not math.isfinite(v) for v in vals):
            _fail(source, ln, "observations must be finite and >= 0 (or -1: from the data_obs template)")
        obs = dict(zip(bins, vals))
    for c, ln_bins in ((c, bins_line) for c in columns):
        if c.bin not in bins:
            _fail(source, ln_bins, f"column bin {c.bin!r} is not among the observed bins {bins}")
    for r in rates[0]:
        if not math.isfinite(r) or (r < 0 and r != -1):
            _fail(source, rates[1], f"rates must be finite and >= 0 (or -1 for a template's integral), got {r}")
    kinds: dict[str, bool] = {}
    for c in columns:
        if kinds.setdefault(c.process, c.signal) != c.signal:
            _fail(source, l2, f"process {c.process!r} is signal in one bin and background in another")
    if not any(c.signal for c in columns):
        _fail(source, l2, "no signal process (a process id <= 0)")
    for b in bins:
        if not any(c.bin == b and not c.signal and r != 0 for c, r in zip(columns, rates[0])):
            _fail(source, rates[1], f"bin {b!r} has no background process with a non-zero rate")
    if "imax" in counts and counts["imax"][0] != "*" and int(counts["imax"][0]) != len(bins):
        _fail(source, counts["imax"][1], f"imax {counts['imax'][0]}, but the card has {len(bins)} bins")
    nproc = len(dict.fromkeys(c.process for c in columns))
    if "jmax" in counts and counts["jmax"][0] != "*" and int(counts["jmax"][0]) != nproc - 1:
        _fail(source, counts["jmax"][1], f"jmax {counts['jmax'][0]}, but the card has {nproc} processes "
                                         f"(jmax is the number of processes minus one)")
    card = Card(source=source, bins=bins, observation=obs, columns=columns, rates=rates[0], shapes=shapes)

    # ---- phase 2 -------------------------------------------------------------------------------
    edits: list[tuple[list[str], int]] = []
    per_column_lines = 0
    for ln, raw in enumerate(lines[rate_line:], start=rate_line + 1):
        stripped = raw.lstrip()
        if stripped.startswith("#") or stripped.startswith("--"):
            continue
        text = raw.split("#", 1)[0] if "#" in raw[1:] else raw
        toks = text.split()
        if len(toks) <= 1:
            continue
        typ = toks[1]
        if typ in PER_COLUMN or typ == "gmN":
            nargs = 1 if typ == "gmN" else 0
            if len(toks) < 2 + nargs + k:
                _fail(source, ln, f"{typ} line {toks[0]!r} has {len(toks) - 2 - nargs} values, but there are {k} "
                                  f"columns")
            toks = toks[: 2 + nargs + k]
        tree = _parse_line(" ".join(toks), "directive", source, ln, raw)
        kids = tree.children
        cols = _columns_of(raw)
        if tree.data == "unsupported":
            _fail(source, ln, f"systematic type {str(kids[1])!r} is not supported (supported: "
                              f"{', '.join(SUPPORTED_TYPES)}, gmN, param, rateParam, extArg, flatParam, group, "
                              f"autoMCStats, nuisance edit rename/drop/freeze)", cols[1])
        if tree.data in ("per_column", "gmn"):
            name, nofloat = _syst_name(str(kids[0]))
            typ = str(kids[1]) if tree.data == "per_column" else "gmN"
            if typ not in SUPPORTED_TYPES and typ != "gmN":
                _fail(source, ln, f"systematic type {typ!r} is not supported (supported: "
                                  f"{', '.join(SUPPORTED_TYPES)}, gmN)", cols[1])
            cells = kids[2:]  # per_column: NAME TYPE cells; gmn: NAME N cells ("gmN" is anonymous)
            off = 2 if tree.data == "per_column" else 3
            values = [_cell(c, source, ln, cols[off + j], typ) for j, c in enumerate(cells)]
            args = (int(str(kids[1])),) if tree.data == "gmn" else ()
            card.systematics.append(Systematic(name, typ, values, ln, args, nofloat))
            per_column_lines += 1
        elif tree.data == "param":
            name, _ = _syst_name(str(kids[0]))
            sig = str(kids[2])
            if "/" in sig:
                _fail(source, ln, f"param {name}: an asymmetric (bifurcated) sigma {sig} is not supported", cols[3])
            sigma = float(sig)
            if sigma <= 0:
                _fail(source, ln, f"param {name}: sigma must be > 0, got {sigma}", cols[3])
            rng = _range(kids[3]) if len(kids) > 3 else None
            card.params.append(Param(name, _num(kids[1]), sigma, rng, ln))
        elif tree.data == "flatparam":
            card.flat_params.append(str(kids[0]))
        elif tree.data == "rateparam":
            name = str(kids[0])
            val = kids[3]
            rp = RateParam(name, str(kids[1]), str(kids[2]), ln)
            if val.data == "rp_number":
                rp.init = _num(val.children[0])
                rp.range = _range(val.children[1]) if len(val.children) > 1 else None
                if rp.range and not rp.range[0] <= rp.init <= rp.range[1]:
                    _fail(source, ln, f"rateParam {name}: init {rp.init} is outside its range {list(rp.range)}", cols[4])
            elif val.data == "rp_formula":
                rp.formula = str(val.children[0])
                rp.args = tuple(a for a in str(val.children[1]).split(",") if a)
            else:
                _fail(source, ln, f"rateParam {name}: a parameter from a ROOT workspace ({val.children[0]}) is "
                                  "not supported", cols[4])
            card.rate_params.append(rp)
        elif tree.data == "extarg":
            val = str(kids[1])
            if ".root" in val:
                _fail(source, ln, f"extArg {kids[0]}: arguments from a ROOT workspace are not supported", cols[2])
            try:
                init = float(val)
            except ValueError:
                _fail(source, ln, f"extArg {kids[0]}: expected a number, got {val!r}", cols[2])
            card.ext_args[str(kids[0])] = (init, _range(kids[2]) if len(kids) > 2 else None)
        elif tree.data == "group":
            gname, op = str(kids[0]), str(kids[1])
            members = [str(x) for x in kids[2:]]
            if op == "=" and gname in card.groups:
                _fail(source, ln, f"group {gname!r} is defined twice (use += to extend it)")
            if op == "+=" and gname not in card.groups:
                _fail(source, ln, f"group {gname!r} is extended with += before it is defined")
            card.groups.setdefault(gname, []).extend(members)
        elif tree.data == "automcstats":
            thr = _num(kids[1])
            inc = bool(int(str(kids[2]))) if len(kids) > 2 else False
            mode = int(str(kids[3])) if len(kids) > 3 else 1
            card.auto_mc.append(AutoMCStats(str(kids[0]), thr, inc, mode, ln))
        elif tree.data == "edit":
            edits.append(([str(x) for x in kids], ln))
    if "kmax" in counts and counts["kmax"][0] != "*" and not edits:
        effective = sum(1 for s in card.systematics if _has_effect(s, card)) + len(card.params)
        if int(counts["kmax"][0]) != effective:
            _fail(source, counts["kmax"][1], f"kmax {counts['kmax'][0]}, but the card has {effective} "
                                             "nuisance parameter lines with an effect")
    for args, ln in edits:
        _apply_edit(card, args, ln)
    return card


def _has_effect(s: Systematic, card: Card) -> bool:
    for v, r in zip(s.values, card.rates):
        if v is None or r == 0:
            continue
        if s.type == "lnN" and v == 1.0:
            continue
        if v == 0.0 and s.type != "gmN":
            continue
        return True
    return s.type == "gmN"


def _apply_edit(card: Card, args: list[str], line: int) -> None:
    """nuisance edit rename / drop / freeze (NuisanceModifier.py semantics)."""
    cmd, rest = args[0], args[1:]
    src = card.source
    ifexists = "ifexists" in rest
    rest = [a for a in rest if a != "ifexists"]

    def cols_matching(proc, chan):
        pr = re.compile(".*" if proc == "*" else proc)
        ch = re.compile(".*" if chan == "*" else chan)
        return [j for j, c in enumerate(card.columns) if pr.fullmatch(c.process) and ch.fullmatch(c.bin)]

    if cmd == "rename":
        if len(rest) == 2:
            old, new = rest
            hits = [s for s in card.systematics if s.name == old]
            if not hits and not ifexists:
                _fail(src, line, f"nuisance edit rename: no nuisance named {old!r}")
            for s in hits:
                s.name = new
            return
        if len(rest) == 4:
            proc, chan, old, new = rest
            hits = [s for s in card.systematics if s.name == old]
            if not hits and not ifexists:
                _fail(src, line, f"nuisance edit rename: no nuisance named {old!r}")
            for s in hits:
                cols = cols_matching(proc, chan)
                moved = [s.values[j] if j in cols else None for j in range(len(s.values))]
                kept = [None if j in cols else s.values[j] for j in range(len(s.values))]
                s.values = kept
                target = next((t for t in card.systematics if t.name == new and t.type == s.type), None)
                if target is None:
                    card.systematics.append(Systematic(new, s.type, moved, line, s.args, s.nofloat))
                else:
                    target.values = [m if m is not None else t for m, t in zip(moved, target.values)]
            return
        _fail(src, line, "nuisance edit rename: expected OLD NEW or PROCESS CHANNEL OLD NEW")
    if cmd == "drop":
        if len(rest) != 3:
            _fail(src, line, "nuisance edit drop: expected PROCESS CHANNEL NAME")
        proc, chan, name = rest
        hits = [s for s in card.systematics if re.fullmatch(name, s.name)]
        if not hits and not ifexists:
            _fail(src, line, f"nuisance edit drop: no nuisance named {name!r}")
        cols = cols_matching(proc, chan)
        for s in hits:
            s.values = [None if j in cols else v for j, v in enumerate(s.values)]
        return
    if cmd == "freeze":
        if len(rest) != 1:
            _fail(src, line, "nuisance edit freeze: expected NAME")
        pat = re.compile(rest[0])
        names = {s.name for s in card.systematics} | {p.name for p in card.params} | {r.name for r in card.rate_params}
        hits = {n for n in names if pat.fullmatch(n)}
        if not hits and not ifexists:
            _fail(src, line, f"nuisance edit freeze: no parameter matches {rest[0]!r}")
        card.frozen |= hits
        return
    _fail(src, line, f"nuisance edit {cmd!r} is not supported (supported: rename, drop, freeze)")
