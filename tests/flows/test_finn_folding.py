"""FINN's folding-config layout (``qnnflow compile --folding``): detection, mapping by kind and order,
errors, and the II at FINN's published foldings.

The references are FINN's own figures (finn-examples, build/bnn-pynq/folding_config/ and the
BNN-PYNQ II: 64 cycles for TFC, 32,768 for CNV-W1A1), written out here rather than read from the
files the package ships, and the MVAU cycle count MH / PE * MW / SIMD * pixels worked out by hand
from the zoo's layer sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.finn_folding import resolve_folding
from qnnflow.flows.compile.folding import apply_folding
from qnnflow.flows.compile.steps import CompileOptions
from qnnflow.flows.ir.layers import get_layer, hw_nodes
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.cli import main

# finn-examples bnn-pynq tfc folding: (PE, SIMD) of MVAU 0..3
TFC_FINN = [(16, 49), (8, 8), (8, 8), (10, 8)]
# the zoo's TFC: (MW, MH) of its four fully connected layers
TFC_SIZES = [(784, 64), (64, 64), (64, 64), (64, 10)]


def _zoo(folder, preset, n):
    pytest.importorskip("torch")
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    shape = parse_preset(preset).input_shape
    path = export_qonnx(random_model(preset), folder / f"{preset}.onnx", shape)
    x = (np.random.default_rng(1).integers(0, 256, size=(n, *shape)) / 255).astype(np.float32)
    return path, x


@pytest.fixture(scope="module")
def tfc(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfc")
    return _zoo(folder, "tfc-w1a1", 16)


@pytest.fixture
def hw_graph(tfc, tmp_path):
    """The TFC's graph of hardware layers before folding (every PE = SIMD = 1)."""
    path, x = tfc
    compile_model(path, tmp_path / "c", inputs=x, opts=CompileOptions(target_cycles=10_000), verbose=False)
    return ModelWrapper(str(tmp_path / "c" / "steps" / "06_hw_layers.onnx"))


def _foldings(model, op_type):
    return [get_layer(n).folding() for n in hw_nodes(model) if n.op_type == op_type]


