"""The stable symmetric residual block (one weight tensor for the convolution and the transposed
convolution, symmetric Jacobian) against the standard block, and the residual presets compiled
bit-exact against QONNX execution of their export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from qnnflow.models.symmetric import (
    H_SYMMETRIC,
    StandardBlock,
    SymmetricBlock,
    _Layers,
    residual_blocks,
    unique_parameter_count,
)
from qnnflow.models.zoo import build_model, parse_preset, random_model


def _block(kind, preset: str, channels: int = 3, seed: int = 0):
    """A block of ``preset``'s layers with random BN statistics and bias, in eval mode."""
    torch.manual_seed(seed)
    block = kind(channels, _Layers(parse_preset(preset))).eval()
    for mod in block.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data, mod.bias.data = torch.randn(channels), torch.randn(channels)
            mod.running_mean.data, mod.running_var.data = torch.randn(channels), torch.rand(channels) + 0.5
    if isinstance(block, SymmetricBlock):
        block.bias2.data = torch.randn(1, channels, 1, 1)
    return block


@pytest.mark.parametrize("preset", ["digits-symcnn-w2a2", "digits-symcnn-w4a4", "digits-symcnn-float"])
def test_symmetric_block_has_one_weight_tensor(preset):
    block = _block(SymmetricBlock, preset, channels=4)
    assert block.conv_t.weight is block.conv.weight
    conv_weights = [p for n, p in block.named_parameters() if "weight" in n and p.dim() == 4]
    assert len(conv_weights) == 1  # named_parameters lists a shared Parameter once
    standard = _block(StandardBlock, preset.replace("symcnn", "rescnn"), channels=4)
    # counted independently of the helper: C * C * 3 * 3 against twice that
    assert unique_parameter_count(block) == 4 * 4 * 9
    assert unique_parameter_count(standard) == 2 * 4 * 4 * 9
    # the transposed convolution uses the same quantized tensor as the convolution
    x = torch.rand(2, 4, 5, 5)
    a = block.act(block.bn1(block.conv(x)))
    qk = block.conv.quant_weight().value if hasattr(block.conv, "quant_weight") else block.conv.weight
    assert torch.equal(block.conv_t(a), F.conv_transpose2d(a, qk, padding=1))
    assert torch.equal(block.conv(x), F.conv2d(x, qk, padding=1))


def test_training_step_moves_one_tensor():
    block = _block(SymmetricBlock, "digits-symcnn-w2a2").train()
    before = block.conv.weight.detach().clone()
    block(torch.rand(4, 3, 6, 6)).sum().backward()
    grad = block.conv.weight.grad
    assert grad is not None and block.conv_t.weight.grad is grad  # both uses accumulate into K
    with torch.no_grad():
        block.conv.weight -= 0.1 * grad
    assert torch.equal(block.conv_t.weight, block.conv.weight) and not torch.equal(block.conv.weight, before)


def _jacobian(block, x):
    n = x.numel()
    jac = torch.autograd.functional.jacobian(
        lambda v: block.pre_activation(v.reshape(x.shape)).reshape(-1), x.reshape(-1)
    )
    return jac.reshape(n, n).double()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_symmetric_jacobian_is_symmetric_and_standard_is_not(seed):
    """x -> x - h (K^T Omega K x + b2) has Jacobian I - h K^T Omega K (Omega = ReLU' * BN1 slope):
    symmetric; the standard block's I + BN2 K2 Omega K1 is not."""
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    sym = _block(SymmetricBlock, "digits-symcnn-float", seed=seed)
    sym.bn1.bias.data = sym.bn1.bias.abs() + 0.5  # most units active: Omega far from 0
    j = _jacobian(sym, x)
    eye = torch.eye(len(j), dtype=j.dtype)
    assert (j - eye).abs().max() > 1e-3  # the branch contributes
    assert torch.allclose(j, j.T, atol=1e-6)
    # against I - h K^T Omega K built from the convolution's own matrix K (not the transposed layer)
    k = torch.autograd.functional.jacobian(lambda v: sym.conv(v.reshape(x.shape)).reshape(-1), x.reshape(-1)).double()
    bn = sym.bn1
    pre = bn(sym.conv(x)).reshape(-1)
    slope = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()[:, None, None].expand(3, 4, 4).reshape(-1)
    omega = torch.diag((slope * (pre > 0)).double())
    assert torch.allclose(j, eye - H_SYMMETRIC * k.T @ omega @ k, atol=1e-6)
    std_block = _block(StandardBlock, "digits-rescnn-float", seed=seed)
    std_block.bn1.bias.data = std_block.bn1.bias.abs() + 0.5
    std = _jacobian(std_block, x)
    assert (std - std.T).abs().max() > 1e-2


