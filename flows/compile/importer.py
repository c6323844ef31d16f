"""Import of QONNX / FINN-ONNX models, and the check that every op is one the compiler lowers.

Accepted sources: Brevitas QONNX exports, QKeras-style exports (channels-last inputs, Transpose
before Conv), and FINN-ONNX graphs (MultiThreshold + integer MatMul with datatype annotations; the
old ``finn`` domains are renamed by qonnx's ``ModelWrapper`` on load).
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from qnnflow.flows.ir.graph import HW_DOMAIN, TV_DOMAIN, bypass, remember_names, where
from qnnflow.flows.passes.conv_transpose import conv_transpose_limitation
from qnnflow.flows.passes.streamline_linear import group_limitation
from qonnx.core.modelwrapper import ModelWrapper

# op type -> what the compiler does with it (shown in the unsupported-op error)
SUPPORTED_OPS: dict[str, str] = {
    "Quant": "integer quantizer (weights, activations, inputs)",
    "BipolarQuant": "sign quantizer",
    "MultiThreshold": "FINN-ONNX activation",
    "MatMul": "fully connected layer",
    "Gemm": "fully connected layer",
    "Conv": "1-D and 2-D convolution: group 1, or depthwise (group = input channels = output channels)",
    "ConvTranspose": "2-D, stride 1, group 1: a convolution with the flipped, channel-swapped kernel",
    "BatchNormalization": "folded into thresholds",
    "Relu": "folded into thresholds",
    "Clip": "hard tanh, folded into thresholds",
    "LeakyRelu": "before a quantizer: folded into thresholds (slope >= 0)",
    "PRelu": "before a quantizer: folded into thresholds (slopes >= 0)",
    "Sigmoid": "before a quantizer: folded into thresholds; at the output: removed (monotonic head)",
    "Tanh": "before a quantizer: folded into thresholds",
    "HardSigmoid": "before a quantizer: folded into thresholds",
    "Identity": "removed",
    "MaxPool": "2D max pooling after a quantizer",
    "AveragePool": "window sum (a 0/1 convolution) and a scale folded into the next quantizer",
    "GlobalAveragePool": "window sum over the whole map (a 0/1 convolution), scale folded",
    "Trunc": "re-quantizer (Brevitas TruncAvgPool2d): thresholds",
    "Reshape": "data movement",
    "Flatten": "data movement",
    "Transpose": "data movement",
    "Squeeze": "data movement",
    "Unsqueeze": "data movement",
    "Add": "constant: folded into thresholds",
    "Sub": "constant: folded into thresholds",
    "Mul": "constant: folded into thresholds",
    "Div": "constant: folded into thresholds",
    "TVSmooth": "qnnflow's TV smoothing step on a quantized activation: sliding window + hw/tv_smooth.sv",
    "TopK": "top-k label selection",
    "ArgMax": "top-1 label selection",
}

# classifier heads: at the graph output (or before its TopK / ArgMax) they are removed, since they
# do not change which class is largest; the hardware returns the logits before them
HEAD_OPS = ("Softmax", "LogSoftmax", "Sigmoid")
# ops that compute shapes or constants; qonnx's cleanup folds them away before the full check
_FOLDED_OPS = frozenset(
    {"Constant", "Shape", "Gather", "Concat", "Cast", "ConstantOfShape", "Slice", "Range", "Expand", "Equal",
     "Where", "Size", "ReduceProd", "Floor", "Ceil", "Neg", "Sqrt", "Pow", "Max", "Min"}
)  # fmt: skip
HEAD_NOTE = "qnnflow.head"  # metadata key: what remove_head took off the model


# node domains the importer takes: standard ONNX, qonnx's custom ops and their older names (renamed
# by ModelWrapper / qonnx's registry on load), and the compiler's own hardware layers
STANDARD_DOMAINS = ("", "ai.onnx")
CUSTOM_DOMAINS = (
    "qonnx.custom_op.general", "finn.custom_op.general", "finn", "onnx.brevitas", HW_DOMAIN, TV_DOMAIN,
)  # fmt: skip
MIN_OPSET = 7  # the oldest standard opset taken (FINN-era exports use 8-12, Brevitas 9-13+)
MAX_BITS = 32  # widest quantizer: accumulators and integer tensors are at most 32 bits
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
# quantizer operands checked up front, by input index; Trunc v1 is (x, scale, zeropt, in_bits,
# out_bits), v2 (x, scale, zeropt, in_bits, out_scale, out_bits)
_SCALES = {"Quant": (1,), "BipolarQuant": (1,), "Trunc": (1,), "Trunc_v2": (1, 4)}
_ZEROPTS = {"Quant": (2,), "Trunc": (2,), "Trunc_v2": (2,)}
_BITWIDTHS = {"Quant": (3,), "Trunc": (3, 4), "Trunc_v2": (3, 5)}


def supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_OPS))


def _weight_shape(graph, name: str) -> list[int] | None:
    """Dims of a Conv weight given as an initializer, or quantized from one by a Quant /
    BipolarQuant (possibly through Identity); None when it is computed otherwise."""
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    for _ in range(4):
        if name in inits:
            return list(inits[name].dims)
        p = producers.get(name)
        if p is None or p.op_type not in ("Quant", "BipolarQuant", "Identity"):
            return None
        name = p.input[0]
    return None


def _limitation(node: onnx.NodeProto, graph=None) -> str | None:
    """Why a node of a supported op type cannot be lowered anyway, or None."""
    if node.op_type == "Conv":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        group = int(attrs.get("group", 1))
        shape = _weight_shape(graph, node.input[1]) if group != 1 and graph is not None else None
        # weights computed by other ops (shape unknown here): the streamlining, which sees them, decides
        if shape is not None:
            why = group_limitation(group, shape[0], shape[1])
            if why:
                return why
        if "kernel_shape" in attrs and len(attrs["kernel_shape"]) not in (1, 2):
            return f"{len(attrs['kernel_shape'])}-D convolution (1-D and 2-D are lowered)"
    if node.op_type == "ConvTranspose":
        return conv_transpose_limitation(node)
    if node.op_type in HEAD_OPS and node.op_type not in SUPPORTED_OPS:
        return f"{node.op_type} is taken only as the classifier head, at the graph output"
    return None


def check_supported(model: ModelWrapper | onnx.ModelProto, before_cleanup: bool = False) -> None:
    """Raise one ValueError naming every node the compiler cannot lower: op types it does not take,
    and supported op types with parameters it does not lower (grouped convolutions other than
    depthwise, depth multipliers > 1, 3-D convolutions).

    ``before_cleanup``: the check on the file as read, before qonnx's shape inference and constant
    folding (which take minutes on large feature maps): ops that compute shapes and constants, and
    classifier heads, are let through to the full check after cleanup."""
    graph = model.graph
    bad = []
    seen: dict[str, int] = {}
    for n in graph.node:
        seen[n.op_type] = seen.get(n.op_type, 0) + 1
        if n.domain == HW_DOMAIN:
            continue
        # a node without a name (before cleanup names them): its place among the nodes of its type
        name = where(n) if n.name else f"unnamed {n.op_type} node no. {seen[n.op_type]} in file order"
        if n.op_type not in SUPPORTED_OPS:
            if before_cleanup and (n.op_type in _FOLDED_OPS or n.op_type in HEAD_OPS):
                continue
            bad.append(name + (f": {_limitation(n)}" if _limitation(n) else ""))
        elif _limitation(n, graph):
            bad.append(f"{name}: {_limitation(n, graph)}")
    if bad:
        raise ValueError(
            f"{len(bad)} node(s) the compiler cannot lower: {'; '.join(bad)}. Supported op types: {supported_list()}"
        )


def remove_head(model: ModelWrapper) -> ModelWrapper:
    """Take a classifier head (Softmax / LogSoftmax over the classes, or Sigmoid) off the graph
    output, or off the input of a final TopK / ArgMax: it is strictly increasing in each logit, so
    the largest class is the same before and after it. What was removed is recorded in the model's
    metadata (``HEAD_NOTE``) for the compile log. A head anywhere else is left for check_supported."""
    removed = []
    while True:
        out = model.graph.output[0].name
        last = model.find_producer(out)
        select = None
        if last is not None and last.op_type in ("TopK", "ArgMax"):
            select, last = last, model.find_producer(last.input[0])
        if last is None or last.op_type not in HEAD_OPS:
            break
        shape = model.get_tensor_shape(last.input[0]) or []
        if last.op_type != "Sigmoid":
            axis = {a.name: a.i for a in last.attribute}.get("axis", -1 if _opset(model) >= 13 else 1)
            if len(shape) != 2 or axis not in (1, -1):
                break  # not over the classes of a (N, C) tensor: check_supported names it
        src = last.input[0]
        if select is not None:
            select.input[0] = src
            model.graph.node.remove(last)
        elif model.find_producer(src) is None:
            break  # the head reads the graph input: nothing to select from
        else:
            bypass(model, last, src)
        removed.append(where(last))
    if removed:
        entry = model.model.metadata_props.add()
        entry.key, entry.value = HEAD_NOTE, ", ".join(reversed(removed))
    return model


def _opset(model: ModelWrapper) -> int:
    return next((o.version for o in model.model.opset_import if o.domain in STANDARD_DOMAINS), 13)


def head_note(model: ModelWrapper, logits: bool) -> str | None:
    """The compile log's line on a removed classifier head, or None."""
    removed = next((p.value for p in model.model.metadata_props if p.key == HEAD_NOTE), None)
    if removed is None:
        return None
    if logits:
        return (
            f"classifier head {removed} removed: the hardware returns the logits before it (--logits), "
            f"and they are what is verified; apply the head on the host if you need its values"
        )
    return (
        f"classifier head {removed} removed: it does not change the largest class, so labels are selected "
        f"from the logits before it"
    )


