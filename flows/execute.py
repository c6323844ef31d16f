"""Execution of any graph of the flow on a whole batch at once.

Standard ONNX nodes run in onnxruntime (one small session per node, with a free batch dimension),
qonnx custom ops (Quant, MultiThreshold, ...) through qonnx's own implementations, and the
hardware layers through their numpy ``execute`` (flows/layers.py, which calls flows/kernels.py).
The reference for verification is qonnx's ``execute_onnx`` on the original model
(:func:`reference_outputs`), which shares none of this module's code.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, helper
from qnnflow.flows.graph import HW_DOMAIN, topo_nodes
from qonnx.core.modelwrapper import ModelWrapper

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


class Executor:
    """Runs one graph on batches. ``run(x)`` returns the graph output; ``run(x, keep=True)`` also
    every intermediate tensor (for locating the first differing tensor)."""

    def __init__(self, model: ModelWrapper):
        self.model = model
        self.nodes = topo_nodes(model)
        opset = max((o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")), default=13)
        self.opset = max(opset, 11)  # Round needs 11; the flow never relies on older semantics
        self._sessions: dict[str, _StandardNode] = {}
        self.consts = {init.name: model.get_initializer(init.name) for init in model.graph.initializer}

    def run(self, x: np.ndarray, keep: bool = False) -> np.ndarray | dict[str, np.ndarray]:
        from qnnflow.flows.layers import get_layer
        from qonnx.custom_op.registry import getCustomOp

        ctx: dict[str, np.ndarray] = dict(self.consts)
        in_name = self.model.graph.input[0].name
        ctx[in_name] = np.asarray(x, dtype=np.float32)
        for node in self.nodes:
            ins = [ctx.get(i) if i else None for i in node.input]
            if node.domain == HW_DOMAIN:
                outs = get_layer(node).execute([v for v in ins if v is not None])
                for name, v in zip(node.output, outs, strict=True):
                    ctx[name] = v
            elif node.domain.startswith("qonnx.custom_op"):
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    getCustomOp(node, custom_op_version(node)).execute_node(ctx, self.model.graph)
            else:
                key = node.name + "|" + ",".join(str(v.dtype) for v in ins if v is not None)
                if key not in self._sessions:
                    self._sessions[key] = _StandardNode(node, ins, self.opset)
                feeds = {n: v for n, v in zip(node.input, ins, strict=True) if v is not None}
                if node.op_type == "Reshape" and feeds[node.input[1]][0] == 1 and len(x) != 1:
                    # shapes in the graph are for batch 1; run the whole batch
                    feeds[node.input[1]] = np.concatenate([[len(x)], feeds[node.input[1]][1:]]).astype(
                        np.int64
                    )
                for name, v in zip(node.output, self._sessions[key].run(feeds), strict=False):
                    ctx[name] = v
        out = ctx[self.model.graph.output[0].name]
        if keep:
            return ctx
        return out


def run_batched(model: ModelWrapper, x: np.ndarray, batch: int = 500, progress=None) -> np.ndarray:
    """Execute ``model`` on every sample of ``x`` (N, ...), ``batch`` samples per call."""
    ex = Executor(model)
    outs = []
    for start in range(0, len(x), batch):
        outs.append(np.asarray(ex.run(x[start : start + batch])))
        if progress is not None:
            progress(min(start + batch, len(x)), len(x))
    return np.concatenate(outs)


def reference_outputs(model: ModelWrapper, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """QONNX execution (``qonnx.core.onnx_exec.execute_onnx``) of the original model on ``x``,
    with the batch dimension set to ``batch`` (the last batch padded with repeats)."""
    from qnnflow.models.export import run_qonnx

    return run_qonnx(model, x, batch_size=batch)
