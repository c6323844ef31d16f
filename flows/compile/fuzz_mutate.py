"""Malformed (or oddly valid) variants of a fuzz case (:mod:`qnnflow.flows.compile.fuzz`): the
compiler must compile each or give a clear error."""

from __future__ import annotations

import copy

import numpy as np
from onnx import TensorProto
from qnnflow.flows.compile.fuzz import FuzzCase
from qonnx.core.modelwrapper import ModelWrapper

MUTATIONS = ("drop-initializer", "drop-node", "dangling-input", "poke-constant", "swap-inputs", "poke-attribute")


def mutate(case: FuzzCase, rng: np.random.Generator) -> tuple[FuzzCase, str]:
    """A copy of ``case`` with one random structural change (an initializer or node removed, an
    input renamed to a tensor that does not exist, a constant element set to NaN / 0 / -1 / 1e30 /
    33, the first two inputs of a node swapped, an integer attribute changed). The result may be
    malformed or still valid; either way the compiler must give a clear error or compile it."""
    from onnx import AttributeProto, numpy_helper

    proto = copy.deepcopy(case.model.model)
    g = proto.graph
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    node = g.node[int(rng.integers(len(g.node)))]
    if kind == "swap-inputs":  # on a node that has two inputs
        node = [n for n in g.node if len(n.input) > 1][int(rng.integers(sum(len(n.input) > 1 for n in g.node)))]
    if kind == "poke-attribute":  # on a node that has an integer attribute
        with_ints = [n for n in g.node if any(a.type == AttributeProto.INT for a in n.attribute)]
        node = with_ints[int(rng.integers(len(with_ints)))]
    if kind == "drop-initializer":
        init = g.initializer[int(rng.integers(len(g.initializer)))]
        what = f"{kind} {init.name}"
        g.initializer.remove(init)
    elif kind == "drop-node":
        what = f"{kind} {node.name}"
        g.node.remove(node)
    elif kind == "dangling-input":
        node.input[int(rng.integers(len(node.input)))] = "no_such_tensor"
        what = f"{kind} {node.name}"
    elif kind == "poke-constant":
        floats = [i for i in g.initializer if i.data_type == TensorProto.FLOAT]
        init = floats[int(rng.integers(len(floats)))]
        arr = numpy_helper.to_array(init).copy()
        value = float(rng.choice([np.nan, 0.0, -1.0, 1e30, 33.0]))
        arr.flat[int(rng.integers(arr.size))] = value
        init.CopyFrom(numpy_helper.from_array(arr, init.name))
        what = f"{kind} {init.name}={value:g}"
    elif kind == "swap-inputs":
        node.input[0], node.input[1] = node.input[1], node.input[0]
        what = f"{kind} {node.name}"
    else:
        ints = [a for a in node.attribute if a.type == AttributeProto.INT]
        attr = ints[int(rng.integers(len(ints)))]
        attr.i = int(rng.choice([v for v in (-1, 0, 1, 2, 7) if v != attr.i]))
        what = f"{kind} {node.name}.{attr.name}={attr.i}"
    model = ModelWrapper(proto, fix_missing_initializer_valueinfo=False)  # as it is: no repairs
    return FuzzCase(case.seed, model, case.inputs, [*case.features, f"[{what}]"], case.logits), what
