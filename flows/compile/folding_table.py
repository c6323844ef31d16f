"""Analysis: every legal folding of every hardware layer, priced, and the streams between the layers.

What :mod:`qnnflow.flows.compile.folding_search` searches over. A model's estimated totals
(:func:`qnnflow.flows.compile.estimates.totals` of the graph after ``step_streams``) decompose
exactly into

- one term per layer: :func:`qnnflow.flows.compile.resources.estimate` of the layer at its folding,
  which reads only the layer's own attributes; and
- one term per stream between two layers (``flows/passes/streams.py``): a FIFO as wide as the
  producer's output beat, and where the producer's output beat differs from the consumer's input
  beat, a WidthConverter between them and a second FIFO as wide as the consumer's input beat. This
  term depends on the foldings of both ends; ``hw/width_converter.sv`` needs one width a multiple of
  the other, so a pair of foldings without that cannot be built at all ("broken" below).

:class:`PricedTable` holds both kinds of term, priced once, so that a combination of foldings is
summed without touching the graph; :func:`full_totals` is the reference it is checked against
(the stream passes run on a copy of the graph).

Also what :mod:`.folding_search` and :mod:`.folding_exhaustive` share: the budget, the record of a
result, the target in cycles, and :func:`finish` (apply a choice, check it against the full model).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
from qnnflow.flows.compile.estimates import totals
from qnnflow.flows.compile.folding import _options, _set, fps_to_cycles, min_cycles
from qnnflow.flows.compile.resources import FAMILIES, KEYS, estimate
from qnnflow.flows.ir.layers import FIFO, Layer, WidthConverter, get_layer, hw_nodes
from qnnflow.flows.passes.streams import _streams
from qonnx.core.modelwrapper import ModelWrapper


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")


def lut_bram_keys(family: str) -> tuple[str, str]:
    """The names of the LUT and block-RAM figures of ``family`` (``LUT4`` / ``DP16KD`` on ECP5)."""
    return KEYS[family][0], KEYS[family][2]


def copy_model(model: ModelWrapper) -> ModelWrapper:
    return ModelWrapper(copy.deepcopy(model.model), fix_missing_initializer_valueinfo=False)


def full_totals(model: ModelWrapper, family: str, fifo_depth: int = 2) -> dict[str, int]:
    """Estimated totals of ``model`` as compiled: the width converters and FIFOs (of ``fifo_depth``)
    that the ``streams`` step inserts, inserted on a copy, then :func:`~.estimates.totals`. Models
    that already have their streams are estimated as they are."""
    from qnnflow.flows.passes.streams import InsertFIFOs, InsertWidthConverters
    from qnnflow.flows.passes.tidy import fixed_point

    check_family(family)
    m = fixed_point(copy_model(model), [InsertWidthConverters()])
    m = fixed_point(m, [InsertFIFOs(fifo_depth)])
    return totals(m, family)


def ii_cycles(model: ModelWrapper) -> int:
    """The pipeline's initiation interval: the most cycles per frame of any hardware layer."""
    return max((get_layer(n).exp_cycles() for n in hw_nodes(model)), default=0)


@dataclass(frozen=True)
class Choice:
    """One legal folding of a layer with its cycles per frame, estimated LUTs and block RAMs, and
    stream beat widths in bits."""

    folding: dict[str, int]
    cycles: int
    luts: int
    brams: int
    in_width: int
    out_width: int


@dataclass(frozen=True)
class Edge:
    """A stream from layer ``src`` to layer ``dst`` (indices into the table's layers)."""

    src: int
    dst: int
    elem_bits: int
    elements: int


def _price(layer: Layer, family: str) -> list[Choice]:
    lut_key, bram_key = lut_bram_keys(family)
    saved = layer.folding()
    out = []
    for opt in _options(layer):
        _set(layer, opt)
        est = estimate(layer, family)
        out.append(Choice(opt, layer.exp_cycles(), est[lut_key], est[bram_key], layer.in_width, layer.out_width))
    _set(layer, saved)
    return out


