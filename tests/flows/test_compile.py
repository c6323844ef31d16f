"""The whole compiler: models to verified, folded dataflow graphs (library and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import STEPS, CompileOptions
from qnnflow.flows.ir.reference import decisions


def _mnist(mnist_dir, n, scaled):
    from qnnflow.models.datasets import load_idx_test

    images, labels = load_idx_test(mnist_dir)
    x = images[:n].reshape(-1, 1, 28, 28).astype(np.float32)
    return (x / 255.0 if scaled else x), labels[:n]


def _run_third_party(tmp_path, third_party_dir, mnist_dir, name, scaled, n, opts):
    x, y = _mnist(mnist_dir, n, scaled)
    r = compile_model(third_party_dir / name, tmp_path / "b", inputs=x, opts=opts, labels=y, verbose=False)
    for f in ("dataflow.onnx", "folding.json", "estimates.json", "estimates.txt", "verification.json"):
        assert (tmp_path / "b" / f).is_file()
    assert len(list((tmp_path / "b" / "steps").glob("*.onnx"))) == len(STEPS)
    ver = json.loads((tmp_path / "b" / "verification.json").read_text())
    assert all(s["decision_mismatches"] == 0 for s in ver["steps"])
    assert ver["steps"][-1]["integer_exact"]
    return r, ver


def test_finn_onnx_tfc_w1a2(tmp_path, third_party_dir, mnist_dir):
    r, ver = _run_third_party(
        tmp_path,
        third_party_dir,
        mnist_dir,
        "tfc_w1a2_finn_onnx.onnx",
        False,
        1000,
        CompileOptions(target_cycles=1000),
    )
    print(f"tfc_w1a2_finn_onnx: accuracy {r.accuracy:.4f} on 1000 MNIST test images")
    assert r.accuracy == pytest.approx(0.938, abs=1e-9)  # the published figure for these 1000 images
    assert r.estimates["ii_cycles"] <= 1000
    ops = {lay["op_type"] for lay in r.estimates["layers"]}
    assert {"MVAU", "Thresholding", "LabelSelect"} <= ops


def test_brevitas_qonnx_tfc_2w2a(tmp_path, third_party_dir, mnist_dir):
    r, ver = _run_third_party(
        tmp_path,
        third_party_dir,
        mnist_dir,
        "tfc_2w2a_qonnx.onnx",
        True,
        500,
        CompileOptions(target_fps=50_000, clock_mhz=50),
    )
    print(f"tfc_2w2a_qonnx: accuracy {r.accuracy:.4f} on 500 MNIST test images")
    assert r.accuracy == ver["reference_accuracy"]
    assert r.estimates["ii_cycles"] <= 1000


def _zoo_model(tmp_path, preset):
    """The preset with random weights and random BatchNorm statistics (negative scales too)."""
    pytest.importorskip("torch")
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model

    shape = parse_preset(preset).input_shape
    return export_qonnx(random_model(preset), tmp_path / f"{preset}.onnx", shape), shape


@pytest.mark.parametrize("preset", ["digits-cnn-w2a2", "digits-cnn-w1a1", "tfc-w1a1"])
def test_zoo_presets_random_weights(tmp_path, preset):
    path, shape = _zoo_model(tmp_path, preset)
    levels = 16 if preset.startswith("digits") else 255
    x = (np.random.default_rng(1).integers(0, levels + 1, size=(64, *shape)) / levels).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=5000), verbose=False)
    assert r.estimates["ii_cycles"] <= 5000
    assert r.checks[-1]["integer_exact"]


def test_cli_compile_and_its_errors(tmp_path, third_party_dir, mnist_dir, capsys):
    from qnnflow.cli import main

    x, y = _mnist(mnist_dir, 100, False)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model = str(third_party_dir / "tfc_w1a2_finn_onnx.onnx")
    out = tmp_path / "b"
    assert (
        main(
            [
                "compile",
                model,
                "--out",
                str(out),
                "--inputs",
                str(tmp_path / "x.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--target-cycles",
                "2000",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "[8/8] streams" in text and "accuracy of the dataflow graph" in text
    # the folding file can be edited and re-applied
    fold = json.loads((out / "folding.json").read_text())
    first = next(k for k, v in fold["layers"].items() if v["op_type"] == "MVAU")
    fold["layers"][first]["PE"] = 7
    (tmp_path / "f.json").write_text(json.dumps(fold))
    assert (
        main(
            [
                "compile",
                model,
                "--out",
                str(tmp_path / "c"),
                "--inputs",
                str(tmp_path / "x.npy"),
                "--folding",
                str(tmp_path / "f.json"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"{first} (MVAU): PE must divide MH (64), not 7" in err
    assert (
        main(["compile", model, "--out", str(tmp_path / "d"), "--target-fps", "1e9", "--clock-mhz", "50"])
        == 2
    )
    err = capsys.readouterr().err
    assert "target of 1e+09 frames/s at 50 MHz needs less than one cycle per frame" in err
    assert "nearest feasible target is 5e+07 frames/s" in err


def test_unquantized_weights_are_rejected(tmp_path):
    from onnx import TensorProto, helper, save

    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], [0.3] * 8)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="MatMul_0")]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[w],
    )
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"MatMul_0 \(MatMul\): its input is not quantized"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", verbose=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, scaled, published",
    [("tfc_w1a2_finn_onnx.onnx", False, None), ("tfc_2w2a_qonnx.onnx", True, 0.966)],
)
def test_third_party_full_mnist(tmp_path, third_party_dir, mnist_dir, name, scaled, published):
    r, ver = _run_third_party(tmp_path, third_party_dir, mnist_dir, name, scaled, 10_000, CompileOptions())
    print(
        f"{name}: accuracy {r.accuracy:.4f} on all 10,000 MNIST test images "
        f"(reference {ver['reference_accuracy']:.4f})"
    )
    assert r.accuracy == ver["reference_accuracy"]
    if published is not None:
        assert r.accuracy == pytest.approx(published, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cnv-w1a1", "cnv-w2a2", "tfc-w2a2"])
def test_large_presets_random_weights(tmp_path, preset):
    path, shape = _zoo_model(tmp_path, preset)
    x = (np.random.default_rng(1).integers(0, 256, size=(50, *shape)) / 255).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=20000), verbose=False)
    assert r.estimates["ii_cycles"] <= 20000
    assert decisions(np.zeros((1, 10))).shape == (1,)
