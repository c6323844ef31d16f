"""Small helpers over QONNX ``ModelWrapper`` graphs, shared by the passes.

Only graph bookkeeping lives here (names, producers / consumers, constants, node construction);
no pass logic and no file I/O.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

# Domain of the hardware layers (flows/ir/layers.py); qonnx finds the classes through this module path.
# the domain of the hardware layers in every graph the flow writes: a file-format name, kept as it
# was when the layers lived in qnnflow.flows.layers (dataflow.onnx files of earlier builds still load)
HW_DOMAIN = "qnnflow.flows.layers"
QONNX_DOMAIN = "qonnx.custom_op.general"
# the project's own QONNX custom ops (TVSmooth): the domain is the module that holds them, so
# qonnx's registry imports it to find them
TV_DOMAIN = "qnnflow.flows.ir.custom_ops"
# ops that only reshape a tensor: a stream passes through them unchanged (a view)
SHAPE_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


# a node's name in the model file, kept in its doc_string when the import renames it (qonnx's
# cleanup gives every node a name <OpType>_<i>): messages name the node the user knows
_FILE_NAME = "[qnnflow: named {!r} in the model file]"
_FILE_NAME_RE = re.compile(r"\[qnnflow: named '(.*)' in the model file\]$")


def remember_names(graph) -> None:
    """Record each node's name (where it is non-empty and unique) for :func:`where`."""
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.name] = counts.get(node.name, 0) + 1
    for node in graph.node:
        if node.name and counts[node.name] == 1 and not _FILE_NAME_RE.search(node.doc_string):
            sep = "\n" if node.doc_string else ""
            node.doc_string = f"{node.doc_string}{sep}{_FILE_NAME.format(node.name)}"


def own_doc(node: NodeProto) -> str:
    """A node's doc_string without the name :func:`remember_names` keeps there."""
    return _FILE_NAME_RE.sub("", node.doc_string or "").strip()


def where(node: NodeProto) -> str:
    """How an error names a node: its name in the model file (else in the graph) and op type."""
    m = _FILE_NAME_RE.search(node.doc_string) if node.doc_string else None
    return f"{m.group(1) if m else node.name} ({node.op_type})"


def redirect(model: ModelWrapper, tensor: str, new: str) -> None:
    """The node producing ``tensor`` writes ``new`` instead, and every node reading it reads ``new``."""
    p = model.find_producer(tensor)
    p.output[list(p.output).index(tensor)] = new
    for other in model.graph.node:
        for i, name in enumerate(other.input):
            if name == tensor:
                other.input[i] = new


def bypass(model: ModelWrapper, node: NodeProto, src: str) -> None:
    """Remove ``node``; its readers read ``src`` instead. If ``node`` wrote a graph output, the
    producer of ``src`` writes that output instead (so the output keeps its name)."""
    dst = node.output[0]
    for other in model.graph.node:
        for i, name in enumerate(other.input):
            if name == dst:
                other.input[i] = src
    model.graph.node.remove(node)
    if any(o.name == dst for o in model.graph.output):
        redirect(model, src, dst)


def const(model: ModelWrapper, name: str) -> np.ndarray | None:
    """The value of an initializer, or None if the tensor is computed at run time."""
    return model.get_initializer(name)


def producer(model: ModelWrapper, tensor: str) -> NodeProto | None:
    return model.find_producer(tensor)


def consumers(model: ModelWrapper, tensor: str) -> list[NodeProto]:
    return list(model.find_consumers(tensor) or [])


class Namer:
    """Fresh, readable tensor and node names that do not clash with those already in a graph."""

    def __init__(self, model: ModelWrapper):
        self.used = {n.name for n in model.graph.node}
        for vi in itertools.chain(model.graph.input, model.graph.output, model.graph.value_info):
            self.used.add(vi.name)
        for init in model.graph.initializer:
            self.used.add(init.name)
        for n in model.graph.node:
            self.used.update(n.input)
            self.used.update(n.output)

    def __call__(self, base: str) -> str:
        for i in itertools.count():
            name = f"{base}_{i}"
            if name not in self.used:
                self.used.add(name)
                return name
        raise AssertionError("unreachable")


def declare_domains(model: ModelWrapper) -> ModelWrapper:
    """Add an opset import (version 1) for every custom node domain the graph uses and does not
    declare, so that the graph the flow writes passes ``onnx.checker``."""
    have = {o.domain for o in model.model.opset_import}
    for domain in sorted({n.domain for n in model.graph.node} - have - {"", "ai.onnx"}):
        model.model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def add_const(model: ModelWrapper, namer: Namer, base: str, value: np.ndarray, dtype: DataType | None = None) -> str:
    """Add an initializer and return its name: float32, unless it is an int64 shape, or integers
    float32 cannot hold exactly (magnitude 2**24 or more: float64)."""
    name = namer(base)
    arr = np.asarray(value)
    if arr.dtype != np.int64:
        wide = arr.size and np.abs(arr).max() >= 1 << 24 and np.all(arr == np.round(arr))
        arr = arr.astype(np.float64 if wide else np.float32)
    model.set_initializer(name, arr)
    if dtype is not None:
        model.set_tensor_datatype(name, dtype)
    return name


def make_node(op_type: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> NodeProto:
    return helper.make_node(op_type, inputs, outputs, name=name, domain=domain, **attrs)


def datatype_for_range(lo: int, hi: int) -> DataType:
    """The narrowest integer DataType holding [lo, hi] (BIPOLAR is chosen by the caller)."""
    if lo >= 0:
        bits = max(1, int(hi).bit_length())
        return DataType["BINARY"] if bits == 1 else DataType[f"UINT{bits}"]
    if lo == -1 and hi == 1:
        return DataType["TERNARY"]
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return DataType[f"INT{max(bits, 2)}"]


def topo_nodes(model: ModelWrapper) -> list[NodeProto]:
    """Nodes in an order where every node comes after the producers of its inputs."""
    produced = {}
    for n in model.graph.node:
        for o in n.output:
            produced[o] = n
    order: list[NodeProto] = []
    seen: set[int] = set()

    def visit(n: NodeProto) -> None:
        stack = [(n, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in seen:
                continue
            if done:
                seen.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            for i in node.input:
                p = produced.get(i)
                if p is not None and id(p) not in seen:
                    stack.append((p, False))

    for n in model.graph.node:
        visit(n)
    return order
