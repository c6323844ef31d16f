"""Import of QONNX / FINN-ONNX models, and the check that every op is one the compiler lowers.

Accepted sources: Brevitas QONNX exports, QKeras-style exports (channels-last inputs, Transpose
before Conv), and FINN-ONNX graphs (MultiThreshold + integer MatMul with datatype annotations; the
old ``finn`` domains are renamed by qonnx's ``ModelWrapper`` on load).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx
from qnnflow.flows.graph import HW_DOMAIN
from qonnx.core.modelwrapper import ModelWrapper

# op type -> what the compiler does with it (shown in the unsupported-op error)
SUPPORTED_OPS: dict[str, str] = {
    "Quant": "integer quantizer (weights, activations, inputs)",
    "BipolarQuant": "sign quantizer",
    "MultiThreshold": "FINN-ONNX activation",
    "MatMul": "fully connected layer",
    "Gemm": "fully connected layer",
    "Conv": "2D convolution (groups 1)",
    "BatchNormalization": "folded into thresholds",
    "Relu": "folded into thresholds",
    "Clip": "hard tanh, folded into thresholds",
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
    "TopK": "top-k label selection",
    "ArgMax": "top-1 label selection",
}


def supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_OPS))


def check_supported(model: ModelWrapper) -> None:
    """Raise one ValueError naming every node whose op type the compiler cannot lower."""
    bad = [n for n in model.graph.node if n.op_type not in SUPPORTED_OPS and n.domain != HW_DOMAIN]
    if bad:
        listing = "; ".join(f"{n.name} ({n.op_type})" for n in bad)
        raise ValueError(
            f"{len(bad)} node(s) with unsupported op types: {listing}. Supported op types: {supported_list()}"
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
        try:
            proto = onnx.load(str(path))
        except Exception as err:  # noqa: BLE001 - protobuf raises several unrelated types
            raise ValueError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
        where = str(path)
    elif isinstance(source, ModelWrapper):
        proto, where = source.model, "model"
    else:
        proto, where = source, "model"
    if len(proto.graph.node) == 0:
        raise ValueError(f"{where}: the ONNX graph has no nodes")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = ModelWrapper(proto)
        model = cleanup_model(model)
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        ins = [i.name for i in model.graph.input]
        outs = [o.name for o in model.graph.output]
        raise ValueError(
            f"{where}: the graph must have exactly one input and one output, "
            f"found inputs {ins}, outputs {outs}"
        )
    check_supported(model)
    return model
