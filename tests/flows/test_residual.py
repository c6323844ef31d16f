"""Residual blocks: Brevitas models whose branches meet in an Add, compiled bit-exact against QONNX
execution of the export (checked after every step by ``compile_model``)."""

from __future__ import annotations

import numpy as np
import pytest
from qnnflow.flows.compile.driver import compile_model
from qnnflow.flows.compile.steps import CompileOptions

torch = pytest.importorskip("torch")
nn = torch.nn


def _input_quant():
    from brevitas.core.scaling import ScalingImplType
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Uint8ActPerTensorFloat

    return QuantIdentity(
        act_quant=Uint8ActPerTensorFloat, bit_width=4, scaling_impl_type=ScalingImplType.CONST,
        max_val=15 / 16, min_val=0.0,
    )  # fmt: skip


def _const_quant(bits: int, scale: float, signed: bool = True):
    """A QuantIdentity with a fixed scale (levels are integers times ``scale``)."""
    from brevitas.core.scaling import ScalingImplType
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    top = (2 ** (bits - 1) if signed else 2**bits) - 1
    return QuantIdentity(
        act_quant=Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat, bit_width=bits,
        scaling_impl_type=ScalingImplType.CONST, max_val=top * scale,
        **({"min_val": -(top + 1) * scale} if signed else {"min_val": 0.0}),
    )  # fmt: skip


def _wq(bits: int = 2) -> dict:
    from brevitas.quant import Int8WeightPerTensorFloat

    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits, "bias": False}


class ResidualMLP(nn.Module):
    """x -> fc1 -> BN -> q ; q -> fc2 -> BN -> q' ; relu-quant(q + q') -> fc3 (the logits).
    ``skip_q`` / ``branch_q`` quantize the two branches (the same module for a shared scale)."""

    def __init__(self, skip_q, branch_q, width: int = 16):
        super().__init__()
        from brevitas.nn import QuantLinear, QuantReLU

        self.inp = _input_quant()
        self.fc1, self.bn1, self.skip_q = QuantLinear(16, width, **_wq()), nn.BatchNorm1d(width), skip_q
        self.fc2, self.bn2, self.branch_q = QuantLinear(width, width, **_wq()), nn.BatchNorm1d(width), branch_q
        self.act = QuantReLU(bit_width=3)
        self.fc3 = QuantLinear(width, 10, **_wq())

    def forward(self, x):
        y = self.skip_q(self.bn1(self.fc1(self.inp(x).flatten(1))))
        z = self.branch_q(self.bn2(self.fc2(y)))
        return self.fc3(self.act(y + z))


