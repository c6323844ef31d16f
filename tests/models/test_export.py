"""Rung 1 -> 2 of the verification ladder: QONNX execution of the export against PyTorch."""

import json

import numpy as np
import pytest
from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
from qnnflow.models.datasets import load_dataset
from qnnflow.models.export import check_export, export_qonnx
from qnnflow.models.train import load_checkpoint, train_and_export, train_model
from qnnflow.models.zoo import logits, parse_preset

from qnnflow.config import BuildConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module", params=["digits-cnn-w1a1", "digits-cnn-wta2"])
def exported(request, digits, tmp_path_factory):
    """A briefly trained model (accuracy does not matter here) and its QONNX export."""
    result = train_model(parse_preset(request.param), digits, epochs=1, log=None)
    path = export_qonnx(result.model, tmp_path_factory.mktemp("export") / "m.onnx", digits.input_shape)
    return result.model, path


def test_export_matches_pytorch_on_whole_test_set(digits, exported):
    model, path = exported
    ref = logits(model, digits.x_test).numpy()
    got = run_qonnx(load_qonnx(path), digits.x_test, batch_size=128).reshape(ref.shape)
    # ties (frequent at low widths) go to the lowest index in both, whatever the float rounding
    assert np.array_equal(decisions(ref), decisions(got))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    check = check_export(model, path, digits.x_test)
    assert check.ok and check.samples == 360


def test_export_check_catches_a_wrong_model(digits, exported):
    _, path = exported
    other = train_model(parse_preset("digits-cnn-w2a2"), digits, epochs=1, seed=1, log=None)
    check = check_export(other.model, path, digits.x_test)
    assert not check.ok and check.argmax_mismatches > 0


def test_export_check_catches_a_small_difference_that_keeps_the_decisions(digits, exported):
    """Logits of one class off by ten times the tolerance: few decisions change, and the float64
    comparison fails on inputs that no activation within the export's constant noise of a rounding
    boundary explains."""
    import torch

    model, path = exported
    tol = 1e-4 * max(1.0, float(np.abs(logits(model, digits.x_test).numpy()).max()))

    class Shifted(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner
            self.register_buffer("shift", torch.zeros(10))
            self.shift[3] = 10 * tol

        def forward(self, x):
            return self.inner(x) + self.shift

    check = check_export(Shifted(model), path, digits.x_test)
    assert not check.ok and check.precision == "float64"
    assert check.max_abs_logit_diff > check.logit_tolerance
    assert check.constant_noise_inputs < check.samples // 2


def test_exported_graph_quantizes_its_input(exported):
    model = load_qonnx(exported[1])
    quant_of_input = [n for n in model.graph.node if n.op_type == "Quant" and n.input[0] == model.graph.input[0].name]
    assert len(quant_of_input) == 1
    scale, zero, bits = (float(model.get_initializer(i)) for i in quant_of_input[0].input[1:4])
    assert (scale, zero, bits) == (1 / 16, 0.0, 5.0)


def test_train_stage_writes_build_folder_and_reuses_it(tmp_path, capsys):
    cfg = BuildConfig(name="t", preset="digits-cnn-w2a2", epochs=1)
    out = tmp_path / "t"
    metrics = train_and_export(cfg, out)
    for f in ("model.pt", "float_model.pt", "model.onnx", "metrics.json", "test_inputs.npy",
              "test_labels.npy", "config.toml"):
        assert (out / f).is_file(), f
    assert metrics["export_check"]["ok"] and metrics["export_check"]["samples"] == 360
    saved = json.loads((out / "metrics.json").read_text())
    # the saved accuracy is what the reloaded checkpoint and the exported graph both give
    x, y = np.load(out / "test_inputs.npy"), np.load(out / "test_labels.npy")
    model = load_checkpoint(out / "model.pt")
    assert saved["test_accuracy"] == pytest.approx(float((decisions(logits(model, x).numpy()) == y).mean()))
    onnx_acc = float((decisions(run_qonnx(load_qonnx(out / "model.onnx"), x)) == y).mean())
    assert onnx_acc == pytest.approx(saved["test_accuracy"])
    assert BuildConfig.load(out / "config.toml") == cfg
    capsys.readouterr()
    again = train_and_export(cfg, out)
    assert "up to date" in capsys.readouterr().out and again == saved


def test_load_qonnx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \x00\xff")
    with pytest.raises(ValueError, match=r"bad.onnx: not a readable ONNX model"):
        load_qonnx(bad)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_qonnx(tmp_path / "missing.onnx")


def test_decisions_break_ties_to_the_lowest_index():
    scale = np.float32(0.2)
    acc = np.array([[3, 7, 7, -1], [5, 5, 5, 5], [0, 1, 2, 3]])
    exact = acc * scale
    jitter = exact + np.array([[0, 2e-6, -2e-6, 0]] * 3, dtype=np.float32)  # float rounding noise
    assert decisions(exact).tolist() == decisions(jitter).tolist() == [1, 0, 3]
    assert decisions(np.array([[4.0], [9.0]])).tolist() == [4, 9]  # a graph ending in TopK