class PricedTable:
    """The priced foldings of every hardware layer of ``model`` (in graph order) and its streams.

    A *pick* is one choice index per layer. :meth:`totals` gives (LUTs, block RAMs, broken
    streams) of a pick, equal to :func:`full_totals` of the model folded so (tests check it)."""

    def __init__(self, model: ModelWrapper, family: str, fifo_depth: int = 2):
        check_family(family)
        if fifo_depth < 1:
            raise ValueError(f"FIFO depth must be at least 1, not {fifo_depth}")
        self.family, self.fifo_depth = family, fifo_depth
        nodes = hw_nodes(model)
        if not nodes:
            raise ValueError("the model has no hardware layers to fold (run the compile steps up to hw_layers first)")
        plumbing = [n.name for n in nodes if n.op_type in ("FIFO", "WidthConverter")]
        if plumbing:
            raise ValueError(
                f"the model already has its streams ({', '.join(plumbing[:3])}, ...): fold the graph of the "
                "compile steps up to hw_layers, before the streams step"
            )
        self.layers = [get_layer(n) for n in nodes]
        self.choices = [_price(lay, family) for lay in self.layers]
        index = {n.name: i for i, n in enumerate(nodes)}
        self.edges = []
        for prod, cons, t in _streams(model):
            ew = int(model.get_tensor_datatype(t).bitwidth())
            elements = int(np.prod(model.get_tensor_shape(t)[1:]))
            self.edges.append(Edge(index[prod.name], index[cons.name], ew, elements))
        self.touching = [[e for e in self.edges if i in (e.src, e.dst)] for i in range(len(self.layers))]
        self._streams: dict[tuple[int, int, int, int], tuple[int, int] | None] = {}

    def _module(self, node) -> tuple[int, int]:
        est = estimate(get_layer(node), self.family)
        lut_key, bram_key = lut_bram_keys(self.family)
        return est[lut_key], est[bram_key]

    def stream(self, edge: Edge, out_width: int, in_width: int) -> tuple[int, int] | None:
        """(LUTs, block RAMs) of the FIFOs and width converter on ``edge`` between beats of
        ``out_width`` and ``in_width`` bits; None when no width converter joins them."""
        key = (out_width, in_width, edge.elem_bits, edge.elements)
        if key not in self._streams:
            self._streams[key] = self._stream_cost(edge, out_width, in_width)
        return self._streams[key]

    def _stream_cost(self, edge: Edge, a: int, b: int) -> tuple[int, int] | None:
        if max(a, b) % min(a, b):
            return None
        bits = edge.elements * edge.elem_bits
        luts, brams = self._module(FIFO.make("f", ["x"], ["y"], depth=self.fifo_depth, width=a, beats=bits // a))
        if a != b:
            attrs = {"inWidth": a, "outWidth": b, "elemWidth": edge.elem_bits, "elements": edge.elements}
            dwc = self._module(WidthConverter.make("c", ["x"], ["y"], **attrs))
            fifo = self._module(FIFO.make("f", ["x"], ["y"], depth=self.fifo_depth, width=b, beats=bits // b))
            luts, brams = luts + dwc[0] + fifo[0], brams + dwc[1] + fifo[1]
        return luts, brams

    def edge_cost(self, edge: Edge, pick: list[int]) -> tuple[int, int] | None:
        a = self.choices[edge.src][pick[edge.src]]
        b = self.choices[edge.dst][pick[edge.dst]]
        return self.stream(edge, a.out_width, b.in_width)

    def own_totals(self, pick: list[int]) -> tuple[int, int]:
        """(LUTs, block RAMs) of the layers of ``pick`` alone, without their streams."""
        return (
            sum(self.choices[i][c].luts for i, c in enumerate(pick)),
            sum(self.choices[i][c].brams for i, c in enumerate(pick)),
        )

    def totals(self, pick: list[int]) -> tuple[int, int, int]:
        """(LUTs, block RAMs, streams that cannot be built) of ``pick``."""
        luts, brams = self.own_totals(pick)
        broken = 0
        for e in self.edges:
            cost = self.edge_cost(e, pick)
            if cost is None:
                broken += 1
            else:
                luts, brams = luts + cost[0], brams + cost[1]
        return luts, brams, broken

    def ii(self, pick: list[int]) -> int:
        return max(self.choices[i][c].cycles for i, c in enumerate(pick))

    def apply(self, pick: list[int]) -> None:
        """Set every layer of the model this table was made from to its choice in ``pick``."""
        for lay, opts, c in zip(self.layers, self.choices, pick, strict=True):
            _set(lay, opts[c].folding)

    def current(self) -> list[int]:
        """The pick of the model's present folding."""
        return [
            [c.folding for c in opts].index(lay.folding()) for lay, opts in zip(self.layers, self.choices, strict=True)
        ]


# -- what the searches share -------------------------------------------------------------------------

FASTEST = "fastest within budget"
FEWEST_LUTS = "fewest LUTs at target"


@dataclass(frozen=True)
class Budget:
    """At most ``luts`` LUTs and ``brams`` block RAMs (None: no limit)."""

    luts: int | None = None
    brams: int | None = None

    def __post_init__(self) -> None:
        for what, v in (("LUT", self.luts), ("block-RAM", self.brams)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"the {what} budget must be a non-negative integer, not {v!r}")

    def fits(self, luts: int, brams: int) -> bool:
        return (self.luts is None or luts <= self.luts) and (self.brams is None or brams <= self.brams)

    def excess(self, luts: int, brams: int) -> float:
        """How far over the budget, as fractions of it summed (0 when it fits)."""
        out = 0.0
        if self.luts is not None:
            out += max(0, luts - self.luts) / max(self.luts, 1)
        if self.brams is not None:
            out += max(0, brams - self.brams) / max(self.brams, 1)
        return out

    def describe(self, family: str) -> str:
        lut_key, bram_key = lut_bram_keys(family)
        parts = [f"{k} <= {v:,}" for k, v in ((lut_key, self.luts), (bram_key, self.brams)) if v is not None]
        return " and ".join(parts) or "no limit"


@dataclass(frozen=True)
class FoldingRecord:
    """What a search chose: the objective, the II, the estimated totals of the model as compiled,
    the folding of every layer, and the work done. ``candidates``: for :func:`search`, the
    candidate IIs it priced layer by layer; for :func:`~.folding_exhaustive.exhaustive`, the
    combinations it enumerated. ``full_evaluations``: how often the whole model was estimated with
    its streams inserted (:func:`~.folding_table.full_totals`)."""

    objective: str
    ii_cycles: int
    totals: dict[str, int]
    folding: dict[str, dict[str, int]]
    candidates: int
    full_evaluations: int
    notes: dict = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_target(target_fps: float | None, clock_mhz: float | None, target_cycles: int | None) -> int | None:
    """Cycles per frame of a target given in cycles or frames/s (which needs the clock); None for none."""
    if target_fps is not None and target_cycles is not None:
        raise ValueError("give either a target in cycles per frame or in frames per second, not both")
    if target_fps is not None:
        if clock_mhz is None:
            raise ValueError(f"a target of {target_fps:g} frames/s needs the clock (clock_mhz) to count cycles")
        return fps_to_cycles(target_fps, clock_mhz)
    if target_cycles is not None and (not isinstance(target_cycles, int) or target_cycles < 1):
        raise ValueError(f"target cycles per frame must be an integer of at least 1, not {target_cycles!r}")
    return target_cycles


def check_reachable(model: ModelWrapper, target: int) -> None:
    """ValueError (the wording of :func:`~.folding.fold_for_cycles`) when no folding reaches ``target``."""
    layers = [get_layer(n) for n in hw_nodes(model)]
    worst = max(layers, key=min_cycles)
    floor = min_cycles(worst)
    if target < floor:
        raise ValueError(
            f"target of {target} cycles per frame is not reachable: {worst.where} needs at least "
            f"{floor} cycles even fully parallel; the nearest feasible target is {floor} cycles per frame"
        )


def finish(
    model: ModelWrapper,
    table: PricedTable,
    pick: list[int],
    objective: str,
    candidates: int,
    budget: Budget,
    notes: dict | None = None,
) -> FoldingRecord:
    """Fold ``model`` to ``pick`` and check the table's figures against the full model's estimate."""
    table.apply(pick)
    full = full_totals(model, table.family, table.fifo_depth)
    lut_key, bram_key = lut_bram_keys(table.family)
    luts, brams, broken = table.totals(pick)
    if broken or (full[lut_key], full[bram_key]) != (luts, brams) or not budget.fits(luts, brams):
        raise RuntimeError(  # the decomposition of folding_table.py no longer matches the stream passes
            f"folding search: the chosen folding's estimate ({lut_key} {luts}, {bram_key} {brams}, {broken} "
            f"unbuildable streams) disagrees with the model's ({full}) or misses the budget {budget}"
        )
    folding = {lay.node.name: lay.folding() for lay in table.layers if lay.FOLDS}
    return FoldingRecord(objective, ii_cycles(model), full, folding, candidates, 1, notes or {})
