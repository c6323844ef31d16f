"""Resource estimates (flows/compile/resources.py) against Yosys figures measured earlier, and the layer ->
module-parameter mapping they start from against codegen's.

``data/resource_baseline.json`` is a measurement of the Yosys version it records: each module
synthesized alone (synth_ecp5, synth_xilinx -family xc7) at the parameters codegen gave the layers
of the digits CNN at 10,000 cycles per frame, plus three module configurations of op types that
design lacks and four with thresholds counted by binary search (THR_SEARCH, hw/threshold_search.sv;
measured for it and added by hand, as the benchmark would write them). ``python -m qnnflow.bench --only
estimates`` writes a new one to ``bench/results/``, which a person copies here after reading the diff."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qnnflow.flows.compile.resources import layer_params, module_estimate
from qnnflow.flows.compile.resources_memory import memory

from qnnflow import toolchain

BASELINE_PATH = Path(__file__).parent / "data" / "resource_baseline.json"
BASELINE = json.loads(BASELINE_PATH.read_text())
FIGURES = (("ecp5", "LUT4"), ("ecp5", "FF"), ("xc7", "LUT6"), ("xc7", "FF"))
BLOCKS = (("ecp5", "DP16KD"), ("ecp5", "MULT18X18D"), ("xc7", "BRAM18"), ("xc7", "DSP48"))


def _within(estimate: int, measured: int, tolerance: float, slack: int = 0) -> bool:
    return abs(estimate - measured) <= tolerance * measured + slack


def _require_baseline_tools() -> None:
    """The estimates are calibrated against one Yosys; another one needs a new measurement."""
    why = toolchain.baseline_mismatch(BASELINE.get("tools"), (
        "`python -m qnnflow.bench --only estimates` and copying bench/results/resource_baseline.json here"
    ))
    if why is not None:
        pytest.fail(f"{BASELINE_PATH.name}: {why}")


@pytest.mark.parametrize("entry", BASELINE["layers"], ids=lambda e: e["layer"])
def test_layer_estimate_within_band_of_yosys(entry):
    _require_baseline_tools()
    tol = BASELINE["tolerance"]["layer"]
    for family, key in FIGURES:
        est = module_estimate(entry["module"], entry["params"], family)[key]
        got = entry["yosys"][family][key]
        # a few cells of slack: the smallest layers have a dozen LUTs
        assert _within(est, got, tol, slack=4), f"{entry['layer']} {family} {key}: estimate {est}, Yosys {got}"
    for family, key in BLOCKS:
        est = module_estimate(entry["module"], entry["params"], family)[key]
        got = entry["yosys"][family][key]
        assert abs(est - got) <= max(1, 0.2 * got), f"{entry['layer']} {family} {key}: estimate {est}, Yosys {got}"


def test_summed_estimates_within_band_of_yosys():
    _require_baseline_tools()
    tol = BASELINE["tolerance"]["total"]
    for family, key in FIGURES:
        est = sum(module_estimate(e["module"], e["params"], family)[key] for e in BASELINE["layers"])
        got = sum(e["yosys"][family][key] for e in BASELINE["layers"])
        assert _within(est, got, tol), f"{family} {key}: estimate {est}, Yosys {got}"


def test_memory_placement_follows_yosys_costs():
    # ROMs: soft logic while cheaper than a block (ECP5 1/16, xc7 1/64 per bit against ~128)
    assert memory(64, 32, "ecp5", rom=True).kind == "logic"  # 2 Kbit
    assert memory(256, 16, "ecp5", rom=True).kind == "bram"  # 4 Kbit
    assert memory(4096, 2, "xc7", rom=True).kind == "logic"  # 8 Kbit
    assert memory(8192, 2, "xc7", rom=True).brams == 1
    # a wide, shallow ROM stays in logic: a block reads at most 36 bits
    assert memory(8, 780, "ecp5", rom=True).kind == "logic"
    # two-word FIFOs: 4 bits take one 16x4 LUT RAM (8 LUT4 places), 5 bits stay in registers
    assert (memory(2, 4, "ecp5", rom=False).kind, memory(2, 5, "ecp5", rom=False).kind) == ("lutram", "logic")
    assert memory(2, 64, "ecp5", rom=False).luts == 8 * 16
    # deeper RAMs: block RAM; on ECP5 with the read-during-write bypass in the fabric
    fifo = memory(73, 64, "ecp5", rom=False)
    assert (fifo.kind, fifo.brams, fifo.ffs) == ("bram", 2, 64 + 7 + 2)
    assert memory(73, 64, "xc7", rom=False).ffs == -64  # the RAMB36 holds the read register
    # a 1152 x 2 window buffer: LUT RAM on xc7 (18 RAM64M), one block on ECP5
    assert memory(1152, 2, "xc7", rom=False).kind == "lutram"
    assert memory(1152, 2, "ecp5", rom=False).brams == 1


def test_estimate_rejects_unknown_family_and_module():
    with pytest.raises(ValueError, match="family must be one of ecp5, xc7, not 'ice40'"):
        module_estimate("fifo", {"DATA_W": 8, "DEPTH": 16}, "ice40")
    with pytest.raises(ValueError, match="no resource model for module 'uart_tx'"):
        module_estimate("uart_tx", {}, "ecp5")


@pytest.mark.parametrize("preset", ["digits-cnn-w2a2", "digits-cnn-w1a1"])
def test_layer_params_match_codegen(tmp_path, preset):
    """The parameters the estimate assumes are the ones codegen instantiates (thresholds: the
    output type's count, which these presets' activations have)."""
    pytest.importorskip("torch")
    from qnnflow.flows.codegen import generate
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.flows.ir.layers import get_layer
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model
    from qonnx.core.modelwrapper import ModelWrapper

    shape = parse_preset(preset).input_shape
    path = export_qonnx(random_model(preset), tmp_path / "m.onnx", shape)
    x = (np.random.default_rng(1).integers(0, 17, size=(8, *shape)) / 16).astype(np.float32)
    compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=5000), verbose=False)
    model = ModelWrapper(str(tmp_path / "b" / "dataflow.onnx"))
    design = generate(model, tmp_path / "rtl")
    nodes = {n.name: n for n in model.graph.node}
    ops = set()
    for lay in design.layers:
        module, params = layer_params(get_layer(nodes[lay["name"]]))
        assert module == lay["module"], lay["name"]
        differing = {k: (v, lay["params"].get(k)) for k, v in params.items() if lay["params"].get(k) != v}
        assert not differing, f"{lay['name']}: estimate assumes / codegen gives {differing}"
        ops.add(lay["op_type"])
    assert {"MVAU", "SlidingWindow", "MaxPool", "FIFO", "LabelSelect"} <= ops
