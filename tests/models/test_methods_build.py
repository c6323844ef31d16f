"""Each training method through ``qnnflow build``: train, export, compile, simulate, 0 mismatches.

The hardware decisions are compared with the dataflow graph's on every test image and with the QONNX
export's on boundary probes (the sim stage raises on any mismatch); here the records are checked too:
the method and its parameters in metrics.json, the export check, the schedule plot, and that the
deployed weights are the method's (ternary levels from ANA's staircase; bipolar signs of the latent
weights). The bitstream of each is in a slow test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qnnflow.cli import main

pytest.importorskip("torch")

CASES = {
    "ana": ("digits-cnn-wtat", ["--ana-noise", "uniform", "--ana-schedule", "linear"]),
    "stochastic-binary": ("digits-cnn-w1a2", []),
}


def _build(out: Path, method: str, epochs: int, until: str) -> dict:
    preset, extra = CASES[method]
    argv = ["build", "--preset", preset, "--method", method, "--epochs", str(epochs), "--out", str(out)]
    # no decision map: it is tested in tests/qnnflow/test_hwmap.py, and 16,384 frames more here
    assert main([*argv, *extra, "--until", until, "--hw-map", "0"]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.rtl
@pytest.mark.parametrize("method", list(CASES))
def test_method_builds_to_simulation_bit_exact(tmp_path, method):
    out = tmp_path / method
    m = _build(out, method, epochs=3, until="sim")
    assert m["method"] == method and m["fingerprint"]["method"] == method
    assert m["method_info"]["method"] == method
    assert m["export_check"]["argmax_mismatches"] == 0
    assert len(m["history"]) == 3 and (out / "train_curves.png").stat().st_size > 10_000
    sim = json.loads((out / "sim" / "results.json").read_text())
    assert sim["mismatches"] == 0 and sim["frames"] == m["split"]["test"]
    assert sim["hw_accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-9)
    import torch
    from qnnflow.models.train import load_checkpoint

    model = load_checkpoint(out / "model.pt")
    layers = [mod for mod in model.modules() if hasattr(mod, "quant_weight")]
    if method == "ana":
        assert m["ana"]["noise"] == "uniform" and m["method_info"]["groups"] == 3
        assert [h["s_forward"] for h in m["history"]][0] == [0.5, 0.5, 0.5]
        for layer in layers:  # unit scale: the quantized weights are the staircase of the raw weights
            w = layer.weight.detach()
            want = (w > 0.5).float() - (w < -0.5).float()
            assert torch.equal(layer.quant_weight().value.detach(), want)
    else:
        assert m["method_info"]["export_rule"].startswith("sign(w)")
        for layer in layers:
            w = layer.weight.detach()
            q = layer.quant_weight()
            assert torch.equal(q.value.detach(), torch.sign(w) * q.scale)


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.parametrize("method", list(CASES))
def test_method_builds_to_a_bitstream(tmp_path, method):
    out = tmp_path / method
    _build(out, method, epochs=30, until="bitstream")
    report = json.loads((out / "report.json").read_text())
    assert list(out.glob("impl/**/*.bit")) or list(out.glob("**/*.bit")), "no bitstream written"
    assert report  # the report of the implemented design
