"""Exact evaluation of the per-channel function between an integer tensor and the next quantizer.

The streamlining describes a float tensor of the original graph as ``tail(A * q + B)``: ``q`` an
integer tensor of the new graph (an accumulator, or a quantized activation), ``A``, ``B`` one value
per channel, and ``tail`` the original elementwise nodes (BatchNormalization, Mul, Add, Relu,
Quant, ...) applied since. This module runs ``tail`` on chosen integer values of ``q`` with the same
implementations qonnx's reference execution uses (onnxruntime for standard ops, qonnx for its
custom ops), in float64 (see :meth:`TailEvaluator.__call__`), so thresholds found from it reproduce
the reference's arithmetic, including rounding ties, negative BatchNorm scales (decreasing functions)
and signed outputs.

Analyses only: nothing here rewrites a graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import NodeProto, TensorProto, helper
from qnnflow.flows.ir.graph import where
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError

SHAPE_ONLY = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
# monotonic activations: before a quantizer they become thresholds like Relu
ACTIVATIONS = ("LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid")
ELEMENTWISE = ("Mul", "Add", "Sub", "Div", "BatchNormalization", "Relu", "Clip", *ACTIVATIONS)
QUANTIZERS = ("Quant", "BipolarQuant", "MultiThreshold", "Trunc")


@dataclass
class TailStep:
    """One original node of a tail: op type, attributes, and its constant operands reduced to one
    value per channel (shape (C,)) or a scalar, in operand order; ``None`` marks the data input."""

    node: NodeProto
    operands: list[np.ndarray | None]


@dataclass
class IntTensor:
    """An original float tensor expressed through an integer tensor ``name`` of the new graph:
    value = tail(A * q + B), q integer in [lo, hi] (per channel; q in {-1, +1} if ``bipolar``).

    ``shape`` / ``axis`` describe the original tensor (channel axis), ``shape_nodes`` the
    shape-only nodes seen since ``q`` (kept to re-create the original shape when needed)."""

    name: str
    A: np.ndarray
    B: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    shape: list[int]
    axis: int
    bipolar: bool = False
    tail: list[TailStep] = field(default_factory=list)
    negatable: str | None = None  # node name of the MatMul/Conv that computes q (its rows may be negated)
    shape_nodes: list[NodeProto] = field(default_factory=list)
    # after a residual add with float rounding in the reference: (min, max, modelled) float values
    # per integer sum and channel, checked by the next quantizer (flows/passes/streamline_residual.py)
    sum_spread: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def channels(self) -> int:
        return int(self.shape[self.axis]) if self.shape else 1

    @property
    def uniform(self) -> bool:
        return all(np.all(v == v.flat[0]) for v in (self.A, self.B))


class FloatPath:
    """The float input and the original nodes applied to it so far (host-side preprocessing)."""

    def __init__(self, nodes: list[NodeProto]):
        self.nodes = nodes


def per_channel(value: np.ndarray, shape: list[int], axis: int, what: str) -> np.ndarray:
    """Reduce a constant operand broadcast against a tensor of ``shape`` to one value per channel
    (C,) or a scalar; ValueError if it varies along any other axis."""
    v = np.asarray(value, dtype=np.float64)
    if v.size == 1:
        return v.reshape(())
    rank = len(shape)
    if v.ndim > rank:
        raise ValueError(f"{what}: constant of shape {v.shape} does not broadcast to {shape}")
    full = np.broadcast_to(v.reshape((1,) * (rank - v.ndim) + v.shape), shape)
    moved = np.moveaxis(full, axis, -1).reshape(-1, shape[axis])
    if not np.all(moved == moved[:1]):
        raise ValueError(f"{what}: constant of shape {v.shape} is not one value per channel (axis {axis} of {shape})")
    return moved[0].copy()


class TailEvaluator:
    """Runs ``tail(A * q + B)`` on probe matrices of integers of shape (P, C)."""

    def __init__(self, t: IntTensor):
        self.t = t
        self._ex = None

    @property
    def ex(self):
        """The tail as a graph for the float32 executor, built when first needed."""
        if self._ex is None:
            from qnnflow.flows.ir.execute import Executor

            self.model = self._build()
            self._ex = Executor(self.model)
        return self._ex

    def _build(self) -> ModelWrapper:
        c = self.t.channels
        nodes, inits = [], []
        cur = "probe"
        for i, step in enumerate(self.t.tail):
            n = step.node
            if n.op_type in SHAPE_ONLY:
                continue
            ins = []
            for j, operand in enumerate(step.operands):
                if operand is None:
                    ins.append(cur)
                    continue
                name = f"c{i}_{j}"
                arr = np.asarray(operand)
                if n.op_type == "MultiThreshold" and j == 1:
                    arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim else arr.reshape(1, 1)
                elif n.op_type == "BatchNormalization":
                    arr = np.broadcast_to(arr, (c,))
                elif n.op_type == "Quant" and j == 3:
                    arr = arr.reshape(())
                inits.append(helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.astype(np.float32).ravel()))
                ins.append(name)
            out = f"t{i}"
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "BatchNormalization":  # inference, in an opset-13 graph
                attrs.pop("training_mode", None)
            if n.op_type == "MultiThreshold":
                attrs["data_layout"] = "NC"
            nodes.append(helper.make_node(n.op_type, ins, [out], domain=n.domain, name=f"tail{i}", **attrs))
            cur = out
        if not nodes:
            nodes.append(helper.make_node("Identity", ["probe"], ["t_id"], name="tail_id"))
            cur = "t_id"
        inp = helper.make_tensor_value_info("probe", TensorProto.FLOAT, [None, c])
        out = helper.make_tensor_value_info(cur, TensorProto.FLOAT, [None, c])
        graph = helper.make_graph(nodes, "tail", [inp], [out], initializer=inits)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        return ModelWrapper(proto)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        """Values of the tail for integer probes ``q`` (P, C) -> (P, C).

        In float64 where every node of the tail has a float64 form here (the elementwise ops and
        qonnx's Quant / BipolarQuant / MultiThreshold functions), float32 (the executor) otherwise.
        float64 stands for exact arithmetic: the float32 reference rounds an accumulator sum in an
        order of its own, so it cannot be reproduced bit for bit anyway; where it lands on the other
        side of a rounding boundary than float64, verification compares with the float64 reference."""
        x = self.t.A * np.asarray(q, dtype=np.float64) + self.t.B
        if self.exact:
            for step in self.t.tail:
                if step.node.op_type not in SHAPE_ONLY:
                    x = _step64(step, x)
            return np.asarray(x, dtype=np.float64).reshape(q.shape)
        return np.asarray(self.ex.run(x.astype(np.float32)), dtype=np.float32).reshape(q.shape)

    @property
    def exact(self) -> bool:
        return all(s.node.op_type in SHAPE_ONLY or s.node.op_type in _F64_OPS for s in self.t.tail)


def _step64(step: TailStep, x: np.ndarray) -> np.ndarray:
    """One tail node on (P, C) float64 values; constant operands are (C,) or scalars."""
    from qnnflow.flows.ir.reference import batchnorm64, node_attrs, quantize64

    n = step.node
    ops = [x if v is None else np.asarray(v, dtype=np.float64) for v in step.operands]
    a = node_attrs(n)
    t = n.op_type
    if t in ("Mul", "Add", "Sub", "Div"):
        return {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[t](ops[0], ops[1])
    if t == "Relu":
        return np.maximum(ops[0], 0.0)
    if t == "Clip":
        lo = ops[1] if len(ops) > 1 and ops[1].size else a.get("min", -np.inf)
        hi = ops[2] if len(ops) > 2 and ops[2].size else a.get("max", np.inf)
        return np.clip(ops[0], lo, hi)
    if t == "BatchNormalization":
        return batchnorm64(*ops[:5], epsilon=a.get("epsilon", 1e-5))
    if t == "LeakyRelu":
        return np.where(ops[0] < 0, a.get("alpha", 0.01) * ops[0], ops[0])
    if t == "PRelu":
        return np.where(ops[0] < 0, ops[1] * ops[0], ops[0])
    if t == "Sigmoid":
        return np.exp(-np.logaddexp(0.0, -ops[0]))  # 1 / (1 + e^-x), no overflow
    if t == "Tanh":
        return np.tanh(ops[0])
    if t == "HardSigmoid":
        return np.clip(a.get("alpha", 0.2) * ops[0] + a.get("beta", 0.5), 0.0, 1.0)
    if t in ("Quant", "BipolarQuant"):
        return quantize64(n, ops)
    if t == "MultiThreshold":
        from qonnx.custom_op.general.multithreshold import multithreshold

        thr = ops[1].reshape(-1, ops[1].shape[-1]) if ops[1].ndim else ops[1].reshape(1, 1)
        return np.asarray(multithreshold(ops[0], thr, a.get("out_scale", 1.0), a.get("out_bias", 0.0)), np.float64)
    raise AssertionError(f"no float64 form for {t}")  # guarded by TailEvaluator.exact


_F64_OPS = ("Mul", "Add", "Sub", "Div", "Relu", "Clip", "BatchNormalization", "Quant", "BipolarQuant", "MultiThreshold",
            *ACTIVATIONS)  # fmt: skip


def levels_of(values: np.ndarray, A: np.ndarray, B: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integer level q with value = A * q + B, clipped into [lo, hi] (per channel, last axis)."""
    q = np.rint((values.astype(np.float64) - B) / A)
    return np.clip(q, lo, hi).astype(np.int64)


def find_thresholds(f, lo: np.ndarray, hi: np.ndarray, qlo: int, qhi: int, what: str) -> np.ndarray:
    """Thresholds (C, qhi - qlo) of the non-decreasing integer function ``f`` (probes (P, C) ->
    levels (P, C)) on acc in [lo, hi]: row c, column j is the least acc with f(acc) >= qlo + j + 1
    (``hi + 1`` if there is none). Parallel bisection over all channels and levels at once."""
    c = lo.shape[0]
    n = qhi - qlo
    L = np.broadcast_to(lo[None, :], (n, c)).astype(np.int64).copy()
    H = np.broadcast_to(hi[None, :] + 1, (n, c)).astype(np.int64).copy()
    target = (qlo + 1 + np.arange(n))[:, None]
    while np.any(L < H):
        mid = (L + H) // 2
        probe = np.minimum(mid, hi[None, :])
        ok = (f(probe) >= target) & (mid <= hi[None, :])
        H = np.where(ok, mid, H)
        L = np.where(ok, L, mid + 1)
    return L.T.copy()


def check_thresholds(
    f, thresholds: np.ndarray, lo: np.ndarray, hi: np.ndarray, qlo: int, what: str, seed: int = 0
) -> None:
    """Verify count(t <= acc) + qlo == f(acc) at every threshold, its neighbour below, both range
    ends and random points; FlowError if the function was not monotone after all."""
    rng = np.random.default_rng(seed)
    c = lo.shape[0]
    pts = [lo[None, :], hi[None, :], np.clip(thresholds.T, lo, hi), np.clip(thresholds.T - 1, lo, hi)]
    span = (hi - lo + 1).astype(np.float64)
    pts.append(lo[None, :] + np.floor(rng.random((64, c)) * span).astype(np.int64))
    probe = np.concatenate(pts).astype(np.int64)
    want = f(probe)
    # count(t <= acc) per channel by binary search: memory in the probes, not probes x thresholds
    ordered = np.sort(thresholds, axis=1)
    got = np.stack([np.searchsorted(ordered[ch], probe[:, ch], side="right") for ch in range(c)], axis=1) + qlo
    bad = np.argwhere(want != got)
    if len(bad):
        i, ch = bad[0]
        raise FlowError(
            f"{what}: the function from accumulator to quantized level is not monotone in channel {ch} "
            f"(at accumulator {probe[i, ch]}: expected level {want[i, ch]}, thresholds give {got[i, ch]})"
        )


def describe(node: NodeProto) -> str:
    return where(node)
