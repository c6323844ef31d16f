"""What storing a symmetric block's weight tensor once would save (an analysis; rewrites nothing).

A symmetric residual block uses one tensor K (C x C x 3 x 3) in a convolution and in a transposed
convolution; after :mod:`qnnflow.flows.passes.conv_transpose` these are two MVAUs, each with its own
weight memory. In a dataflow graph, :func:`shared_weight_pairs` finds MVAU pairs whose integer
weight matrices hold the same tensor (rows of W1: output channels o, columns the window (ky, kx, c)
in the graph's channels-last order; W2[c, (ky, kx, o)] = +-W1[o, (2 - ky, 2 - kx, c)], each row
possibly negated by the streamlining, which moves a negative scale of the following BatchNorm or
quantizer into the weights) and the memory bits of the two copies against one.

Sharing one memory is possible when both MVAUs read whole words of the same elements: with PE = SIMD
= 1 each word is one weight, and a dual-port block RAM serves both address orders at once (the two
layers run concurrently in the pipeline). With folding, a word of the convolution holds a
PE x SIMD block K[o-block, c-block] at one kernel position, and the transposed MVAU reads the same
block transposed if its PE equals the convolution's SIMD and its SIMD the convolution's PE (and SIMD
does not span kernel positions); otherwise the words differ and a shared memory needs a
re-arrangement stage. The hardware does not share memories yet; this measures what it would save.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def _attr(node, name):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None


def _window_matrix(w: np.ndarray, k: int = 3) -> np.ndarray | None:
    """(MH, MW) with MW = k * k * C_in -> (MH, k, k, C_in), or None when MW is not a k x k window."""
    mh, mw = w.shape
    if mw % (k * k):
        return None
    return w.reshape(mh, k, k, mw // (k * k))


def _signs_factor(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether ``got[c, :, :, o] == s2[c] * s1[o] * want[c, :, :, o]`` for some signs s1, s2 (|got| ==
    |want| given): the streamlining negates whole rows of either weight matrix, nothing else."""
    prod = np.sign(got * want)  # (c, ky, kx, o); 0 where the weight is 0
    signs: dict[tuple[int, int], float] = {}
    for c, o in zip(*np.nonzero(np.any(prod != 0, axis=(1, 2))), strict=True):
        vals = np.unique(prod[c, :, :, o][prod[c, :, :, o] != 0])
        if len(vals) != 1:
            return False
        signs[(int(c), int(o))] = float(vals[0])
    # a bipartite graph of rows c (of W2) and o (of W1), edges labelled by their sign: consistent signs
    # exist iff a walk over every connected component never meets a contradiction
    adj: dict[tuple[str, int], list[tuple[tuple[str, int], float]]] = {}
    for (c, o), v in signs.items():
        adj.setdefault(("c", c), []).append((("o", o), v))
        adj.setdefault(("o", o), []).append((("c", c), v))
    sign: dict[tuple[str, int], float] = {}
    for start in adj:
        if start in sign:
            continue
        sign[start] = 1.0
        todo = [start]
        while todo:
            u = todo.pop()
            for w, v in adj[u]:
                if w not in sign:
                    sign[w] = v * sign[u]
                    todo.append(w)
                elif sign[w] != v * sign[u]:
                    return False
    return True


def shared_weight_pairs(model: ModelWrapper) -> list[dict]:
    """MVAU pairs (in graph order) whose weights are one 3 x 3 tensor and its transposed, flipped use."""
    mvaus = [n for n in model.graph.node if n.op_type == "MVAU"]
    pairs = []
    for a, b in zip(mvaus, mvaus[1:], strict=False):
        wa, wb = model.get_initializer(a.input[1]), model.get_initializer(b.input[1])
        if wa is None or wb is None or wa.shape != wb.shape or wa.shape[0] * 9 != wa.shape[1]:
            continue
        ra, rb = _window_matrix(wa), _window_matrix(wb)
        # W2[c, ky, kx, o] against W1[o, 2 - ky, 2 - kx, c], up to a sign per row of W1 and per row of W2
        expect = ra[:, ::-1, ::-1, :].transpose(3, 1, 2, 0)
        if not np.array_equal(np.abs(rb), np.abs(expect)) or not _signs_factor(rb, expect):
            continue
        bits = DataType[_attr(a, "weightDataType").decode()].bitwidth()
        pairs.append({
            "conv": a.name, "transposed": b.name, "shape": list(wa.shape), "weight_bits": bits,
            "fold_conv": {"PE": _attr(a, "PE"), "SIMD": _attr(a, "SIMD")},
            "fold_transposed": {"PE": _attr(b, "PE"), "SIMD": _attr(b, "SIMD")},
            "bits_two_copies": 2 * wa.size * bits, "bits_one_copy": wa.size * bits,
            "words_compatible": _attr(b, "PE") == _attr(a, "SIMD") and _attr(b, "SIMD") == _attr(a, "PE"),
        })  # fmt: skip
    return pairs


def shared_weight_summary(model: ModelWrapper) -> dict:
    """The pairs and the weight memory of all MVAUs with and without one copy per shared tensor."""
    pairs = shared_weight_pairs(model)
    total = 0
    for n in model.graph.node:
        if n.op_type == "MVAU":
            w = model.get_initializer(n.input[1])
            total += w.size * DataType[_attr(n, "weightDataType").decode()].bitwidth()
    saved = sum(p["bits_one_copy"] for p in pairs)
    return {"pairs": pairs, "mvau_weight_bits": total, "bits_saved_by_sharing": saved,
            "mvau_weight_bits_shared": total - saved}  # fmt: skip