def load_model(source: str | Path | ModelWrapper | onnx.ModelProto) -> ModelWrapper:
    """Read a model file (or take a loaded one) and clean it with qonnx: shapes inferred,
    constants folded (quantizers kept), readable unique names. Raises FileNotFoundError for a
    missing file and ValueError for a file that is not a usable ONNX graph."""
    from qonnx.util.cleanup import cleanup_model

    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path}: the file is empty, not an ONNX model")
        try:
            proto = onnx.load(str(path))
        except Exception as err:  # noqa: BLE001 - protobuf raises several unrelated types
            raise ValueError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
        where = str(path)
    elif isinstance(source, ModelWrapper):
        proto, where = source.model, "model"
    else:
        proto, where = source, "model"
    validate(proto, where)
    proto = copy.deepcopy(proto)
    remember_names(proto.graph)
    check_supported(proto, before_cleanup=True)  # fail fast: cleanup of a large model takes minutes
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            model = cleanup_model(ModelWrapper(proto))
        except Exception as err:  # noqa: BLE001 - qonnx raises many types on graphs it cannot clean
            raise ValueError(
                f"{where}: qonnx could not clean the graph (shape inference, constant folding): "
                f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            ) from err
    model = remove_head(model)
    check_supported(model)
    _check_shapes(model, where)
    _check_executes(model, where)
    return model


