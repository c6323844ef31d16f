"""The design space of ``qnnflow explore``: a TOML file of axes, expanded into points.

A space file has one ``[explore]`` table of settings shared by every point and one or more
``[[grid]]`` tables. Each grid is the product of its axes; the space is the union of its grids
(a point named twice is kept once). Axes (each a list; a single value is a list of one):

=============  ==========================================================================
``topology``   zoo topologies (``digits-cnn``, ``tfc``, ``cnv``, ...)
``precision``  ``w<W>a<A>`` with W, A in 1..8 or ``t`` (ternary): ``w1a1`` bipolar, ``wtat``;
               or per-layer widths ``w4.3.2a4.3`` (each weight layer, then each activation)
``method``     ``ste``, ``ana`` (ternary presets only), ``stochastic-binary`` (``w1a*``),
               ``calibrated`` (the build's boundary-aware calibration picks per-layer widths)
``cycles``     folding targets in cycles per frame, or ``fps`` (frames/s at the point's clock), or
               ``lut_budget`` (the fastest folding within that many estimated LUT4)
``board``      boards of ``hw/boards/boards.toml``
``clock_mhz``  requested clocks (default: the family's usual clock)
``seed``       training seeds
=============  ==========================================================================

A combination that cannot be trained (``ana`` with a non-ternary precision, ...) is left out and
counted in :attr:`Space.skipped`, so one grid can cross several methods with several precisions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_SPACE = Path(__file__).parent / "spaces" / "digits.toml"
FIDELITIES = ("estimate", "sim", "implement")  # compile only; + stitched simulation; + place and route
METHODS = ("ste", "ana", "stochastic-binary", "calibrated")
_PRECISION = re.compile(r"^w([1-8t])a([1-8t])$")
_MIXED = re.compile(r"^w([2-8](?:\.[2-8])*)a([2-8](?:\.[2-8])*)$")  # per-layer widths (models.zoo.LayerBits)
_GRID_KEYS = {"topology", "precision", "method", "cycles", "fps", "lut_budget", "board", "clock_mhz", "seed"}
_FOLDINGS = ("cycles", "fps", "lut_budget")
FOLDING_RULES = ("balanced", "search")
_SETTINGS = {
    "name": str, "dataset": str, "fidelity": str, "epochs": int, "pnr_seed": int, "train_cpus": int,
    "sim_frames": int, "objectives": list, "folding_rule": str, "cal_max_bits": int, "cal_min_bits": int,
    "cal_mixed": bool,
}  # fmt: skip
_FAMILY_CLOCK = {"ecp5": 100.0, "ice40": 24.0, "gowin": 50.0}  # what explore requests when a grid names none


@dataclass(frozen=True)
class Point:
    """One design: what to train, how to fold it and where to implement it."""

    topology: str
    precision: str
    method: str
    cycles: int | None
    fps: float | None
    board: str
    clock_mhz: float
    seed: int
    lut_budget: int | None = None

    @property
    def layer_bits(self) -> str | None:
        """Per-layer widths (``w4.3.2a4.3``) when the precision gives them, else None."""
        return None if _PRECISION.match(self.precision) else self.precision

    @property
    def preset(self) -> str:
        """The zoo preset trained: per-layer widths train on the topology's w8a8 preset."""
        return f"{self.topology}-{'w8a8' if self.layer_bits else self.precision}"

    @property
    def folding(self) -> str:
        if self.lut_budget is not None:
            return f"b{self.lut_budget}"
        return f"c{self.cycles}" if self.cycles is not None else f"f{self.fps:g}"

    @property
    def name(self) -> str:
        """Readable and unique in its space: ``digits-cnn-w2a2.ste.c9216.ulx3s-85f.100MHz.s0``."""
        model = f"{self.topology}-{self.precision}"
        return f"{model}.{self.method}.{self.folding}.{self.board}.{self.clock_mhz:g}MHz.s{self.seed}"

    def target_cycles(self) -> int | None:
        """The folding target in cycles per frame (a frames/s target at this point's clock); None for
        a LUT budget."""
        if self.cycles is not None:
            return self.cycles
        if self.fps is not None:
            return max(1, int(self.clock_mhz * 1e6 // self.fps))
        return None

    def fold(self) -> dict:
        """What the compile unit folds for: {"cycles": N} or {"lut_budget": N}."""
        t = self.target_cycles()
        return {"cycles": t} if t is not None else {"lut_budget": self.lut_budget}


@dataclass(frozen=True)
class Settings:
    """The ``[explore]`` table: what every point shares."""

    name: str = "explore"
    dataset: str | None = None  # None: each preset's own
    fidelity: str = "implement"
    epochs: int | None = None  # None: each preset's default
    pnr_seed: int = 1  # nextpnr's placement seed
    train_cpus: int = 1  # CPUs a training task asks Ray for (its torch threads)
    sim_frames: int = 0  # 0: the whole test set
    # how a cycles / fps target is folded: "balanced" (each layer's least parallel folding that reaches
    # it, as qnnflow build does) or "search" (the fewest estimated LUTs that reach it)
    folding_rule: str = "balanced"
    # method "calibrated": the widths its candidates span and whether per-layer widths are searched
    cal_max_bits: int = 8
    cal_min_bits: int = 2
    cal_mixed: bool = True
    objectives: list = field(default_factory=lambda: ["accuracy:luts", "accuracy:brams", "accuracy:fps_per_lut",
                                                      "jaccard:luts"])  # fmt: skip

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Space:
    settings: Settings
    points: tuple[Point, ...]
    skipped: tuple[str, ...]  # combinations left out, each with why
    source: str  # the file it came from


class SpaceError(ValueError):
    """A space file that cannot be read: says where and what was expected."""


def load_space(path: Path | str | None = None) -> Space:
    path = Path(path) if path is not None else DEFAULT_SPACE
    if not path.is_file():
        raise SpaceError(f"space file not found: {path} (the default space is {DEFAULT_SPACE})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpaceError(f"{path}: not valid TOML: {err}") from None
    return parse_space(data, str(path))


def parse_space(data: dict, source: str = "space") -> Space:
    unknown = sorted(set(data) - {"explore", "grid"})
    if unknown:
        raise SpaceError(f"{source}: unknown tables {unknown}; a space has [explore] and [[grid]] tables")
    settings = _settings(data.get("explore", {}), source)
    grids = data.get("grid")
    if not isinstance(grids, list) or not grids:
        raise SpaceError(f"{source}: no [[grid]] table; a space needs at least one")
    points: dict[str, Point] = {}
    skipped: list[str] = []
    for k, grid in enumerate(grids, start=1):
        for p in _expand(grid, f"{source} grid {k}", skipped):
            points.setdefault(p.name, p)
    if not points:
        raise SpaceError(f"{source}: every combination was left out: {'; '.join(skipped[:5])}")
    return Space(settings, tuple(points.values()), tuple(dict.fromkeys(skipped)), source)


def _settings(table: dict, source: str) -> Settings:
    unknown = sorted(set(table) - set(_SETTINGS))
    if unknown:
        raise SpaceError(f"{source}: unknown [explore] keys {unknown}; expected some of {sorted(_SETTINGS)}")
    for key, value in table.items():
        if not isinstance(value, _SETTINGS[key]) or (isinstance(value, bool) and _SETTINGS[key] is not bool):
            raise SpaceError(f"{source}: [explore] {key} must be a {_SETTINGS[key].__name__}, not {value!r}")
    s = Settings(**table)
    if s.folding_rule not in FOLDING_RULES:
        raise SpaceError(f"{source}: folding_rule must be one of {', '.join(FOLDING_RULES)}, not {s.folding_rule!r}")
    if s.fidelity not in FIDELITIES:
        raise SpaceError(f"{source}: fidelity must be one of {', '.join(FIDELITIES)}, not {s.fidelity!r}")
    from qnnflow.config import DATASETS

    if s.dataset is not None and s.dataset not in DATASETS:
        raise SpaceError(f"{source}: dataset must be one of {', '.join(DATASETS)}, not {s.dataset!r}")
    for key in ("epochs", "train_cpus"):
        if getattr(s, key) is not None and getattr(s, key) < 1:
            raise SpaceError(f"{source}: [explore] {key} must be at least 1, not {getattr(s, key)}")
    from qnnflow.explore.pareto import parse_objective

    for obj in s.objectives:
        try:
            parse_objective(obj)
        except ValueError as err:
            raise SpaceError(f"{source}: [explore] objectives: {err}") from None
    return s


def _axis(grid: dict, key: str, default: list | None, where: str) -> list:
    value = grid.get(key, default)
    if value is None:
        raise SpaceError(f"{where}: the axis {key!r} is missing")
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpaceError(f"{where}: the axis {key!r} is empty")
    return values


def _expand(grid: dict, where: str, skipped: list[str]) -> list[Point]:
    if not isinstance(grid, dict):
        raise SpaceError(f"{where}: a [[grid]] must be a table, not {grid!r}")
    unknown = sorted(set(grid) - _GRID_KEYS)
    if unknown:
        raise SpaceError(f"{where}: unknown axes {unknown}; expected some of {sorted(_GRID_KEYS)}")
    given = [k for k in _FOLDINGS if k in grid]
    if len(given) != 1:
        raise SpaceError(
            f"{where}: give the foldings as one of cycles (per frame), fps or lut_budget, not "
            + (" and ".join(given) or "none")
        )
    topologies = _axis(grid, "topology", None, where)
    precisions = _axis(grid, "precision", None, where)
    methods = _axis(grid, "method", ["ste"], where)
    targets = [(given[0], v) for v in _axis(grid, given[0], [], where)]
    boards = _axis(grid, "board", ["ulx3s-85f"], where)
    clocks = _axis(grid, "clock_mhz", [None], where)
    seeds = _axis(grid, "seed", [0], where)
    _check_values(where, topologies, precisions, methods, targets, boards, clocks, seeds)
    out = []
    for topo, prec, method, (kind, target), board, clock, seed in itertools.product(
        topologies, precisions, methods, targets, boards, clocks, seeds
    ):
        why = _untrainable(topo, prec, method)
        if why:
            skipped.append(f"{topo}-{prec} with {method}: {why}")
            continue
        clock = float(clock) if clock is not None else _board_clock(board)
        out.append(Point(topo, prec, method, int(target) if kind == "cycles" else None,
                         float(target) if kind == "fps" else None, board, clock, int(seed),
                         int(target) if kind == "lut_budget" else None))  # fmt: skip
    return out


def _check_values(where, topologies, precisions, methods, targets, boards, clocks, seeds) -> None:
    from qnnflow.flows.implement.boards import board_table
    from qnnflow.models.zoo import TOPOLOGIES

    for t in topologies:
        if t not in TOPOLOGIES:
            raise SpaceError(f"{where}: unknown topology {t!r}; known: {', '.join(sorted(TOPOLOGIES))}")
    for p in precisions:
        if not isinstance(p, str) or not (_PRECISION.match(p) or _MIXED.match(p)):
            raise SpaceError(
                f"{where}: precision {p!r} is not w<W>a<A> with W, A in 1..8 or t (e.g. w2a2, wtat), nor per-layer "
                "widths of 2..8 bits (e.g. w4.3.2a4.3)"
            )
    for m in methods:
        if m not in METHODS:
            raise SpaceError(f"{where}: method {m!r} is not one of {', '.join(METHODS)}")
    for kind, v in targets:
        whole = kind != "fps"
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 or (whole and v != int(v)):
            raise SpaceError(f"{where}: {kind} target {v!r} must be a positive {'integer' if whole else 'number'}")
    for b in boards:
        if b not in board_table():
            raise SpaceError(f"{where}: unknown board {b!r}; known: {', '.join(board_table())}")
    for c in clocks:
        if c is not None and (isinstance(c, bool) or not isinstance(c, int | float) or c <= 0):
            raise SpaceError(f"{where}: clock_mhz {c!r} must be a positive number of MHz")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise SpaceError(f"{where}: seed {s!r} must be a whole number >= 0")


def _untrainable(topology: str, precision: str, method: str) -> str | None:
    if _MIXED.match(precision) and not _PRECISION.match(precision):
        from qnnflow.models.zoo import LAYER_COUNTS

        if method != "ste":
            return "per-layer widths train with STE"
        if topology not in LAYER_COUNTS:
            return f"per-layer widths need one of the topologies {', '.join(LAYER_COUNTS)}"
        w, a = (_MIXED.match(precision)[k].split(".") for k in (1, 2))
        if (len(w), len(a)) != LAYER_COUNTS[topology]:
            nw, na = LAYER_COUNTS[topology]
            return f"{topology} has {nw} weight layers and {na} activations, not {len(w)} and {len(a)}"
        return None
    w, a = _PRECISION.match(precision).groups()
    if method == "ana" and (w, a) != ("t", "t"):
        return "ANA trains ternary weights and activations (precision wtat)"
    if method == "stochastic-binary" and w != "1":
        return "stochastic rounding trains bipolar weights (precision w1a*)"
    if method == "calibrated" and (w in "1t" or a in "1t"):
        return "calibration starts from a float model and picks 2- to 8-bit widths (give an integer precision)"
    return None


def _board_clock(board: str) -> float:
    from qnnflow.flows.implement.boards import board_spec

    return _FAMILY_CLOCK[board_spec(board).family]
