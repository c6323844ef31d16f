"""Small hand-made QONNX graphs for the compiler tests."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

Q = "qonnx.custom_op.general"


def _t(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel())


tensor = _t  # a float32 initializer from any array-like


def quant(x: str, out: str, scale: str, bits: str, signed: int, narrow: int = 0, zero: str = "zero"):
    """A qonnx Quant node (round to nearest) named ``Quant_<out>``; operands are tensor names."""
    return helper.make_node(
        "Quant", [x, scale, zero, bits], [out], domain=Q, name=f"Quant_{out}", signed=signed, narrow=narrow,
        rounding_mode="ROUND",
    )  # fmt: skip


def mlp_with_tail(
    w: np.ndarray,
    tail: list[tuple[str, np.ndarray]],
    out_bits: int,
    out_signed: bool,
    out_scale: float = 1.0,
    in_bits: int = 4,
) -> ModelWrapper:
    """x (1, MW) unsigned ``in_bits`` integers (input annotated) -> MatMul(w) -> tail of (op, constant)
    -> Quant(out_scale, out_bits, signed) -> MatMul(ones) -> output. ``tail`` ops may be Mul, Add,
    or BatchNormalization (constant = (scale, bias, mean, var))."""
    mw, mh = w.shape
    nodes, inits = [], [_t("W", w), _t("W2", np.ones((mh, 2)))]
    cur = "mm"
    nodes.append(helper.make_node("MatMul", ["x", "W"], [cur], name="MatMul_0"))
    for i, (op, c) in enumerate(tail):
        out = f"t{i}"
        if op == "BatchNormalization":
            names = [f"bn{i}_{k}" for k in range(4)]
            inits += [_t(n, v) for n, v in zip(names, c, strict=True)]
            nodes.append(helper.make_node(op, [cur, *names], [out], name=f"BN_{i}", epsilon=1e-5))
        else:
            inits.append(_t(f"c{i}", c))
            nodes.append(helper.make_node(op, [cur, f"c{i}"], [out], name=f"{op}_{i}"))
        cur = out
    inits += [_t("qs", out_scale), _t("qz", 0.0), _t("qb", out_bits)]
    nodes.append(
        helper.make_node(
            "Quant",
            [cur, "qs", "qz", "qb"],
            ["q"],
            domain=Q,
            name="Quant_0",
            signed=int(out_signed),
            narrow=0,
            rounding_mode="ROUND",
        )
    )
    nodes.append(helper.make_node("MatMul", ["q", "W2"], ["y"], name="MatMul_1"))
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=inits,
    )
    m = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    m.set_tensor_datatype("x", DataType[f"UINT{in_bits}"])
    return m


def assert_latency_estimated(results: dict, slack: int = 2) -> None:
    """Frame 0's latency measured in the stitched simulation equals the compiler's beat model
    (flows/compile/latency.py, from the modules' header latencies) to within ``slack`` cycles."""
    measured, estimated = results["latency_cycles"], results["latency_cycles_estimated"]
    assert measured is not None and estimated is not None
    assert abs(measured - estimated) <= slack, f"latency {measured} cycles measured, {estimated} estimated"