def _fail(where_: str, message: str) -> None:
    raise ValueError(f"{where_}: {message}")


def validate(proto: onnx.ModelProto, where_: str = "model") -> None:
    """Check a model before qonnx touches it, so that a malformed file gets one ValueError naming
    the node or tensor at fault: versions and domains, one input and one output, every tensor
    defined once and before use (no dangling inputs, missing initializers or cycles), finite
    constants, and quantizers with constant, finite, positive scales and integer bit widths in
    1..32."""
    graph = proto.graph
    if len(graph.node) == 0:
        _fail(where_, "the ONNX graph has no nodes")
    if proto.ir_version > onnx.IR_VERSION:
        _fail(where_, f"ONNX IR version {proto.ir_version} is newer than this onnx package reads ({onnx.IR_VERSION})")
    _check_opsets(proto, where_)
    inits = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        _fail(
            where_,
            "the graph must have exactly one input and one output, found inputs "
            f"{[i.name for i in inputs]}, outputs {[o.name for o in graph.output]}",
        )
    _check_input_shape(inputs[0], where_)
    _check_dataflow(graph, {inputs[0].name, *inits}, where_)
    for name, init in inits.items():
        value = numpy_helper.to_array(init)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            users = [where(n) for n in graph.node if name in n.input]
            _fail(where_, f"initializer {name} (used by {', '.join(users) or 'no node'}) holds NaN or infinite values")
    consts = {**{k: numpy_helper.to_array(v) for k, v in inits.items()}, **_constant_nodes(graph)}
    for node in graph.node:
        _check_quantizer(node, consts, where_)


