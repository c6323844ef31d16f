"""Build steps of the compiler: plain functions ``step_<name>(model, opts) -> model``, in one list.

Each step is a small sequence of passes; :mod:`qnnflow.flows.compile.driver` runs them in order, saves
each step's graph and verifies it against the reference.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qnnflow.flows.passes.tidy import fixed_point, tidy
from qonnx.core.modelwrapper import ModelWrapper


class OutputMode(enum.Enum):
    LABELS = "labels"  # the class index, through LabelSelect
    LOGITS = "logits"  # the integer accumulators of the last layer; scale and offset on the host


@dataclass(frozen=True)
class CompileOptions:
    target_cycles: int | None = None
    target_fps: float | None = None
    clock_mhz: float = 50.0
    # a resource budget: the fastest folding whose estimated LUTs / block RAMs fit
    # (flows/compile/folding_search.py); with a target too, that folding must reach it
    lut_budget: int | None = None
    bram_budget: int | None = None
    family: str = "ecp5"  # for a resource budget or minimize_luts: "ecp5" or "xc7"
    # fold for the fewest estimated LUTs that reach the target (and fit a budget, if given) instead
    # of each layer's least parallel folding that reaches it (folding.fold_for_cycles)
    minimize_luts: bool = False
    folding: Path | None = None  # a folding.json to apply instead of computing one
    output: OutputMode = OutputMode.LABELS
    fifo_depth: int = 2
    input_grid: str | None = None  # --input-grid: the fixed-point grid of a float input with no quantizer
    # target_cycles is the board family's default (folding.DEFAULT_TARGET_CYCLES), not the user's:
    # a model that cannot reach it is folded for the fastest it can reach instead of refused
    default_target: bool = False

    def __post_init__(self) -> None:
        if self.target_cycles is not None and self.target_fps is not None:
            raise ValueError("give either a target in cycles per frame or in frames per second, not both")
        if self.target_cycles is not None and self.target_cycles < 1:
            raise ValueError(f"target cycles must be at least 1, not {self.target_cycles}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target fps must be positive, not {self.target_fps}")
        if self.clock_mhz <= 0:
            raise ValueError(f"clock must be positive, not {self.clock_mhz} MHz")
        if self.minimize_luts and self.target_cycles is None and self.target_fps is None:
            raise ValueError("minimize_luts needs a target in cycles per frame or frames per second")
        if self.family not in ("ecp5", "xc7"):
            raise ValueError(f"family must be ecp5 or xc7, not {self.family!r}")
        if self.input_grid is not None:
            from qnnflow.flows.ir.inputs import parse_grid_spec

            parse_grid_spec(self.input_grid)


def step_tidy(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.compile.importer import check_supported
    from qnnflow.flows.passes.conv1d import Conv1dTo2d
    from qnnflow.flows.passes.conv_transpose import LowerConvTranspose
    from qnnflow.flows.passes.pool import LowerAveragePool

    check_supported(model)
    model, _ = Conv1dTo2d().apply(model)  # 1-D networks as 2-D ones of height 1
    model = tidy(model)
    model, transposed = LowerConvTranspose().apply(model)  # stride-1 transposed convs as Conv
    model, pooled = LowerAveragePool().apply(model)
    return tidy(model) if pooled or transposed else model


def step_streamline(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.passes.streamline import Streamline

    model, _ = Streamline().apply(model)
    return model


def step_integer_cleanup(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.passes.integer import integer_cleanup_passes

    return fixed_point(model, integer_cleanup_passes())


def step_channels_last(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.passes.layout import LowerToChannelsLast

    model, _ = LowerToChannelsLast().apply(model)
    return model


def step_label_select(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    if opts.output is OutputMode.LOGITS:
        return model
    from qnnflow.flows.passes.hw_labels import FinalScaleToLabelSelect

    model, _ = FinalScaleToLabelSelect().apply(model)
    return model


def step_hw_layers(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.passes.hw import InferAddStreams, InferDuplicateStreams, InferMVAU, InferThresholding, hw_region
    from qnnflow.flows.passes.hw_labels import InferLabelSelect
    from qnnflow.flows.passes.vvau import InferVVAUActivation

    # a VVAU takes its activation before a standalone Thresholding could
    model = fixed_point(model, [InferVVAUActivation()])
    model = fixed_point(model, [InferMVAU(), InferThresholding(), InferLabelSelect(), InferAddStreams()])
    model = fixed_point(model, [InferDuplicateStreams()])
    hw_region(model)  # raises if anything between the layers has no hardware layer
    return model


def step_fold(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.compile import folding

    if opts.folding is not None:
        return folding.apply_folding(model, opts.folding)
    target = opts.target_cycles
    if opts.target_fps is not None:
        target = folding.fps_to_cycles(opts.target_fps, opts.clock_mhz)
    if opts.lut_budget is not None or opts.bram_budget is not None or opts.minimize_luts:
        return _fold_search(model, opts, target)
    if target is None:
        return model  # PE = SIMD = 1 everywhere: the smallest design
    return folding.fold_for_cycles(model, target, relax=opts.default_target)


def _fold_search(model: ModelWrapper, opts: CompileOptions, target: int | None) -> ModelWrapper:
    """The resource-aware search (flows/compile/folding_search.py): the fewest LUTs at the target with
    ``minimize_luts``, else the fastest folding within the budget, which must then reach a target given."""
    from qnnflow.flows.compile.folding import min_cycles
    from qnnflow.flows.compile.folding_search import search
    from qnnflow.flows.ir.layers import get_layer, hw_nodes

    if target is not None and opts.default_target:  # the family's default: the fastest reachable if slower
        target = max([target, *(min_cycles(get_layer(n)) for n in hw_nodes(model))])
    budget = {"lut_budget": opts.lut_budget, "bram_budget": opts.bram_budget, "fifo_depth": opts.fifo_depth}
    if opts.minimize_luts:
        return search(model, opts.family, target_cycles=target, **budget)[0]
    model, record = search(model, opts.family, **budget)
    if target is not None and not opts.default_target and record.ii_cycles > target:
        raise ValueError(
            f"the fastest folding within the budget takes {record.ii_cycles:,} cycles per frame, more than the "
            f"target of {target:,}; raise the budget, or drop the target"
        )
    return model


def step_streams(model: ModelWrapper, opts: CompileOptions) -> ModelWrapper:
    from qnnflow.flows.passes.streams import InsertFIFOs, InsertWidthConverters

    model = fixed_point(model, [InsertWidthConverters()])
    return fixed_point(model, [InsertFIFOs(opts.fifo_depth)])


STEPS: list[tuple[str, Callable[[ModelWrapper, CompileOptions], ModelWrapper]]] = [
    ("tidy", step_tidy),
    ("streamline", step_streamline),
    ("integer_cleanup", step_integer_cleanup),
    ("channels_last", step_channels_last),
    ("label_select", step_label_select),
    ("hw_layers", step_hw_layers),
    ("fold", step_fold),
    ("streams", step_streams),
]
