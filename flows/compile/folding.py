"""Folding: PE / SIMD of every hardware layer, for a target or a resource budget; folding.json.

- :func:`fold_for_cycles`: the cheapest folding of each layer whose cycles per frame are at most
  the target, then every layer re-folded to the pipeline's actual II (balance: no layer is faster
  than the slowest one needs). An unreachable target is a ValueError naming the limiting layer and
  the nearest feasible target.
- Resource budgets and the fewest LUTs for a target: :mod:`qnnflow.flows.compile.folding_search`.
- :func:`folding_dict` / :func:`apply_folding`: the editable ``folding.json`` form and its
  re-application (every value checked against the layer's constraints); :func:`apply_folding` also
  takes FINN's folding config (:mod:`qnnflow.flows.compile.finn_folding`).
"""

from __future__ import annotations

import json
from pathlib import Path

from qnnflow.flows.ir.layers import Layer, get_layer, hw_nodes
from qonnx.core.modelwrapper import ModelWrapper


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _options(layer: Layer) -> list[dict[str, int]]:
    """Every legal folding of ``layer``, cheapest (least parallel) first."""
    g = layer.get
    op = layer.op_type
    if op == "MVAU":
        opts = [{"PE": p, "SIMD": s} for p in _divisors(int(g("MH"))) for s in _divisors(int(g("MW")))]
        return sorted(opts, key=lambda o: (o["PE"] * o["SIMD"], o["PE"]))
    if op == "VVAU":  # SIMD window positions per beat only once PE = Channels (hw/vvau.sv)
        ch, kk = int(g("Channels")), layer.kk()
        return [{"PE": p, "SIMD": 1} for p in _divisors(ch)] + [{"PE": ch, "SIMD": s} for s in _divisors(kk)[1:]]
    if op == "SlidingWindow":
        return [{"SIMD": s} for s in _divisors(int(g("IFMChannels")))]
    if op in ("Thresholding", "MaxPool", "AddStreams", "DuplicateStreams", "TVSmooth"):
        return [{"PE": p} for p in _divisors(int(g("NumChannels")))]
    if op == "LabelSelect":
        return [{"PE": p} for p in _divisors(int(g("Labels")))]
    return [{}]


def _set(layer: Layer, folding: dict[str, int]) -> None:
    for k, v in folding.items():
        layer.set(k, int(v))


def min_cycles(layer: Layer) -> int:
    """Cycles per frame of ``layer`` at its most parallel folding."""
    saved = layer.folding()
    _set(
        layer,
        _options(layer)[-1]
        if layer.op_type != "MVAU"
        else {"PE": int(layer.get("MH")), "SIMD": int(layer.get("MW"))},
    )
    cycles = layer.exp_cycles()
    _set(layer, saved)
    return cycles


def _fold_layer(layer: Layer, target: int) -> bool:
    for opt in _options(layer):
        _set(layer, opt)
        if layer.exp_cycles() <= target:
            return True
    return False


# Cycles per frame to fold for when the user sets no target, by FPGA family. ECP5: 10,000 (5,000
# frames/s at 50 MHz, far above the ~165 frames/s the UART host link feeds; the trained digits
# CNN w2a2 takes ~3,800 LUT4 and 9 DP16KD, 5 % of an ECP5-85F, and meets 50 MHz). iCE40 UP5K:
# 50,000, since a 32-wide adder tree does not reach 24 MHz there and 5,280 LCs are few; still
# ~480 frames/s at 24 MHz, above the UART's rate. Gowin GW2A-18 (20,736 LUT4): as ECP5. xc7
# (resource estimates only): as ECP5.
# Without any target every layer would stay at PE = SIMD = 1 (the digits CNN: II 294,912 cycles).
DEFAULT_TARGET_CYCLES = {"ecp5": 10_000, "ice40": 50_000, "gowin": 10_000, "xc7": 10_000}