def _check_opsets(proto: onnx.ModelProto, where_: str) -> None:
    versions = {o.domain: o.version for o in proto.opset_import}
    std = versions.get("", versions.get("ai.onnx"))
    newest = onnx.defs.onnx_opset_version()
    if std is None:
        _fail(where_, "the model declares no opset for the standard ONNX domain (opset_import)")
    if not MIN_OPSET <= std <= newest:
        _fail(where_, f"standard ONNX opset {std} is not supported: expected {MIN_OPSET}..{newest}")
    for node in proto.graph.node:
        if node.domain not in STANDARD_DOMAINS and node.domain not in CUSTOM_DOMAINS:
            _fail(
                where_,
                f"node {where(node)} is in the unknown domain {node.domain!r}; expected the standard "
                f"ONNX domain or one of {', '.join(CUSTOM_DOMAINS[:-1])}",
            )


def _check_input_shape(inp: onnx.ValueInfoProto, where_: str) -> None:
    t = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or not t.HasField("shape"):
        _fail(where_, f"the graph input {inp.name} has no tensor shape")
    dims = list(t.shape.dim)
    for i, d in enumerate(dims):
        if i == 0 and (d.dim_param or d.dim_value > 0):
            continue  # the batch dimension: qonnx sets it
        if d.dim_param or d.dim_value < 1:
            shown = [x.dim_param or x.dim_value for x in dims]
            _fail(where_, f"the graph input {inp.name} must have a fixed positive size in dimension {i}, found {shown}")


def _check_dataflow(graph: onnx.GraphProto, defined: set[str], where_: str) -> None:
    """Every tensor produced once, every input defined, the graph output produced, no cycle."""
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for out in node.output:
            if not out:
                continue
            if out in defined or out in producer:
                first = where(producer[out]) if out in producer else "the graph input / an initializer"
                _fail(where_, f"tensor {out} is defined twice: by {first} and by {where(node)}")
            producer[out] = node
    for node in graph.node:
        for name in node.input:
            if name and name not in defined and name not in producer:
                _fail(
                    where_,
                    f"node {where(node)} reads tensor {name}, which is neither the graph input, an "
                    f"initializer nor the output of a node (a missing initializer or a dangling input)",
                )
    out = graph.output[0].name
    if out not in producer and out not in defined:
        _fail(where_, f"the graph output {out} is produced by no node")
    # Kahn's algorithm: a node is ready when all the tensors it reads are defined
    waiting = {id(n): {i for i in n.input if i and i not in defined} for n in graph.node}
    ready = [n for n in graph.node if not waiting[id(n)]]
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in waiting[id(node)]:
            readers.setdefault(name, []).append(node)
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for out in node.output:
            for user in readers.get(out, []):
                waiting[id(user)].discard(out)
                if not waiting[id(user)]:
                    ready.append(user)
    if done < len(graph.node):
        stuck = [where(n) for n in graph.node if waiting[id(n)]]
        _fail(where_, f"the graph has a cycle: nodes {', '.join(stuck[:6])} depend on their own outputs")


