"""TV smoothing in training (models/tv.py): the forward pass is the exact integer step, the backward
pass the float step's gradient; bad configurations are refused with a message; a CNN with TV steps
exports to QONNX and compiles to hardware layers that compute what QONNX execution computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qnnflow.flows.ir.kernels_tv import TVParams, tv_step
from qnnflow.models.tv import TVConfig, TVSmooth, float_tv_step, tv_modules
from qnnflow.models.zoo import build_model

from qnnflow.config import BuildConfig


def _quant_relu(bits: int):
    from brevitas.nn import QuantReLU

    return QuantReLU(bit_width=bits).eval()


@pytest.mark.parametrize("bits, iters", [(2, 1), (3, 2), (4, 3)])
def test_forward_is_the_integer_step_on_the_codes(bits, iters):
    torch.manual_seed(bits)
    act = _quant_relu(bits)
    tv = TVSmooth(act, bits, TVConfig(iters, 0.7)).eval()
    with torch.no_grad():
        y = act(torch.randn(3, 4, 6, 5) * 3)
        got = tv(y)
    scale = float(act.act_quant.scale())
    codes = np.moveaxis(np.round(y.numpy() / scale).astype(np.int64), 1, -1)
    for _ in range(iters):
        codes = tv_step(codes, 0, 2**bits - 1, TVParams.from_gamma(0.7))
    want = torch.tensor(np.moveaxis(codes, -1, 1), dtype=torch.float32) * torch.tensor(scale, dtype=torch.float32)
    assert torch.equal(got, want)


def _matrix_float_tv(x: np.ndarray, gamma2: float, eps: float) -> np.ndarray:
    """The float step on one (H, W) map with explicit forward-difference matrices (Neumann last row)."""

    def d(n):
        m = np.zeros((n, n))
        for i in range(n - 1):
            m[i, i], m[i, i + 1] = -1.0, 1.0
        return m

    dh, dw = d(x.shape[0]), d(x.shape[1])
    a, b = x @ dw.T, dh @ x
    r = np.sqrt(a * a + b * b + eps)
    return x - gamma2 * ((a / r) @ dw + dh.T @ (b / r))


def test_backward_is_the_float_steps_gradient():
    act = _quant_relu(2)
    tv = TVSmooth(act, 2, TVConfig(1, 0.5))
    scale = tv.scale()
    p = TVParams.from_gamma(0.5)
    z = torch.randint(0, 4, (1, 1, 4, 5)).double()
    # the float step itself against the matrix form
    assert np.allclose(
        float_tv_step(z, p.gamma2, p.eps)[0, 0].numpy(), _matrix_float_tv(z[0, 0].numpy(), p.gamma2, p.eps)
    )
    y = (z * scale).requires_grad_(True)
    w = torch.randn(1, 1, 4, 5, dtype=torch.float64)
    (tv(y) * w).sum().backward()
    # central differences of sum(w * scale * S(y / scale)) with the matrix form
    fd = np.zeros((4, 5))
    for i in range(4):
        for j in range(5):
            e = np.zeros((4, 5))
            e[i, j] = 1e-6
            f = [
                np.sum(
                    w[0, 0].numpy()
                    * scale
                    * _matrix_float_tv((y[0, 0].detach().numpy() + s * e) / scale, p.gamma2, p.eps)
                )
                for s in (1, -1)
            ]
            fd[i, j] = (f[0] - f[1]) / 2e-6
    assert np.allclose(y.grad[0, 0].numpy(), fd, rtol=1e-5, atol=1e-6)


def test_bad_configurations_say_what_is_expected():
    with pytest.raises(
        ValueError, match=r"TV smoothing needs an unsigned 2- to 4-bit activation .* found an unsigned 8-bit one"
    ):
        build_model("digits-cnn-w8a8", tv=TVConfig(1))
    with pytest.raises(ValueError, match=r"found a signed 1-bit one"):
        build_model("digits-cnn-w1a1", tv=TVConfig(1))
    with pytest.raises(ValueError, match=r"needs a CNN preset \(digits-cnn, cnv, digits-symcnn, .*\), not tfc"):
        build_model("tfc-w2a2", tv=TVConfig(1))
    with pytest.raises(ValueError, match=r"TV iterations must be in 0..3, not 4"):
        TVConfig(4)
    with pytest.raises(ValueError, match=r"tv_iters must be an integer in 0..3, not 5"):
        BuildConfig(tv_iters=5)
    assert not tv_modules(build_model("digits-cnn-w8a8", tv=TVConfig(0)))  # off: nothing to check


def test_cli_refuses_tv_on_an_8bit_preset_without_a_traceback(tmp_path, capsys):
    from qnnflow.cli import main

    code = main(["train", "--preset", "digits-cnn-w8a8", "--tv-iters", "1", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code != 0 and "TV smoothing needs an unsigned 2- to 4-bit activation" in err and "Traceback" not in err


def _random_tv_model(preset: str, tv: TVConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(preset, tv=tv)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data, mod.bias.data = torch.randn(c), torch.randn(c)
            mod.running_mean.data, mod.running_var.data = torch.randn(c), torch.rand(c) + 0.5
    return model.eval()


def test_tv_model_compiles_exactly_to_tv_layers(tmp_path):
    """Export -> compile: every step verified against QONNX execution, and the hardware TV layers'
    outputs equal the exported TVSmooth nodes' codes on every input."""
    from qnnflow.flows.compile.driver import CompileOptions, compile_model
    from qnnflow.flows.ir.execute import Executor
    from qnnflow.flows.ir.reference import load_qonnx, run_qonnx
    from qnnflow.models.export import check_export, export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper

    model = _random_tv_model("digits-cnn-w2a2", TVConfig(2, 0.75))
    path = export_qonnx(model, tmp_path / "m.onnx", (1, 8, 8))
    x = (np.random.default_rng(1).integers(0, 32, size=(40, 1, 8, 8)) / 16).astype(np.float32)
    assert check_export(model, path, x).ok
    ref = load_qonnx(path)
    tv_nodes = [n for n in ref.graph.node if n.op_type == "TVSmooth"]
    assert len(tv_nodes) == 4  # two steps after each of the two convolutions
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=20000), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks) and r.checks[-1]["integer_exact"]
    df = ModelWrapper(str(r.dataflow))
    layers = [n for n in df.graph.node if n.op_type == "TVSmooth"]
    assert len(layers) == 4
    scales = {n.output[0]: next(a.f for a in n.attribute if a.name == "scale") for n in tv_nodes}
    _, kept = run_qonnx(ref, x, keep=set(scales))
    ctx = Executor(df).run(x, keep=True)
    # the dataflow graph's TV layers in order against the export's TVSmooth nodes in order
    for node, layer in zip(tv_nodes, layers, strict=True):
        want = np.moveaxis(kept[node.output[0]] / scales[node.output[0]], 1, -1)
        assert np.array_equal(ctx[layer.output[0]], np.round(want))