def test_residual_presets_halve_the_block_weights():
    sym, std = build_model("digits-symcnn-w2a2"), build_model("digits-rescnn-w2a2")
    assert len(residual_blocks(sym)) == len(residual_blocks(std)) == 4
    for a, b in zip(residual_blocks(sym), residual_blocks(std), strict=True):
        assert 2 * unique_parameter_count(a) == unique_parameter_count(b)


@pytest.mark.parametrize("name", ["digits-symcnn-w2a1", "mnist-rescnn-w4at"])
def test_binary_and_ternary_streams_are_refused(name):
    with pytest.raises(ValueError, match=r"needs unsigned activations of 2..8 bits \(a2 .. a8\), not a"):
        parse_preset(name)


@pytest.mark.parametrize("preset", ["digits-symcnn-w2a2", "digits-symcnn-w4a4", "digits-rescnn-w2a2"])
def test_residual_scales_are_in_an_integer_ratio(preset):
    """h * Q_b and Q_x have scales in a power-of-two ratio, read off the model's own quantizers."""
    model = build_model(preset).eval()
    block = residual_blocks(model)[0]
    x = torch.rand(2, 8, 8, 8)
    qx = block.out_q.act_quant(x)[1] if hasattr(block.out_q, "act_quant") else None
    qb = block.branch_q.act_quant(torch.randn(2, 8, 8, 8))[1]
    ratio = float(qx) / (block.h * float(qb))
    assert ratio == 2.0 ** round(np.log2(ratio)) and ratio >= 0.5
    assert float(qx) == 2.0 ** round(np.log2(float(qx)))  # power-of-two scales: float32 products exact


@pytest.mark.parametrize("preset", ["digits-symcnn-w2a2", "digits-rescnn-w2a2"])
def test_residual_preset_compiles_bit_exact(tmp_path, preset):
    import onnx
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.models.export import export_qonnx

    model = random_model(preset, seed=2)
    for block in residual_blocks(model):
        if isinstance(block, SymmetricBlock):
            block.bias2.data = torch.randn_like(block.bias2) * 0.5
    path = export_qonnx(model, tmp_path / "m.onnx", (1, 8, 8))
    graph = onnx.load(str(path)).graph
    if "symcnn" in preset:
        # every ConvTranspose quantizes the same K, with the same quantizer, as the Conv before it (torch's
        # exporter writes the shared Parameter once for small tensors, as two equal initializers for larger ones)
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
        quants = {n.output[0]: n for n in graph.node if n.op_type == "Quant"}
        convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
        pairs = [(a, b) for a, b in zip(convs, convs[1:], strict=False) if b.op_type == "ConvTranspose"]
        assert len(pairs) == 4 and all(a.op_type == "Conv" for a, _ in pairs)
        for a, b in pairs:
            qa, qb = quants[a.input[1]], quants[b.input[1]]
            assert all(np.array_equal(inits[i], inits[j]) for i, j in zip(qa.input, qb.input, strict=True))
    x = (np.random.default_rng(0).integers(0, 17, size=(80, 1, 8, 8)) / 16).astype(np.float32)
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=20000), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    assert r.checks[-1]["integer_exact"]
    ops = [lay["op_type"] for lay in r.estimates["layers"]]
    assert ops.count("AddStreams") == 4 and ops.count("DuplicateStreams") == 4
    assert ops.count("MVAU") == 13  # stem, 8 in the blocks, growth, 2 pools (0/1 convolutions), classifier
    # the compiled weights of each transposed use are K flipped and channel-swapped (up to row signs)
    from qnnflow.flows.compile.shared_weights import shared_weight_summary
    from qonnx.core.modelwrapper import ModelWrapper

    shared = shared_weight_summary(ModelWrapper(str(tmp_path / "b" / "dataflow.onnx")))
    if "symcnn" in preset:
        assert len(shared["pairs"]) == 4
        assert [p["shape"] for p in shared["pairs"]] == [[8, 72], [8, 72], [16, 144], [16, 144]]
        assert shared["bits_saved_by_sharing"] == 2 * (8 * 72 + 16 * 144) * 2  # w2: 2 bits per weight
    else:
        assert shared["pairs"] == []  # K1 and K2 are independent tensors


