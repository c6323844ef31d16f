"""Label selection in hardware: the passes that end a classifier in a ``LabelSelect`` layer.

- :class:`FinalScaleToLabelSelect`: the float ops after the last accumulator (the logits' scale
  and offset) + argmax -> TopK on the integer accumulator, when that scale is one strictly
  increasing function (checked on every accumulator value), else on the exact per-class integer
  map of flows/passes/label_map.py;
- :class:`InferLabelSelect`: TopK on integers (after a per-class map's Mul / Add) -> LabelSelect.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir.graph import Namer, add_const, consumers, datatype_for_range, own_doc, where
from qnnflow.flows.ir.layers import LabelSelect
from qnnflow.flows.passes.hw import _range, _replace
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

ELEMENTWISE_FLOAT = ("Mul", "Add", "Sub", "Div", "Identity")




def _slope(model: ModelWrapper, chain: list) -> float:
    """The exact slope of a chain of Mul / Add / Sub / Div by scalar constants (data input first)."""
    a = 1.0
    for n in chain:
        if n.op_type == "Identity":
            continue
        c = float(np.asarray(model.get_initializer(n.input[1])).ravel()[0])
        if n.op_type == "Mul":
            a *= c
        elif n.op_type == "Div":
            a /= c
        elif n.op_type not in ("Add", "Sub"):
            return 0.0
    return a


class FinalScaleToLabelSelect:
    """Matches integer tensor -> chain of Mul / Add / Sub / Div by constants -> graph output (the
    logits). Replaces the chain by TopK(k=1) on the integer tensor, whose index is the class, if the
    constants are scalars and the chain is strictly increasing on every value of the integer's
    datatype (checked by running it); otherwise (per-class constants, a decreasing or flat chain) by
    the exact per-class map of flows/passes/label_map.py, integer Mul / Add, before the TopK. ValueError if
    an operand is not constant, or the map needs more bits than the label select takes. Does not
    apply when the output is already an index."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        out = model.graph.output[0].name
        chain = []
        cur = out
        while True:
            p = model.find_producer(cur)
            if p is None or p.op_type not in ELEMENTWISE_FLOAT:
                break
            chain.append(p)
            cur = p.input[0]
        if all(n.op_type == "Identity" for n in chain):
            return model, False
        dt = model.get_tensor_datatype(cur)
        if not dt.is_integer() or model.find_producer(cur) is None:
            return model, False
        chain.reverse()
        per_class = False
        for n in chain:
            if n.op_type != "Identity":
                c = [model.get_initializer(i) for i in n.input]
                if sum(v is None for v in c) != 1:
                    what = own_doc(n) or f"the final {n.op_type} {where(n)}"
                    raise ValueError(
                        f"{what}: the final scale or offset is not a constant, so the class with the largest "
                        f"integer need not be the class with the largest logit. Compile with --logits (integer "
                        f"logits; take the argmax of the mapped logits on the host)"
                    )
                per_class |= c[0] is not None or c[1].size != 1
        lo, hi = _range(dt)
        if per_class:
            return self._mapped(model, chain, cur, out, (lo, hi))
        if hi - lo > (1 << 22):
            # too many values to run the chain on each: its exact slope must be positive (where the
            # float32 logits of two accumulators round to one value, the verification of the step
            # compares the decisions, ties to the lowest class, with the reference's)
            if _slope(model, chain) <= 0:
                return self._mapped(model, chain, cur, out, (lo, hi))  # decreasing: a multiplier of -1
            return self._to_topk(model, chain, cur, out)
        from qnnflow.flows.ir.execute import Executor

        sub_nodes = [helper.make_node(n.op_type, list(n.input), list(n.output), name=n.name) for n in chain]
        g = helper.make_graph(
            sub_nodes, "final", [helper.make_tensor_value_info(cur, 1, [None, 1])],
            [helper.make_tensor_value_info(out, 1, [None, 1])],
            initializer=[i for i in model.graph.initializer if any(i.name in n.input for n in chain)],
        )  # fmt: skip
        sub = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
        vals = np.asarray(Executor(sub).run(np.arange(lo, hi + 1, dtype=np.float32).reshape(-1, 1))).ravel()
        if np.any(np.diff(vals.astype(np.float64)) <= 0):
            # decreasing, or float32 logits that round two accumulators alike: the exact map decides
            return self._mapped(model, chain, cur, out, (lo, hi))
        return self._to_topk(model, chain, cur, out)

    @staticmethod
    def _to_topk(model: ModelWrapper, chain: list, cur: str, out: str, before: list | None = None):
        namer = Namer(model)
        k = add_const(model, namer, "topk_k", np.array([1], dtype=np.int64))
        values = namer("topk_values")
        topk = helper.make_node("TopK", [cur, k], [values, out], name=namer("LabelSelect"), axis=-1)
        _replace(model, chain, topk)
        if before:  # the per-class map's nodes, in front of the TopK
            nodes = list(model.graph.node)
            i = nodes.index(topk)
            model.graph.ClearField("node")
            model.graph.node.extend(nodes[:i] + before + nodes[i:])
        model.set_tensor_datatype(out, DataType["UINT32"])
        return model, True

    def _mapped(self, model: ModelWrapper, chain: list, cur: str, out: str, rng: tuple[int, int]):
        """Scales or offsets that differ between classes: the chain composed exactly per class, then
        integer Mul / Add nodes (flows/passes/label_map.py) that order the classes as the logits, and TopK."""
        from qnnflow.flows.passes.label_map import chain_class_map, map_nodes

        shape = model.get_tensor_shape(cur)
        classes = int(shape[-1])
        first = next(n for n in chain if n.op_type != "Identity")
        what = own_doc(first) or f"the final {first.op_type} {where(first)}"
        cmap = chain_class_map(model, chain, classes, rng, what)
        nodes, value, types = map_nodes(model, Namer(model), cur, cmap, *rng, [1] * (len(shape) - 1) + [classes])
        for name, dt in types.items():
            model.set_tensor_shape(name, list(shape))
            model.set_tensor_datatype(name, dt)
        return self._to_topk(model, chain, value, out, nodes)