def test_shipped_tfc_folding_gives_finn_ii(tfc, tmp_path):
    path, x = tfc
    res = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(folding=resolve_folding("finn:tfc")))
    model = ModelWrapper(str(res.dataflow))
    assert _foldings(model, "MVAU") == [{"PE": pe, "SIMD": simd} for pe, simd in TFC_FINN]
    assert _foldings(model, "LabelSelect") == [{"PE": 1}]
    by_hand = max(mh // pe * (mw // simd) for (mw, mh), (pe, simd) in zip(TFC_SIZES, TFC_FINN, strict=True))
    assert by_hand == 64 and res.estimates["ii_cycles"] == 64  # BNN-PYNQ's TFC: 64 cycles per frame
    summary = res.finn_folding
    assert [a["finn_node"] for a in summary["applied"]] == [
        *(f"MatrixVectorActivation_{i}" for i in range(4)),
        "LabelSelect_Batch_0",
    ]
    # FINN binarizes TFC's input in a Thresholding layer; qnnflow's first MVAU takes the 8-bit pixels
    assert [n["finn_node"] for n in summary["no_counterpart"]] == ["Thresholding_Batch_0"]
    assert json.loads((tmp_path / "b" / "finn_folding.json").read_text()) == summary
    assert res.checks[-1]["decision_mismatches"] == 0


def test_newer_finn_names_and_ignored_keys_are_reported(tfc, hw_graph, tmp_path, capsys):
    cfg = {
        "Defaults": {},
        "Thresholding_rtl_0": {"PE": 49, "runtime_writeable_weights": 0},
        **{
            f"MVAU_hls_{i}": {"PE": pe, "SIMD": simd, "ram_style": "block", "mem_mode": "internal_decoupled"}
            for i, (pe, simd) in enumerate(TFC_FINN)
        },
        "StreamingDataWidthConverter_rtl_0": {},
        "LabelSelect_hls_0": {"PE": 1, "resType": "lut"},
    }
    model, summary = _apply(hw_graph, cfg)
    assert _foldings(model, "MVAU") == [{"PE": pe, "SIMD": simd} for pe, simd in TFC_FINN]
    assert summary["ignored_keys"] == {
        "runtime_writeable_weights": ["Thresholding_rtl_0"],
        "ram_style": [f"MVAU_hls_{i}" for i in range(4)],
        "mem_mode": [f"MVAU_hls_{i}" for i in range(4)],
        "resType": ["LabelSelect_hls_0"],
    }
    assert {n["finn_node"] for n in summary["no_counterpart"]} == {
        "Thresholding_rtl_0",
        "StreamingDataWidthConverter_rtl_0",
    }
    # the compile log says the same
    path = tmp_path / "finn.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "o"
    np.save(tmp_path / "x.npy", tfc[1][:2])
    args = ["compile", str(tfc[0]), "--out", str(out), "--inputs", str(tmp_path / "x.npy"), "--folding", str(path)]
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "MVAU_hls_0 -> Gemm_0 (MVAU): PE 16, SIMD 49" in log
    assert "ignored (implementation-only in qnnflow): mem_mode (4 entries), ram_style (4 entries)" in log
    assert "II at this folding: 64 cycles per frame" in log


def _apply(model, cfg):
    from qnnflow.flows.compile.finn_folding import pop_note

    model = apply_folding(model, cfg)
    return model, pop_note(model)


def test_layers_the_config_does_not_fold_are_folded_to_its_ii(hw_graph):
    model, summary = _apply(hw_graph, {"MatrixVectorActivation_0": {"PE": 16, "SIMD": 49}})
    # MVAU 0 alone sets the II (64); the others take their cheapest folding within it
    assert summary["ii_cycles"] == 64
    folded = {q["layer"]: q for q in summary["qnnflow_folded"]}
    assert set(folded) == {"Gemm_1", "Gemm_2", "Gemm_3", "LabelSelect_0"}
    assert all(q["cycles"] <= 64 for q in folded.values())
    assert folded["Gemm_1"]["set"]["PE"] * folded["Gemm_1"]["set"]["SIMD"] == 64 * 64 // 64


def test_defaults_apply_to_every_listed_kind(hw_graph):
    cfg = {"Defaults": {"PE": [2, "all"], "ram_style": ["block", "all"]}, "MVAU_hls_0": {"PE": 16, "SIMD": 49}}
    model, summary = _apply(hw_graph, cfg)
    assert [f["PE"] for f in _foldings(model, "MVAU")] == [16, 2, 2, 2]
    assert _foldings(model, "LabelSelect") == [{"PE": 2}]
    assert summary["ignored_keys"] == {"ram_style": ["Defaults"]}


def test_an_entry_keeps_what_defaults_set(hw_graph):
    # Defaults for the listed op types only; an entry's missing key keeps the Defaults value
    cfg = {"Defaults": {"SIMD": [8, ["MVAU_hls"]]}, "MVAU_hls_0": {"PE": 16}, "LabelSelect_hls_0": {"PE": 5}}
    model, _ = _apply(hw_graph, cfg)
    assert _foldings(model, "MVAU") == [{"PE": 16, "SIMD": 8}] + [{"PE": 1, "SIMD": 8}] * 3
    assert _foldings(model, "LabelSelect") == [{"PE": 5}]


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"MVAU_hls_4": {"PE": 1}}, "MVAU_hls_4 is MVAU number 5 in FINN's stream, but the graph has 4 MVAU "
         "layers (Gemm_0, Gemm_1, Gemm_2, Gemm_3)"),
        ({"MatrixVectorActivation_1": {"PE": 6}}, "FINN node MatrixVectorActivation_1: Gemm_1 (MVAU): PE must "
         "divide MH (64), not 6"),
        ({"Frobnicate_0": {"PE": 1}}, "FINN node Frobnicate_0: op type Frobnicate has no qnnflow counterpart"),
        ({"MVAU_0": {"PE": "16"}}, "FINN node MVAU_0: PE must be a positive integer, not '16'"),
        ({"MVAU_0": {"PE": 0}}, "FINN node MVAU_0: PE must be a positive integer, not 0"),
        ({"LabelSelect_Batch_0": {"SIMD": 2}}, "FINN node LabelSelect_Batch_0 sets SIMD, but its counterpart "
         "LabelSelect_0 (LabelSelect) has only ['PE']"),
        ({"MVAU_hls_0": {"PE": 1}, "MVAU_rtl_0": {"PE": 1}}, "MVAU nodes named in 2 ways (MVAU_hls_*, MVAU_rtl_*)"),
        ({"MVAU_hls_0": 16}, "expected qnnflow's folding.json"),
        ({"mvau zero": {"PE": 1}}, "'mvau zero' is not a FINN node name"),
        ({"Defaults": {"PE": 2}}, 'Defaults PE: expected [positive integer, "all" | [op types]], not 2'),
        ({"Defaults": {"PE": ["2", "all"]}}, "Defaults PE: expected [positive integer"),
        ({}, "found an empty object"),
    ],
)  # fmt: skip
def test_bad_config_is_a_clear_error(hw_graph, cfg, message):
    with pytest.raises(ValueError) as err:
        apply_folding(hw_graph, cfg)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_files_on_the_command_line_are_one_line(tfc, tmp_path, capsys):
    path, x = tfc
    np.save(tmp_path / "x.npy", x[:2])
    bad = tmp_path / "bad.json"
    for text, message in [
        ('{"MVAU_hls_0": {"PE": 16,}', "bad.json: not valid JSON"),
        ("[1, 2]", "expected qnnflow's folding.json"),
        ('{"MVAU_hls_0": {"PE": 5}}', "PE must divide MH (64), not 5"),
    ]:
        bad.write_text(text)
        args = ["compile", str(path), "--out", str(tmp_path / "o"), "--inputs", str(tmp_path / "x.npy")]
        assert main([*args, "--folding", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert main([*args, "--folding", "finn:lfc"]) == 2
    err = capsys.readouterr().err
    assert "no such FINN folding; shipped: finn:tfc, finn:cnv-w1a1, finn:cnv-w2a2" in err


# the zoo's CNV: (MW, MH, output pixels) of its six convolutions and three fully connected layers
CNV_SIZES = [(27, 64, 900), (576, 64, 784), (576, 128, 144), (1152, 128, 100), (1152, 256, 9), (2304, 256, 1),
             (256, 512, 1), (512, 512, 1), (512, 10, 1)]  # fmt: skip
CNV_FINN = {
    "cnv-w1a1": [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1)],
    "cnv-w2a2": [(8, 3), (16, 16), (8, 16), (8, 16), (4, 8), (1, 8), (1, 2), (2, 2), (5, 1)],
}


@pytest.mark.parametrize(
    "preset, finn_ii",
    [("cnv-w1a1", 32_768), pytest.param("cnv-w2a2", None, marks=pytest.mark.slow)],
)
def test_shipped_cnv_folding_ii(tmp_path, preset, finn_ii):
    path, x = _zoo(tmp_path, preset, 4)
    res = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(folding=resolve_folding(f"finn:{preset}")))
    folds = CNV_FINN[preset]
    assert _foldings(ModelWrapper(str(res.dataflow)), "MVAU") == [{"PE": p, "SIMD": s} for p, s in folds]
    by_hand = max(mh // p * (mw // s) * px for (mw, mh, px), (p, s) in zip(CNV_SIZES, folds, strict=True))
    if finn_ii is not None:
        assert by_hand == finn_ii  # BNN-PYNQ's CNV-W1A1: 32,768 cycles per frame
    assert res.estimates["ii_cycles"] == by_hand
    assert res.checks[-1]["decision_mismatches"] == 0
