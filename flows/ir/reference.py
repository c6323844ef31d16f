"""The reference the compiler is verified against: qonnx's own execution of a QONNX model, and the
project's one definition of a class decision.

Plain numpy and qonnx (no torch), so the compiler and its verification run without PyTorch.
The training side (:mod:`qnnflow.models.export`) uses these names from here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
from qnnflow.flows.ir.graph import TV_DOMAIN

# Logits that are the same integer accumulator times one scale tie often at low bit widths (a
# bipolar last layer ties on most inputs). Values this close, relative to the largest magnitude,
# are taken as equal, and the decision goes to the lowest class index, as LabelSelect does in
# hardware. Distinct 16-bit accumulators differ by at least 2**-16 (1.5e-5) of the largest.
TIE_RTOL = 4e-6


@contextlib.contextmanager
def quiet():
    """Silence exporters' and executors' progress prints and warnings (they are not the user's concern)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def load_qonnx(path: Path | str):
    """Load a QONNX / FINN-ONNX file as a cleaned ModelWrapper; ValueError if it is not one."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError / various protobuf errors
        raise ValueError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
    if len(proto.graph.node) == 0:
        raise ValueError(f"{path}: ONNX graph has no nodes")
    with quiet():
        return cleanup_model(ModelWrapper(proto))


def run_qonnx(
    model, x: np.ndarray, batch_size: int = 100, progress: bool = False, keep: set[str] | None = None
) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Execute a QONNX model on ``x`` (N, ...) with qonnx's reference executor, in batches.

    The model's batch dimension is changed to ``batch_size`` (qonnx ``ChangeBatchSize``) so each
    ``execute_onnx`` call runs a whole batch; the last batch is padded with its first sample.
    With ``keep`` (tensor names) also returns those intermediate tensors, (N, ...) each.
    """
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    n = len(x)
    batch_size = max(1, min(batch_size, n))
    batched = model.transform(ChangeBatchSize(batch_size)).transform(InferShapes())
    in_name = batched.graph.input[0].name
    out_name = batched.graph.output[0].name
    outs = []
    kept: dict[str, list[np.ndarray]] = {k: [] for k in keep or ()}
    for start in range(0, n, batch_size):
        chunk = np.asarray(x[start : start + batch_size], dtype=np.float32)
        real = len(chunk)
        if real < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - real, axis=0)])
        with quiet():
            ctx = execute_onnx(batched, {in_name: chunk}, return_full_exec_context=bool(keep))
        outs.append(np.asarray(ctx[out_name])[:real])
        for k, parts in kept.items():
            if k in ctx:
                parts.append(np.asarray(ctx[k])[:real])
        if progress:
            print(f"  qonnx execution: {min(start + batch_size, n)}/{n}", end="\r", flush=True)
    if progress:
        print()
    out = np.concatenate(outs)
    if keep is None:
        return out
    return out, {k: np.concatenate(v) for k, v in kept.items() if len(v) == len(outs)}


