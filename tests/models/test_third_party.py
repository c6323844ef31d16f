"""Models trained elsewhere load and run under QONNX execution with their published accuracy."""

import numpy as np
import pytest
from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
from qnnflow.models.datasets import load_idx_test

N_IMAGES = 1000  # the first 1000 MNIST test images; tests/data/README.md quotes both here


@pytest.mark.parametrize(
    "filename, input_scale, expected",
    [
        ("tfc_2w2a_qonnx.onnx", 1 / 255, 0.966),  # Brevitas QONNX export; float pixel / 255
        ("tfc_w1a2_finn_onnx.onnx", 1.0, 0.938),  # FINN-ONNX with MultiThreshold; raw pixels
    ],
)
def test_third_party_model_accuracy(third_party_dir, mnist_dir, filename, input_scale, expected):
    images, labels = load_idx_test(mnist_dir)
    x = (images[:N_IMAGES].astype(np.float32) * np.float32(input_scale))[:, None]
    model = load_qonnx(third_party_dir / filename)
    acc = float((decisions(run_qonnx(model, x, batch_size=200)) == labels[:N_IMAGES]).mean())
    assert acc == pytest.approx(expected, abs=0.0015), acc