class ResidualCNN(nn.Module):
    """A conv residual block on 6x6 images: conv -> q ; q -> conv(pad 1) -> q ; relu-quant(sum);
    maxpool; linear."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantLinear, QuantReLU

        self.inp = _input_quant()
        self.q = _const_quant(3, 0.25)
        self.c1, self.bn1 = QuantConv2d(1, 8, 3, padding=1, **_wq()), nn.BatchNorm2d(8)
        self.c2, self.bn2 = QuantConv2d(8, 8, 3, padding=1, **_wq()), nn.BatchNorm2d(8)
        self.act = QuantReLU(bit_width=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = QuantLinear(8 * 3 * 3, 10, **_wq())

    def forward(self, x):
        y = self.q(self.bn1(self.c1(self.inp(x))))
        z = self.q(self.bn2(self.c2(y)))
        return self.fc(self.pool(self.act(y + z)).flatten(1))


def _randomize_bn(model) -> None:
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data, mod.bias.data = torch.randn(c), torch.randn(c) * 0.5
            mod.running_mean.data, mod.running_var.data = torch.randn(c), torch.rand(c) * 2 + 0.5


def _export(model, path, shape):
    from qnnflow.models.export import export_qonnx

    torch.manual_seed(0)
    _randomize_bn(model)
    return export_qonnx(model, path, shape)


def _inputs(shape, n=200):
    return (np.random.default_rng(3).integers(0, 16, size=(n, *shape)) / 16).astype(np.float32)


def _op_types(path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("shared", [True, False], ids=["shared-quantizer", "scales-2-to-1"])
def test_residual_mlp_bit_exact(tmp_path, shared):
    torch.manual_seed(0)
    if shared:  # one QuantIdentity (a learned-style float scale) on both branches
        from brevitas.nn import QuantIdentity

        q = QuantIdentity(bit_width=4)
        model = ResidualMLP(q, q)
    else:  # fixed scales 0.5 and 0.25: the skip branch is multiplied by 2 in integers
        model = ResidualMLP(_const_quant(3, 0.5), _const_quant(4, 0.25))
    path = _export(model, tmp_path / "res.onnx", (1, 4, 4))
    assert "Add" in _op_types(path)
    x = _inputs((1, 4, 4))
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=64), verbose=False)
    assert all(c["decision_mismatches"] == 0 for c in r.checks)
    assert r.checks[-1]["integer_exact"]
    ops = {lay["op_type"] for lay in r.estimates["layers"]}
    assert {"DuplicateStreams", "AddStreams", "MVAU", "LabelSelect"} <= ops
    assert r.estimates["ii_cycles"] <= 64


def test_residual_cnn_bit_exact(tmp_path):
    torch.manual_seed(1)
    path = _export(ResidualCNN(), tmp_path / "rescnn.onnx", (1, 6, 6))
    x = _inputs((1, 6, 6))
    r = compile_model(path, tmp_path / "b", inputs=x, opts=CompileOptions(target_cycles=2000), verbose=False)
    assert r.checks[-1]["integer_exact"]
    ops = [lay["op_type"] for lay in r.estimates["layers"]]
    assert ops.count("DuplicateStreams") == 1 and ops.count("AddStreams") == 1
    assert ops.count("SlidingWindow") == 2


def test_residual_scales_without_integer_ratio_are_rejected(tmp_path):
    torch.manual_seed(0)
    model = ResidualMLP(_const_quant(4, 0.25), _const_quant(4, 0.1))
    path = _export(model, tmp_path / "res.onnx", (1, 4, 4))
    with pytest.raises(ValueError, match=r"\(Add\): the scales of the two inputs of a residual add must be in one "
                       r"integer ratio for an integer-exact add, found \[0\.25\] and \[0\.1") as err:  # fmt: skip
        compile_model(path, tmp_path / "b", inputs=_inputs((1, 4, 4), 8), verbose=False)
    assert "shared quantizer" in str(err.value)


class DeepResidualMLP(nn.Module):
    """``blocks`` residual blocks on one shared quantizer: q -> fc -> BN -> q, summed with q."""

    def __init__(self, blocks: int, width: int = 8):
        super().__init__()
        from brevitas.nn import QuantIdentity, QuantLinear

        self.inp = _input_quant()
        self.fc0 = QuantLinear(16, width, **_wq())
        self.q = QuantIdentity(bit_width=4)
        self.fcs = nn.ModuleList(QuantLinear(width, width, **_wq()) for _ in range(blocks))
        self.bns = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(blocks))
        self.out = QuantLinear(width, 10, **_wq())

    def forward(self, x):
        y = self.q(self.fc0(self.inp(x).flatten(1)))
        for fc, bn in zip(self.fcs, self.bns, strict=True):
            y = self.q(y + self.q(bn(fc(y))))
        return self.out(y)


@pytest.mark.slow  # about 20 s on 2 idle cores
def test_sixteen_residual_blocks_compile(tmp_path):
    """More than 100 streams: the passes rewrite every match in one round, so the fixed points are
    reached however many blocks there are."""
    torch.manual_seed(0)
    path = _export(DeepResidualMLP(16), tmp_path / "deep.onnx", (1, 4, 4))
    x = _inputs((1, 4, 4), n=40)
    r = compile_model(path, tmp_path / "b", inputs=x, verbose=False)
    ops = [lay["op_type"] for lay in r.estimates["layers"]]
    assert ops.count("AddStreams") == 16 and ops.count("DuplicateStreams") == 16
    assert len(ops) > 100  # streams between layers: FIFOs included
    assert all(c["decision_mismatches"] == 0 for c in r.checks) and r.checks[-1]["integer_exact"]