def _constant_nodes(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
    return values


def _check_quantizer(node: onnx.NodeProto, consts: dict[str, np.ndarray], where_: str) -> None:
    op = node.op_type
    if op not in _SCALES or node.domain in STANDARD_DOMAINS:
        return
    if op == "Trunc" and len(node.input) >= 6:
        op = "Trunc_v2"
    what = f"node {where(node)}"

    def operand(i: int, role: str) -> np.ndarray:
        if len(node.input) <= i or not node.input[i]:
            _fail(where_, f"{what} has no {role} operand (input {i})")
        value = consts.get(node.input[i])
        if value is None:
            _fail(where_, f"{what}: its {role} {node.input[i]} must be a constant (an initializer)")
        return np.asarray(value, dtype=np.float64)

    for i in _SCALES[op]:
        s = operand(i, "scale")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            _fail(where_, f"{what}: the scale must be finite and positive, found {_show(s)}")
    widest = 0
    for i in _BITWIDTHS.get(op, ()):
        b = operand(i, "bit width")
        if b.size != 1 or not np.isfinite(b).all() or b.flat[0] != np.round(b.flat[0]):
            _fail(where_, f"{what}: the bit width must be one integer, found {_show(b)}")
        if not 1 <= b.flat[0] <= MAX_BITS:
            _fail(where_, f"{what}: the bit width must be in 1..{MAX_BITS}, found {int(b.flat[0])}")
        widest = max(widest, int(b.flat[0]))
    for i in _ZEROPTS.get(op, ()):
        z = operand(i, "zero point")
        # an integer level of the quantizer's range (qonnx rounds x / scale + zero point, then clips)
        if not np.all(np.isfinite(z)) or np.any(z != np.round(z)) or np.any(np.abs(z) >= 2**widest):
            _fail(
                where_,
                f"{what}: the zero point must be an integer of magnitude below 2^{widest} (the bit width), "
                f"found {_show(z)}",
            )
    for a in node.attribute:
        if a.name in ("signed", "narrow") and a.i not in (0, 1):
            _fail(where_, f"{what}: attribute {a.name} must be 0 or 1, found {a.i}")
        if a.name == "rounding_mode":
            mode = a.s.decode(errors="replace")
            if mode.upper() not in ROUNDING_MODES:
                _fail(where_, f"{what}: unknown rounding mode {mode!r}; expected one of {', '.join(ROUNDING_MODES)}")


def _show(value: np.ndarray) -> str:
    flat = np.ravel(value)
    text = ", ".join(f"{v:g}" for v in flat[:4])
    return f"[{text}{', ...' if flat.size > 4 else ''}]" if flat.size != 1 else text


def _check_shapes(model: ModelWrapper, where_: str) -> None:
    """After qonnx's shape inference: every tensor a node reads, and the graph output, has a shape."""
    out = model.graph.output[0]
    if not out.type.tensor_type.HasField("shape"):
        _fail(where_, f"the shape of the graph output {out.name} is not given and could not be inferred")
    for node in model.graph.node:
        for name in node.input:
            if name and model.get_tensor_shape(name) is None:
                src = model.find_producer(name)
                by = f"output of {where(src)}" if src is not None else "an input"
                _fail(where_, f"the shape of tensor {name} ({by}, read by {where(node)}) could not be inferred")


def _check_executes(model: ModelWrapper, where_: str) -> None:
    """Run QONNX execution node by node once, on a zero input: a graph that onnxruntime or qonnx
    cannot execute (operand types or shapes that do not fit an op) fails here, naming the node,
    instead of deep in the compiler's reference run."""
    import onnxruntime
    from qonnx.core.onnx_exec import execute_node
    from qonnx.util.basic import get_preferred_qonnx_opset

    inp = model.graph.input[0].name
    context = model.make_empty_exec_context()
    context[inp] = np.zeros(model.get_tensor_shape(inp), dtype=np.float32)
    opsets = model.get_opset_imports()
    onnxruntime.set_default_logger_severity(4)  # the failure is raised below; onnxruntime need not log it
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for node in model.graph.node:
                try:
                    execute_node(node, context, model.graph, opsets.get(node.domain, get_preferred_qonnx_opset()))
                except Exception as err:  # noqa: BLE001 - onnxruntime and qonnx raise many types
                    text = " ".join(str(err).split())[:300]
                    _fail(where_, f"node {where(node)} cannot be executed by QONNX: {type(err).__name__}: {text}")
    finally:
        onnxruntime.set_default_logger_severity(2)  # onnxruntime's default: warnings
