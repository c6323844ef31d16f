"""Execution of any graph of the flow on a whole batch at once, integers exactly.

Standard ONNX nodes run in onnxruntime (one small session per node, with a free batch dimension),
qonnx custom ops (Quant, MultiThreshold, ...) through qonnx's own implementations, and the
hardware layers through their numpy ``execute`` (flows/ir/layers.py, which calls flows/ir/kernels.py).

Integer tensors (a DataType annotation INTn / UINTn / BIPOLAR / TERNARY / BINARY) are held in
float64, which represents every integer below 2**53 exactly; a node whose data inputs are all
integers runs in float64 (an integer Conv, which onnxruntime has only in float32, runs as an exact
im2col matrix product in numpy), so accumulators of any width up to 32 bits come out exact. Nodes
with a float input run in float32, as the model's float tensors are defined. A node onnxruntime
cannot run in float64 gets its integers in float32 only if they all lie below 2**24 (exact there);
otherwise a FlowError says so. The reference for verification is qonnx's ``execute_onnx`` on the
original model (:func:`reference_outputs`), which shares none of this module's code.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, helper
from qnnflow.flows.ir.graph import HW_DOMAIN, TV_DOMAIN, topo_nodes, where
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError

_F32_EXACT = 1 << 24  # float32 holds every integer of magnitude below this exactly

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.bool_): TensorProto.BOOL,
}


class _StandardNode:
    """One standard ONNX node as an onnxruntime session with free input / output shapes."""

    def __init__(self, node: NodeProto, values: list[np.ndarray | None], opset: int):
        import onnxruntime as ort

        inputs = []
        names = []
        for name, v in zip(node.input, values, strict=True):
            if name == "" or v is None:
                continue
            names.append(name)
            inputs.append(helper.make_tensor_value_info(name, _NP_TO_ONNX[v.dtype], None))
        outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
        graph = helper.make_graph([node], "single", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.names = names
        self.session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {n: feeds[n] for n in self.names})


def custom_op_version(node) -> int | None:
    """The version of a qonnx custom op that executes ``node``: Trunc v1 has 5 inputs, v2 (Brevitas
    0.11 and later) 6; ``None`` (the newest) for the others."""
    if node.op_type == "Trunc":
        return 2 if len(node.input) == 6 else 1
    return None


def _conv_exact(node: NodeProto, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """ONNX Conv (NCHW) of integer tensors, exact: im2col and an exact integer matrix product."""
    from qnnflow.flows.ir.kernels import exact_matmul

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise FlowError(f"{where(node)}: an integer Conv with auto_pad is not supported; give explicit pads")
    kh, kw = w.shape[2:]
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    group = int(attrs.get("group", 1))
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (ekh, ekw), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = win.shape[2], win.shape[3]
    cg, og = c // group, w.shape[0] // group
    outs = []
    for g in range(group):
        cols = win[:, g * cg : (g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
        wg = w[g * og : (g + 1) * og].reshape(og, cg * kh * kw)
        outs.append(exact_matmul(cols, wg.T).reshape(n, oh, ow, og))
    y = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2).astype(np.float64)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


class Executor:
    """Runs one graph on batches. ``run(x)`` returns the graph output; ``run(x, keep=True)`` also
    every intermediate tensor (for locating the first differing tensor); ``run(x, collect=names)``
    returns ``(output, {name: value})`` for the named tensors only."""

    def __init__(self, model: ModelWrapper):
        self.model = model
        self.nodes = topo_nodes(model)
        opset = max((o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")), default=13)
        self.opset = max(opset, 11)  # Round needs 11; the flow never relies on older semantics
        self._sessions: dict[str, _StandardNode] = {}
        self.integers = integer_tensors(model)
        self.consts = {}
        for init in model.graph.initializer:
            v = model.get_initializer(init.name)
            if init.name in self.integers and v.dtype.kind == "f":
                v = v.astype(np.float64)
            self.consts[init.name] = v

    def _standard(self, node: NodeProto, ins: list[np.ndarray | None], batch: int) -> list[np.ndarray]:
        data = [i for i, v in zip(node.input, ins, strict=True) if v is not None and v.dtype.kind == "f"]
        exact = bool(data) and all(i in self.integers for i in data)
        if exact and node.op_type == "Conv":
            w = ins[1]
            b = ins[2] if len(ins) > 2 else None
            return [_conv_exact(node, ins[0], w, b)]
        want = np.float64 if exact else np.float32
        if exact and node.op_type in _NO_DOUBLE:
            want = np.float32
            for i, v in zip(node.input, ins, strict=True):
                if i in data and np.abs(v).max(initial=0) >= _F32_EXACT:
                    raise FlowError(
                        f"{where(node)}: onnxruntime runs {node.op_type} in float32 only, and its integer "
                        f"input {i} reaches {np.abs(v).max():.0f}, beyond 2**24 where float32 is exact"
                    )
        ins = [v.astype(want) if v is not None and v.dtype.kind == "f" and v.dtype != want else v for v in ins]
        key = node.name + "|" + ",".join(str(v.dtype) for v in ins if v is not None)
        if key not in self._sessions:
            self._sessions[key] = _StandardNode(node, ins, self.opset)
        feeds = {n: v for n, v in zip(node.input, ins, strict=True) if v is not None}
        if node.op_type == "Reshape" and feeds[node.input[1]][0] == 1 and batch != 1:
            # shapes in the graph are for batch 1; run the whole batch
            feeds[node.input[1]] = np.concatenate([[batch], feeds[node.input[1]][1:]]).astype(np.int64)
        return self._sessions[key].run(feeds)

    def run(
        self, x: np.ndarray, keep: bool = False, collect=None
    ) -> np.ndarray | dict[str, np.ndarray] | tuple[np.ndarray, dict[str, np.ndarray]]:
        from qnnflow.flows.ir.layers import get_layer
        from qonnx.custom_op.registry import getCustomOp

        ctx: dict[str, np.ndarray] = dict(self.consts)
        in_name = self.model.graph.input[0].name
        ctx[in_name] = np.asarray(x, dtype=np.float64 if in_name in self.integers else np.float32)
        for node in self.nodes:
            ins = [ctx.get(i) if i else None for i in node.input]
            if node.domain == HW_DOMAIN:
                outs = get_layer(node).execute([v for v in ins if v is not None])
            elif node.domain.startswith("qonnx.custom_op") or node.domain == TV_DOMAIN:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    getCustomOp(node, custom_op_version(node)).execute_node(ctx, self.model.graph)
                continue
            else:
                outs = self._standard(node, ins, len(x))
            for name, v in zip(node.output, outs, strict=False):
                if name in self.integers and v.dtype == np.float32:
                    v = v.astype(np.float64)
                ctx[name] = v
        out = ctx[self.model.graph.output[0].name]
        if keep:
            return ctx
        if collect is not None:
            return out, {k: ctx[k] for k in collect if k in ctx}
        return out


# standard ops that onnxruntime's CPU provider implements in float32 only
_NO_DOUBLE = frozenset({"AveragePool", "GlobalAveragePool", "ConvTranspose", "LRN", "InstanceNormalization"})


def integer_tensors(model: ModelWrapper) -> set[str]:
    """Names of the tensors annotated with an integer DataType (the graph input included)."""
    names = set()
    for ann in model.graph.quantization_annotation:
        for kv in ann.quant_parameter_tensor_names:
            if kv.key == "finn_datatype" and kv.value != "FLOAT32" and not kv.value.startswith("FLOAT"):
                names.add(ann.tensor_name)
    return names


def run_batched(model: ModelWrapper, x: np.ndarray, batch: int = 500, progress=None, collect=None):
    """Execute ``model`` on every sample of ``x`` (N, ...), ``batch`` samples per call. With
    ``collect`` (tensor names) returns ``(output, {name: (N, ...) values})``."""
    ex = Executor(model)
    outs = []
    kept: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch):
        if collect is None:
            outs.append(np.asarray(ex.run(x[start : start + batch])))
        else:
            out, vals = ex.run(x[start : start + batch], collect=collect)
            outs.append(np.asarray(out))
            for k, v in vals.items():
                kept.setdefault(k, []).append(np.asarray(v))
        if progress is not None:
            progress(min(start + batch, len(x)), len(x))
    out = outs[0] if len(outs) == 1 else np.concatenate(outs)
    if collect is None:
        return out
    return out, {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in kept.items() if len(v) == len(outs)}


def reference_outputs(model: ModelWrapper, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """QONNX execution (``qonnx.core.onnx_exec.execute_onnx``) of the original model on ``x``,
    with the batch dimension set to ``batch`` (the last batch padded with repeats)."""
    from qnnflow.flows.ir.reference import run_qonnx

    return run_qonnx(model, x, batch_size=batch)
