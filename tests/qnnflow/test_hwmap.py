"""The hardware decision map (qnnflow/hwmap.py) on a linear classifier whose decisions are known in
closed form: every slice cell through the stitched RTL must be decided as the software model and a
direct numpy evaluation decide it, and a hardware fault must stop the map at a differing cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions, OutputMode
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import MismatchError
from tests.flows.helpers import Q, quant, tensor

pytestmark = pytest.mark.rtl

SCALE = 1 / 15  # the input grid: 4-bit unsigned, k / 15


def _linear(w: np.ndarray) -> ModelWrapper:
    """x (1, 6) -> Quant (4-bit unsigned, scale 1/15) -> MatMul(w) -> 3 logits."""
    graph = helper.make_graph(
        [quant("x", "xq", "s", "b", 0), helper.make_node("MatMul", ["xq", "w"], ["y"], name="MatMul_0")],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [tensor("s", SCALE), tensor("zero", 0.0), tensor("b", 4.0), tensor("w", w)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)])
    onnx.checker.check_model(model)
    return ModelWrapper(model)


@pytest.fixture(scope="module")
def linear_build(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("hwmap")
    w = np.random.default_rng(3).integers(-3, 4, size=(6, 3)).astype(np.float32)
    path = folder / "linear.onnx"
    _linear(w).save(str(path))
    x = (np.random.default_rng(4).integers(0, 16, size=(40, 6)) * SCALE).astype(np.float32)
    build = folder / "b"
    compile_model(path, build, inputs=x, opts=CompileOptions(target_cycles=64, output=OutputMode.LABELS), verbose=False)
    np.save(build / "test_inputs.npy", x)
    return build, w


def test_hardware_map_equals_the_software_map_and_the_closed_form(linear_build):
    from qnnflow.models.boundary_metrics import pca_slice

    from qnnflow.hwmap import hardware_map

    build, w = linear_build
    r = hardware_map(build, 24, stall_sample=3, log=lambda _m: None)
    assert r["cells"] == 24 * 24
    assert r["hw_vs_software"]["slice_flip_cells"] == 0 and r["hw_vs_software"]["slice_jaccard_distance"] == 0.0
    assert r["stalled_subsample"] == {**r["stalled_subsample"], "cells": 3, "mismatches": 0}
    assert r["hw_vs_float"] is None  # no float_model.pt in a build compiled from a file
    maps = np.load(build / "sim" / "boundary" / "map_labels.npz")
    # the closed form: the slice's points snapped to k / 15, then argmax of x W (ties to the lowest)
    points = pca_slice(np.load(build / "test_inputs.npy"), 24).points().reshape(-1, 6)
    snapped = np.clip(np.round(points / SCALE), 0, 15) * SCALE
    z = np.round(snapped / SCALE) @ w.astype(np.int64)  # integer logits, exact
    want = np.argmax(z == z.max(axis=1, keepdims=True), axis=1).reshape(24, 24)
    np.testing.assert_array_equal(maps["hardware"], want)
    np.testing.assert_array_equal(maps["software"], want)
    assert len(np.unique(want)) >= 2, "the slice should cross a decision boundary"
    assert json.loads((build / "sim" / "boundary" / "map.json").read_text())["grid"] == 24


def test_hardware_map_stops_at_the_first_cell_the_hardware_decides_differently(linear_build, tmp_path):
    import shutil

    from qnnflow.hwmap import hardware_map

    build = Path(shutil.copytree(linear_build[0], tmp_path / "b", symlinks=True))
    from qnnflow.sim.stitch import prepare_rtl

    prepare_rtl(build, log=lambda _m: None)
    mem = max((build / "rtl").glob("*_weights.mem"), key=lambda p: p.stat().st_size)
    words = mem.read_text().split()
    words[0] = format(int(words[0], 16) ^ 0x7, f"0{len(words[0])}x")  # three weight bits flipped
    mem.write_text("\n".join(words) + "\n")
    with pytest.raises(
        MismatchError,
        match=r"slice cells decided differently by the hardware and the software model; "
        r"first at cell \(row \d+, column \d+\)",
    ):
        hardware_map(build, 24, log=lambda _m: None)
    assert not (build / "sim" / "boundary" / "map.json").exists()
