"""Tidy-up passes: shapes and datatypes, constant folding, no-op removal, readable unique names.

Every pass has ``apply(model) -> (model, changed)``; :func:`fixed_point` repeats a list of passes
until none of them changes the graph.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError


class Pass(Protocol):
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]: ...


def fixed_point(model: ModelWrapper, passes: Sequence[Pass], limit: int = 100) -> ModelWrapper:
    """Apply ``passes`` in order, again and again, until a whole round changes nothing.

    Within a round each pass rewrites every match (it is applied until it no longer changes the
    graph, at most a few times the number of nodes), so the number of rounds does not grow with
    the size of the graph: a residual network of many blocks takes as few rounds as one block."""
    for _ in range(limit):
        changed_any = False
        for p in passes:
            for _ in range(4 * len(model.graph.node) + 16):
                model, changed = p.apply(model)
                if not changed:
                    break
                changed_any = True
            else:
                raise FlowError(
                    f"pass {type(p).__name__} still rewrites the graph after {4 * len(model.graph.node) + 16} "
                    "matches in one round (a pass that undoes itself?)"
                )
        if not changed_any:
            return model
    names = ", ".join(type(p).__name__ for p in passes)
    raise FlowError(f"passes {names} did not reach a fixed point within {limit} rounds")


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class InferShapesAndTypes:
    """Annotate every tensor with its shape (ONNX + qonnx custom-op shape inference) and its
    qonnx DataType. Never changes the computation; reports ``changed=False``."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.transformation.infer_datatypes import InferDataTypes
        from qonnx.transformation.infer_shapes import InferShapes

        with _quiet():
            model = model.transform(InferShapes()).transform(InferDataTypes())
        _float_clips(model)
        return model, False


# ops whose output qonnx types from their inputs' types (an integer output only from integer inputs)
_TYPED_FROM_INPUTS = frozenset(
    {"Add", "Sub", "Mul", "MatMul", "Gemm", "Conv", "Clip", "Reshape", "Flatten", "Transpose", "MaxPool",
     "Squeeze", "Unsqueeze", "Pad", "Concat", "Identity"}
)  # fmt: skip


def _float_clips(model: ModelWrapper) -> None:
    """qonnx passes an integer type through Clip whatever its bounds; a Clip of an integer tensor
    to a non-integer bound yields floats, so its output is FLOAT32, and so is every tensor typed
    from it."""
    from qonnx.core.datatype import DataType

    def floats(name: str) -> bool:
        init = model.get_initializer(name)
        if init is not None:
            return not np.array_equal(init, np.round(init))
        return not model.get_tensor_datatype(name).is_integer()

    changed = True
    while changed:
        changed = False
        for node in model.graph.node:
            if node.op_type not in _TYPED_FROM_INPUTS or not model.get_tensor_datatype(node.output[0]).is_integer():
                continue
            data = [i for i in node.input if i and not (node.op_type in ("Reshape", "Pad") and i != node.input[0])]
            if any(floats(i) for i in data):
                model.set_tensor_datatype(node.output[0], DataType["FLOAT32"])
                changed = True


class FoldConstantOps:
    """Replace nodes whose inputs are all constants by their result, except quantizers (Quant,
    BipolarQuant, Trunc, MultiThreshold), whose integer form the streamlining needs."""

    KEEP = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.transformation.fold_constants import FoldConstants

        before = len(model.graph.node)
        with _quiet():
            model = model.transform(FoldConstants(exclude_op_types=list(self.KEEP)))
        return model, len(model.graph.node) != before