def node_attrs(node) -> dict:
    """A node's attributes as Python values (strings decoded)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def quantize64(node, operands: list[np.ndarray]) -> np.ndarray:
    """A Quant / IntQuant / BipolarQuant node on its operand values, with qonnx's own functions,
    keeping their dtype (qonnx's ``execute_node`` casts the result to float32)."""
    if node.op_type == "BipolarQuant":
        from qonnx.custom_op.general.bipolar_quant import binary_quant

        return np.asarray(binary_quant(operands[0], operands[1]))
    from qonnx.custom_op.general.intquant import int_quant

    a = node_attrs(node)
    x, scale, zeropt, bits = operands[:4]
    mode = a.get("rounding_mode", "ROUND")
    return np.asarray(int_quant(x, scale, zeropt, np.reshape(bits, ()), a.get("signed", 1), a.get("narrow", 0), mode))


def batchnorm64(x, scale, bias, mean, var, epsilon: float = 1e-5) -> np.ndarray:
    """BatchNormalization in inference mode, channels on axis 1, in the operands' precision."""
    shape = (-1,) + (1,) * (np.ndim(x) - 2)
    s, b, m, v = (np.reshape(p, shape) if np.size(p) > 1 else p for p in (scale, bias, mean, var))
    return s * (x - m) / np.sqrt(v + epsilon) + b


_QUANT_F64 = ("Quant", "IntQuant", "BipolarQuant")


def run_qonnx_double(model, x: np.ndarray, batch_size: int = 100, keep: set[str] | None = None):
    """The original model executed with every float tensor in float64: qonnx's implementations of
    its custom ops (Quant, MultiThreshold, ...) and onnx's own reference evaluator
    (``onnx.reference``) for the standard ops, node by node. Integers of any accumulator width up
    to 2**53 come out exact, and float rounding differs from exact arithmetic only where the latter
    is within about 1e-16 of a rounding boundary (float32 execution: about 1e-7). With ``keep``, also
    the named tensors, as :func:`run_qonnx` keeps them."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    from qonnx.custom_op.registry import getCustomOp

    g = model.graph
    consts = {}
    for init in g.initializer:
        v = numpy_helper.to_array(init)
        consts[init.name] = v.astype(np.float64) if v.dtype == np.float32 else v
    opset = [o for o in model.model.opset_import if o.domain in ("", "ai.onnx")] or [helper.make_opsetid("", 13)]
    evaluators = {}
    outs = []
    kept: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch_size):
        ctx = dict(consts)
        ctx[g.input[0].name] = np.asarray(x[start : start + batch_size], dtype=np.float64)
        for node in g.node:
            if node.domain.startswith("qonnx.custom_op") and node.op_type in _QUANT_F64:
                # qonnx's execute_node casts these outputs to float32 (a relative error of 6e-8 on every
                # weight and activation); its pure functions keep the inputs' float64
                ctx[node.output[0]] = quantize64(node, [ctx[i] for i in node.input])
                continue
            if node.domain in ("", "ai.onnx") and node.op_type == "BatchNormalization":
                # onnx.reference's BatchNormalization-9 (opsets 9-13) blends in the batch's statistics
                # whenever a momentum is given, as exporters write it; inference is the test mode
                eps = node_attrs(node).get("epsilon", 1e-5)
                ctx[node.output[0]] = batchnorm64(*(ctx[i] for i in node.input[:5]), epsilon=eps)
                continue
            if node.domain.startswith("qonnx.custom_op") or node.domain == TV_DOMAIN:
                with quiet():
                    version = (2 if len(node.input) == 6 else 1) if node.op_type == "Trunc" else None
                    getCustomOp(node, version).execute_node(ctx, g)
                continue
            if node.name not in evaluators or evaluators[node.name][1] != [str(ctx[i].dtype) for i in node.input if i]:
                ins = [helper.make_tensor_value_info(i, TensorProto.UNDEFINED, None) for i in node.input if i]
                outs_vi = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.output if o]
                single = helper.make_model(helper.make_graph([node], "n", ins, outs_vi), opset_imports=opset)
                evaluators[node.name] = (ReferenceEvaluator(single), [str(ctx[i].dtype) for i in node.input if i])
            feeds = {i: ctx[i] for i in node.input if i}
            if node.op_type == "Reshape" and feeds[node.input[1]][0] == 1:
                feeds[node.input[1]] = np.concatenate([[len(ctx[g.input[0].name])], feeds[node.input[1]][1:]])
            for name, v in zip([o for o in node.output if o], evaluators[node.name][0].run(None, feeds), strict=True):
                ctx[name] = np.asarray(v)
        outs.append(np.asarray(ctx[g.output[0].name]))
        for name in keep or ():
            if name in ctx:
                kept.setdefault(name, []).append(np.asarray(ctx[name]))
    out = np.concatenate(outs)
    if keep is None:
        return out
    return out, {k: np.concatenate(v) for k, v in kept.items() if len(v) == len(outs)}


# how close, relative to its magnitude, a quantizer's input must lie to a rounding boundary for
# float32 constants of the exported graph (a folded BatchNorm, a scale: each rounded by up to
# 2**-24) to put it on the other side than the model they were exported from (a few such ulps)
CONSTANT_NOISE_RTOL = 2.0**-20


def near_rounding_boundary(model, x: np.ndarray, rtol: float = CONSTANT_NOISE_RTOL) -> np.ndarray:
    """Per input: whether some ``Quant`` of ``model`` (executed in float64) receives a value within
    ``rtol`` of its magnitude of a rounding boundary (k + 0.5 steps for ROUND, an integer step for
    FLOOR / CEIL). Such a value is rounded by the float32 constants of the export, not by the
    model's arithmetic: the model it was exported from may round it the other way."""
    quants = [  # activation quantizers (a weight's input is a constant) with constant scales
        n
        for n in model.graph.node
        if n.op_type == "Quant" and model.get_initializer(n.input[0]) is None
        and model.get_initializer(n.input[1]) is not None
    ]
    if not quants:
        return np.zeros(len(x), dtype=bool)
    _, kept = run_qonnx_double(model, x, keep={n.input[0] for n in quants})
    near = np.zeros(len(x), dtype=bool)
    for n in quants:
        if n.input[0] not in kept:
            continue
        scale = np.asarray(model.get_initializer(n.input[1]), dtype=np.float64)
        zeropt = np.asarray(model.get_initializer(n.input[2]) if len(n.input) > 2 else 0.0, dtype=np.float64)
        y = kept[n.input[0]] / scale + zeropt
        edge = 0.0 if node_attrs(n).get("rounding_mode", "ROUND") in ("FLOOR", "CEIL") else 0.5
        gap = np.abs(y - np.floor(y) - edge)
        gap = np.minimum(gap, np.abs(gap - 1.0)) if edge == 0.0 else gap
        close = gap <= rtol * np.maximum(1.0, np.abs(y))
        near |= close.reshape(len(x), -1).any(axis=1)
    return near


def decisions(outputs: np.ndarray, tie_rtol: float = TIE_RTOL) -> np.ndarray:
    """Class decisions from a model's outputs, ties (within ``tie_rtol``) to the lowest index.

    When the graph already ends in a top-1 selection (one value per sample, as FINN-ONNX graphs
    with TopK do) that value is the decision.
    """
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return flat[:, 0].astype(np.int64)
    top = flat.max(axis=1, keepdims=True)
    tol = tie_rtol * np.maximum(np.abs(flat).max(axis=1, keepdims=True), 1e-30)
    return np.argmax(flat >= top - tol, axis=1)