def _float_copy(qmodel, preset: str):
    """The float network of ``preset`` holding ``qmodel``'s quantized weights and BatchNorm state."""
    fmodel = build_model(preset).eval()
    qmods = [m for m in qmodel.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear | torch.nn.BatchNorm2d)]
    fmods = [m for m in fmodel.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear | torch.nn.BatchNorm2d)]
    assert [tuple(m.weight.shape) for m in qmods] == [tuple(m.weight.shape) for m in fmods]
    with torch.no_grad():
        for q, f in zip(qmods, fmods, strict=True):
            if isinstance(q, torch.nn.BatchNorm2d):
                f.load_state_dict(q.state_dict())
            else:
                f.weight.copy_(q.quant_weight().value)  # shared in the float model too: copied once per use
        for q, f in zip(residual_blocks(qmodel), residual_blocks(fmodel), strict=True):
            if isinstance(q, SymmetricBlock):
                f.bias2.copy_(q.bias2)
    return fmodel


def test_full_precision_activations_are_the_float_network_with_the_same_weights():
    from qnnflow.models.pde_study import layer_errors, set_activation_quant
    from qnnflow.models.symmetric import stream_scale

    qmodel = random_model("digits-symcnn-w4a4", seed=3)
    fmodel = _float_copy(qmodel, "digits-symcnn-float")
    x = torch.as_tensor(np.random.default_rng(1).integers(0, 17, size=(40, 1, 8, 8)) / 16, dtype=torch.float32)
    with torch.no_grad():
        set_activation_quant(qmodel, False)
        assert torch.allclose(qmodel(x), fmodel(x), atol=1e-4)
        set_activation_quant(qmodel, True)
        assert not torch.allclose(qmodel(x), fmodel(x), atol=1e-2)
        # the first probe (after the stem): RMSE of the 4-bit stream quantizer on the float stem's output
        pre = torch.relu(fmodel[2](fmodel[1](x))).double()
        s = stream_scale(4)
        want = torch.sqrt(torch.mean((torch.clamp(torch.round(pre / s), 0, 15) * s - pre) ** 2))
    rows = layer_errors(qmodel, x.numpy())
    assert rows[0]["layer"] == "conv 0" and len(rows) == 8  # stem, 2 blocks, pool, growth, 2 blocks, pool
    assert rows[0]["rmse"] == pytest.approx(float(want), rel=1e-5)


def test_cli_refuses_bad_study_bits(capsys, tmp_path):
    from qnnflow.cli import main

    assert main(["analyze", "pde", "--digits-bits", "1", "4", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "--digits-bits: bit widths 2..8 (the residual stream's), not [1]" in err and "Traceback" not in err


@pytest.mark.rtl
def test_small_symmetric_network_simulates_bit_exact_under_stalls(tmp_path):
    """One symmetric block (4 channels, 6 x 6) through compile and the stitched RTL, with random
    input idles and output backpressure: every decision equals QONNX execution of the export."""
    from pathlib import Path

    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import _Builder
    from qnnflow.sim.stitch import simulate

    preset = parse_preset("digits-symcnn-w2a2")
    lay = _Layers(preset)
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        _Builder(preset, 4, 1 / 16).input_quant(), lay.conv(1, 4), torch.nn.BatchNorm2d(4), lay.stream_quant(),
        SymmetricBlock(4, lay), torch.nn.AvgPool2d(2), lay.stream_quant(), torch.nn.Flatten(),
        _Builder(preset, 4, 1 / 16).linear(36, 10),
    )  # fmt: skip
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data, mod.bias.data = torch.randn(4) + 1.5, torch.randn(4) + 1.0
            mod.running_mean.data, mod.running_var.data = torch.randn(4) * 0.5, torch.rand(4) + 0.5
    model[4].bias2.data = torch.randn(1, 4, 1, 1)
    path = export_qonnx(model.eval(), tmp_path / "sym.onnx", (1, 6, 6))
    x = (np.random.default_rng(4).integers(0, 16, size=(40, 1, 6, 6)) / 16).astype(np.float32)
    compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    want = decisions(run_qonnx(load_qonnx(path), x))
    assert len(np.unique(want)) > 1  # not a constant network
    sim = simulate(tmp_path / "b", inputs=x, stalls=True, seed=7, log=lambda _m: None)
    assert sim["mismatches"] == 0 and sim["stalls"]
    assert np.array_equal(decisions(np.load(Path(sim["results_dir"]) / "outputs.npy")), want)