class InferLabelSelect:
    """Matches TopK on an integer tensor whose values output is unused -> LabelSelect(K)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for tk in model.get_nodes_by_op_type("TopK"):
            idt = model.get_tensor_datatype(tk.input[0])
            k = model.get_initializer(tk.input[1])
            if not idt.is_integer() or k is None or consumers(model, tk.output[0]):
                continue
            src, mapped, cmap = _class_map(model, tk.input[0])
            p = model.find_producer(src)
            if p is not None and p.op_type == "MatMul":
                continue  # its MVAU comes first (and sets the datatype)
            if tk.output[0] in {o.name for o in model.graph.output}:
                continue
            labels = model.get_tensor_shape(src)[-1]
            node = LabelSelect.make(
                tk.name,
                [src],
                [tk.output[1]],
                Labels=int(labels),
                K=int(k.ravel()[0]),
                inputDataType=model.get_tensor_datatype(src).name,
                outputDataType=datatype_for_range(0, max(1, labels - 1)).name,
                **cmap,
            )
            _replace(model, mapped + [tk], node)
            model.set_tensor_datatype(tk.output[1], datatype_for_range(0, max(1, labels - 1)))
            return model, True
        return model, False


def _class_map(model: ModelWrapper, tensor: str) -> tuple[str, list, dict]:
    """The integer Mul / Add / Sub by integer constants before a TopK (one reader each): the map of
    flows/passes/label_map.py, and an XNOR layer's popcount-to-dot conversion (2 p - MW) before it. Returns
    the tensor they read, those nodes, and the LabelSelect attributes of their composition."""
    from qnnflow.flows.passes.label_map import fold_map

    def bc(a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
        n = max(len(a), len(b))
        return (a * n if len(a) == 1 else a), (b * n if len(b) == 1 else b)

    nodes, mul, off, cur = [], [1], [0], tensor  # the TopK's input is mul * cur + off
    found = (tensor, 0, mul, off)  # the farthest integer-typed tensor reached (2 p of 2 p - MW is not typed)
    while True:
        p = model.find_producer(cur)
        if p is None or p.op_type not in ("Mul", "Add", "Sub") or len(consumers(model, cur)) != 1:
            break
        c, src = model.get_initializer(p.input[1]), p.input[0]
        if c is None or model.get_initializer(src) is not None or np.any(c != np.round(c)):
            break
        k = [int(v) for v in np.asarray(c, dtype=np.float64).ravel()]
        if p.op_type == "Mul":
            mul, k = bc(mul, k)
            mul = [m * v for m, v in zip(mul, k, strict=True)]
        else:  # Add / Sub: the constant moves into the offset, times the multiplier so far
            sign = 1 if p.op_type == "Add" else -1
            mul_k, k = bc(mul, k)
            off, mk = bc(off, [m * v for m, v in zip(mul_k, k, strict=True)])
            off = [o + sign * v for o, v in zip(off, mk, strict=True)]
        nodes.insert(0, p)
        cur = src
        if model.get_tensor_datatype(src).is_integer():
            found = (cur, len(nodes), mul, off)
    cur, n, mul, off = found
    if not n:
        return tensor, [], {}
    mul, off, shift = fold_map(mul, off)
    return cur, nodes[len(nodes) - n :], {"ClassMul": mul, "ClassOffset": off, "ValueShift": shift}