def fold_for_cycles(model: ModelWrapper, target_cycles: int, relax: bool = False) -> ModelWrapper:
    """Fold every layer for at most ``target_cycles`` per frame, then balance to the actual II.

    A target below what the model can reach fully parallel is a ValueError, unless ``relax`` (the
    target is a default, not the user's): then the model is folded for the fastest it can reach."""
    if target_cycles < 1:
        raise ValueError(f"target cycles per frame must be at least 1, not {target_cycles}")
    layers = [get_layer(n) for n in hw_nodes(model)]
    floor = max((min_cycles(lay) for lay in layers), default=1)
    if relax:
        target_cycles = max(target_cycles, floor)
    if target_cycles < floor:
        worst = max(layers, key=min_cycles)
        raise ValueError(
            f"target of {target_cycles} cycles per frame is not reachable: {worst.where} needs at least "
            f"{floor} cycles even fully parallel; the nearest feasible target is {floor} cycles per frame"
        )
    for lay in layers:
        _fold_layer(lay, target_cycles)
    ii = max(lay.exp_cycles() for lay in layers)
    for lay in layers:  # balance: nothing faster than the bottleneck
        _fold_layer(lay, ii)
    return model


def fps_to_cycles(target_fps: float, clock_mhz: float) -> int:
    if target_fps <= 0 or clock_mhz <= 0:
        raise ValueError(f"target fps and clock must be positive, not {target_fps} fps at {clock_mhz} MHz")
    cycles = int(clock_mhz * 1e6 // target_fps)
    if cycles < 1:
        raise ValueError(
            f"target of {target_fps:g} frames/s at {clock_mhz:g} MHz needs less than one cycle per frame; "
            f"the nearest feasible target is {clock_mhz * 1e6:g} frames/s (one frame per cycle)"
        )
    return cycles


def folding_dict(model: ModelWrapper) -> dict:
    """{"layers": {name: {"op_type": ..., "PE": ..., "SIMD": ...}}} for every hardware layer."""
    layers = {}
    for n in hw_nodes(model):
        lay = get_layer(n)
        if lay.FOLDS:
            layers[n.name] = {"op_type": n.op_type, **lay.folding()}
    return {"layers": layers}


def _load(folding: dict | str | Path) -> tuple[object, str]:
    if isinstance(folding, dict):
        return folding, "folding"
    path = Path(folding)
    if not path.is_file():
        raise FileNotFoundError(f"folding file not found: {path}")
    try:
        return json.loads(path.read_text()), str(path)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None


def apply_folding(model: ModelWrapper, folding: dict | str | Path) -> ModelWrapper:
    """Set PE / SIMD from a folding dict or file: qnnflow's ``folding.json`` or FINN's folding config
    (:mod:`qnnflow.flows.compile.finn_folding`; its summary is left in the graph's metadata for the
    compile log). ValueError for unknown layers or attributes and for values that break a layer's
    constraints (message names the layer)."""
    from qnnflow.flows.compile import finn_folding

    folding, source = _load(folding)
    if finn_folding.is_finn_layout(folding, source):
        model, summary = finn_folding.apply_finn_folding(model, folding, source)
        model.model.metadata_props.add(key=finn_folding.NOTE_KEY, value=json.dumps(summary))
        return model
    entries = folding.get("layers")
    if not isinstance(entries, dict):
        raise ValueError(f'{source}: expected an object with a "layers" mapping of layer name -> folding')
    nodes = {n.name: n for n in hw_nodes(model)}
    unknown = sorted(set(entries) - set(nodes))
    if unknown:
        raise ValueError(f"{source}: unknown layers {unknown}; the graph has {sorted(nodes)}")
    for name, values in entries.items():
        lay = get_layer(nodes[name])
        if not isinstance(values, dict):
            raise ValueError(f"{source}: {lay.where}: expected an object of folding parameters, not {values!r}")
        for k, v in values.items():
            if k == "op_type":
                continue
            if k not in lay.FOLDS:
                raise ValueError(
                    f"{source}: {lay.where} has no folding parameter {k!r}; it has {list(lay.FOLDS)}"
                )
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{source}: {lay.where} {k} must be an integer, not {v!r}")
            lay.set(k, v)
        lay.check()
    return model