class FoldQuantizedConstants:
    """Replace a Quant / BipolarQuant of constants whose users are all elementwise ops (a quantized
    bias Add, as QKeras exports write it; a quantized constant scale) by its value, computed by qonnx
    as the reference computes it. A quantized weight (used by MatMul / Gemm / Conv) stays: its integer
    form is what the streamlining lowers."""

    ELEMENTWISE = ("Add", "Sub", "Mul", "Div")

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.custom_op.registry import getCustomOp

        outputs = {o.name for o in model.graph.output}
        for node in model.graph.node:
            if node.op_type not in ("Quant", "BipolarQuant") or node.output[0] in outputs:
                continue
            if any(model.get_initializer(i) is None for i in node.input if i):
                continue
            users = model.find_consumers(node.output[0]) or []
            if not users or any(u.op_type not in self.ELEMENTWISE for u in users):
                continue
            ctx = {i: model.get_initializer(i) for i in node.input if i}
            with _quiet():
                getCustomOp(node).execute_node(ctx, model.graph)
            model.set_initializer(node.output[0], np.asarray(ctx[node.output[0]], dtype=np.float32))
            model.graph.node.remove(node)
            return model, True
        return model, False


class RemoveNoOps:
    """Remove Identity nodes, Mul / Div by a constant 1, Add / Sub of a constant 0 and Reshape /
    Flatten / Squeeze / Unsqueeze to the shape the tensor already has. Does not apply to a node
    that produces the graph output."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        outputs = {o.name for o in model.graph.output}
        for node in list(model.graph.node):
            if node.output[0] in outputs or not node.input:
                continue
            if self._is_noop(model, node):
                src, dst = node.input[0], node.output[0]
                for other in model.graph.node:
                    for i, name in enumerate(other.input):
                        if name == dst:
                            other.input[i] = src
                model.graph.node.remove(node)
                return model, True
        return model, False

    @staticmethod
    def _is_noop(model: ModelWrapper, node) -> bool:
        op = node.op_type
        if op == "Identity":
            return True
        if op in ("Mul", "Div", "Add", "Sub") and len(node.input) == 2:
            c = model.get_initializer(node.input[1])
            if c is None or model.get_initializer(node.input[0]) is not None:
                return False
            neutral = 1.0 if op in ("Mul", "Div") else 0.0
            in_shape = model.get_tensor_shape(node.input[0])
            out_shape = model.get_tensor_shape(node.output[0])
            return bool(np.all(c == neutral)) and in_shape == out_shape
        if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            in_shape = model.get_tensor_shape(node.input[0])
            return in_shape is not None and in_shape == model.get_tensor_shape(node.output[0])
        return False


class GiveReadableNames:
    """Unique node names ``<OpType>_<i>`` and tensor names derived from them; reports
    ``changed=False`` (names do not change the computation)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

        _provisional_names(model)
        with _quiet():
            model = model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
        return model, False


def _provisional_names(model: ModelWrapper) -> None:
    """Give every inner tensor a name qonnx's readable names (``<node>_param<i>``, ``<node>_out<i>``)
    cannot take: renaming in node order after the order changed (a pass inserted nodes) would
    otherwise give a tensor the name another still has."""
    keep = {t.name for t in model.graph.input} | {t.name for t in model.graph.output}
    names = {i.name for i in model.graph.initializer} | {o for n in model.graph.node for o in n.output if o}
    new = {name: f"t{i}~" for i, name in enumerate(sorted(names - keep))}
    for init in model.graph.initializer:
        init.name = new.get(init.name, init.name)
    for node in model.graph.node:
        node.input[:] = [new.get(i, i) for i in node.input]
        node.output[:] = [new.get(o, o) for o in node.output]
    for vi in model.graph.value_info:
        vi.name = new.get(vi.name, vi.name)
    for ann in model.graph.quantization_annotation:
        ann.tensor_name = new.get(ann.tensor_name, ann.tensor_name)


class RemoveUnused:
    """Drop initializers and value annotations no node uses any more."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.transformation.general import RemoveUnusedTensors

        before = len(model.graph.initializer)
        model = model.transform(RemoveUnusedTensors())
        return model, len(model.graph.initializer) != before


def tidy(model: ModelWrapper) -> ModelWrapper:
    """The tidy-up: fold and remove to a fixed point, then names, shapes and datatypes."""
    model = fixed_point(
        model, [InferShapesAndTypes(), FoldConstantOps(), FoldQuantizedConstants(), RemoveNoOps(), RemoveUnused()]
    )
    model, _ = GiveReadableNames().apply(model)
    model, _ = InferShapesAndTypes().apply(model)
    return model