def test_tv_node_whose_scale_is_not_its_quantizers_is_refused(tmp_path):
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.models.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper

    path = export_qonnx(_random_tv_model("digits-cnn-w2a2", TVConfig(1)), tmp_path / "m.onnx", (1, 8, 8))
    m = ModelWrapper(str(path))
    node = next(n for n in m.graph.node if n.op_type == "TVSmooth")
    attr = next(a for a in node.attribute if a.name == "scale")
    attr.f *= 3.0
    m.save(str(tmp_path / "bad.onnx"))
    x = (np.random.default_rng(2).integers(0, 32, size=(8, 1, 8, 8)) / 16).astype(np.float32)
    with pytest.raises(ValueError, match=r"TVSmooth.*scale .* times integer codes"):
        compile_model(tmp_path / "bad.onnx", tmp_path / "b", inputs=x, verbose=False)


def test_outlier_statistics_against_scipy_and_their_hook_points():
    from qnnflow.models.tv_measure import feature_stats, outliers
    from scipy import stats

    v = np.random.default_rng(0).standard_t(4, size=20000)
    s = feature_stats(v)
    assert np.isclose(s["kurtosis"], stats.kurtosis(v, fisher=True, bias=True))
    assert s["max_abs"] == np.abs(v).max()
    assert s["frac_3sigma"] == np.mean(np.abs(v - v.mean()) > 3 * v.std())
    model = _random_tv_model("digits-cnn-w2a2", TVConfig(1))
    x = (np.random.default_rng(1).integers(0, 17, size=(30, 1, 8, 8)) / 16).astype(np.float32)
    r = outliers(model, x, np.zeros(30, dtype=np.int64))
    assert [lay["layer"] for lay in r["layers"]] == [1, 2]
    # after the activation (and TV): at most the activation's top level, 3 * scale
    top = 3 * max(m.scale() for m in tv_modules(model))
    assert all(lay["post"]["max_abs"] <= top + 1e-6 for lay in r["layers"])


def test_tv_with_the_activation_quantizer_off_is_the_float_step_at_the_last_scale():
    """qnnflow analyze pde switches the activation quantizers off for its full-precision reference:
    the TV module then applies the float step, in the code units of the scale it last ran with."""
    import torch
    from qnnflow.models.pde_study import set_activation_quant
    from qnnflow.models.symmetric import residual_blocks
    from qnnflow.models.tv import TVConfig, float_tv_step
    from qnnflow.models.zoo import random_model

    model = random_model("digits-symcnn-w2a2", tv=TVConfig(2, 0.5))
    block = residual_blocks(model)[0]
    x = torch.rand(3, 8, 8, 8) * 3
    with torch.no_grad():
        block(x)  # the quantizer on: the module records its scale
        s = float(block.act.act_quant.scale())
        set_activation_quant(model, False)
        y = torch.relu(block.bn1(block.conv(x)))
        got = block.tv(y)
        want = float_tv_step(float_tv_step(y / s, 0.25, 0.25), 0.25, 0.25) * s
    torch.testing.assert_close(got, want)
    assert not torch.equal(got, y)  # the step did something
