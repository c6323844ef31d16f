"""Per-class affine maps before label selection, made exact in integers.

A classifier head computes ``logit_c = a_c * acc_c + b_c`` from the integer accumulators of its last
layer, with one scale ``a_c`` and offset ``b_c`` per class (a bias off the accumulator's grid,
per-channel weight scales, a per-class Add). The class with the largest logit is the class with the
largest integer ``v_c = M_c * acc_c * 2**shift + N_c`` for the integers :func:`class_order_map`
returns: the constants are composed as exact rationals (``fractions.Fraction`` of the float
constants), so ``v`` orders the classes exactly as the real-valued logits, ties included (ties go to
the lowest index, as ``numpy.argmax`` and ``hw/label_select.sv`` break them).

- One scale ``a`` for all classes: ``logit_c / |a| = s * acc_c + q_c + f_c`` with ``s = sign(a)``,
  ``q_c`` an integer and ``0 <= f_c < 1``. Two classes compare as the pairs ``(s * acc + q, f)``
  compare lexicographically, so ``v_c = s * acc_c * 2**R + q_c * 2**R + rank(f_c)`` with ``R`` bits
  for the ranks of the distinct ``f_c``: no multiplier, and a few bits more than the accumulator
  whatever the offsets' denominators.
- Scales that differ between classes: ``M_c = a_c * D``, ``N_c = b_c * D`` over the common
  denominator ``D``, divided by their gcd. Negative and zero scales need no special case.

Analyses only: the passes (flows/passes/streamline_select.py, flows/passes/hw_labels.py) emit the map as integer
Mul / Add nodes before the TopK, and :class:`~qnnflow.flows.passes.hw_labels.InferLabelSelect` folds them
into the LabelSelect layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

import numpy as np
from qnnflow.flows.ir.graph import SHAPE_OPS
from qnnflow.flows.ir.kernels import signed_width

# the widest value v the label select compares: beyond it the per-class constants (denominators of
# float scales that differ by many octaves) cost more than the host-side argmax of --logits saves
MAX_VALUE_BITS = 48
AFFINE_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization")
# ops that pass the accumulator through unchanged
VIEW_OPS = (*SHAPE_OPS, "Identity")


@dataclass(frozen=True)
class ClassMap:
    """``v_c = mul[c] * x * 2**shift + offset[c]`` orders the classes as the logits do."""

    mul: tuple[int, ...]
    offset: tuple[int, ...]
    shift: int

    def value_range(self, lo: int, hi: int) -> tuple[int, int]:
        """The least and the largest ``v`` over every class and every ``x`` in [lo, hi]."""
        ends = [(m * x << self.shift) + n for m, n in zip(self.mul, self.offset, strict=True) for x in (lo, hi)]
        return min(ends), max(ends)


def exact(v) -> Fraction:
    """The exact rational value of a float (or integer) constant; ValueError if it is not finite."""
    if isinstance(v, int | np.integer):
        return Fraction(int(v))
    if not np.isfinite(v):
        raise ValueError(f"a scale or offset of the logits is {float(v)}, not a finite number")
    return Fraction(float(v))


def class_order_map(a: list[Fraction], b: list[Fraction], lo: int, hi: int, what: str) -> ClassMap:
    """Integer per-class map for logits ``a[c] * x + b[c]``, x in [lo, hi] (see the module docstring).

    ValueError naming ``what`` if the value would need more than :data:`MAX_VALUE_BITS` bits."""
    if len(set(a)) == 1 and a[0] != 0:
        cmap = _uniform(a[0], b)
    else:
        cmap = _general(a, b)
    vlo, vhi = cmap.value_range(lo, hi)
    bits = signed_width(vlo, vhi)
    if bits > MAX_VALUE_BITS:
        raise ValueError(
            f"{what}: the per-class scales and offsets before label selection compare exactly only as "
            f"{bits}-bit integers (accumulator {lo}..{hi}, multipliers up to {max(map(abs, cmap.mul))}); "
            f"the label select takes at most {MAX_VALUE_BITS} bits. Compile with --logits to get the "
            f"integer logits and select the label on the host"
        )
    return cmap


def _uniform(a: Fraction, b: list[Fraction]) -> ClassMap:
    beta = [bc / abs(a) for bc in b]
    q = [x.numerator // x.denominator for x in beta]  # floor
    frac = [x - qc for x, qc in zip(beta, q, strict=True)]
    ranks = {f: i for i, f in enumerate(sorted(set(frac)))}
    shift = (len(ranks) - 1).bit_length()
    offset = [(qc << shift) + ranks[f] for qc, f in zip(q, frac, strict=True)]
    base = min(offset)
    return ClassMap((1 if a > 0 else -1,) * len(b), tuple(n - base for n in offset), shift)


def _general(a: list[Fraction], b: list[Fraction]) -> ClassMap:
    den = 1
    for v in (*a, *b):
        den = den * v.denominator // gcd(den, v.denominator)
    mul = [int(v * den) for v in a]
    off = [int(v * den) for v in b]
    base = (min(off) + max(off)) // 2  # a common offset changes no comparison
    off = [n - base for n in off]
    g = 0
    for v in (*mul, *off):
        g = gcd(g, v)
    if g > 1:
        mul, off = [m // g for m in mul], [n // g for n in off]
    return ClassMap(tuple(mul), tuple(off), 0)


def compose(steps, classes: int) -> tuple[list[Fraction], list[Fraction]] | None:
    """Exact per-class ``(a, b)`` of ``y = step_k(... step_1(x))`` for affine steps given as
    ``(op_type, operands, attrs)``: operands in input order, ``None`` for the data input and (C,)
    or scalar arrays for constants (BatchNormalization: scale, B, mean, var). None if a step is not
    an affine map of its data input (e.g. Relu, a constant divided by the data)."""
    a = [Fraction(1)] * classes
    b = [Fraction(0)] * classes

    def per_class(v) -> list[Fraction]:
        arr = np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), (classes,))
        return [exact(x) for x in arr]

    for op, operands, attrs in steps:
        if op in VIEW_OPS:
            continue
        if op not in AFFINE_OPS:
            return None
        if op == "BatchNormalization":
            scale, bias, mean, var = (np.asarray(o, dtype=np.float64) for o in operands[1:5])
            s = np.broadcast_to(scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5))), (classes,))
            m, t = per_class(s), per_class(bias)
            mu = per_class(mean)
            a = [x * y for x, y in zip(a, m, strict=True)]
            b = [(x - u) * y + z for x, u, y, z in zip(b, mu, m, t, strict=True)]
            continue
        data_first = operands[0] is None
        c = per_class(operands[1] if data_first else operands[0])
        if op == "Mul":
            a, b = [x * y for x, y in zip(a, c, strict=True)], [x * y for x, y in zip(b, c, strict=True)]
        elif op == "Add":
            b = [x + y for x, y in zip(b, c, strict=True)]
        elif op == "Sub" and data_first:
            b = [x - y for x, y in zip(b, c, strict=True)]
        elif op == "Sub":
            a, b = [-x for x in a], [y - x for x, y in zip(b, c, strict=True)]
        elif op == "Div" and data_first and all(y != 0 for y in c):
            a, b = [x / y for x, y in zip(a, c, strict=True)], [x / y for x, y in zip(b, c, strict=True)]
        else:
            return None
    return a, b


def per_class(t) -> bool:
    """True if the function from accumulator to logit of the IntTensor ``t`` (flows/passes/tail.py) differs
    between classes, or is constant in some (a zero scale): label selection then needs a map."""
    if not t.uniform or np.any(np.asarray(t.A) == 0):
        return True
    for step in t.tail:
        ops = [np.asarray(o) for o in step.operands if o is not None]
        if any(o.size > 1 and not np.all(o == o.ravel()[0]) for o in ops):
            return True
    return False


def affine_tail(t) -> bool:
    """True if the tail of the IntTensor ``t`` is affine per class (composed exactly by :func:`compose`)."""
    return not t.bipolar and all(s.node.op_type in AFFINE_OPS + VIEW_OPS for s in t.tail)


def tail_class_map(t, what: str, op_type: str) -> ClassMap:
    """The map of the logits ``tail(A * q + B)`` of the IntTensor ``t``; ValueError naming ``what``
    if the tail is not affine per class, or the map too wide."""
    from qnnflow.flows.ir.reference import node_attrs

    steps = [("Mul", [None, t.A], {}), ("Add", [None, t.B], {})]
    steps += [(s.node.op_type, s.operands, node_attrs(s.node)) for s in t.tail]
    ab = compose(steps, t.channels) if affine_tail(t) else None
    if ab is None:
        ops = sorted({s.node.op_type for s in t.tail} - set(AFFINE_OPS + VIEW_OPS))
        found = f"{', '.join(ops)} in it" if ops else "a bipolar input"
        raise ValueError(
            f"{what}: label selection with scales or offsets that differ between classes needs the ops "
            f"between the last MatMul / Conv and {op_type} to be affine per class (Mul, Add, Sub, Div "
            f"by constants, BatchNormalization); found {found}. Compile with --logits to get the logits "
            f"and select the label on the host"
        )
    return class_order_map(*ab, int(np.min(t.lo)), int(np.max(t.hi)), what)


def chain_class_map(model, chain: list, classes: int, rng: tuple[int, int], what: str) -> ClassMap:
    """The map of a chain of Mul / Add / Sub / Div nodes with one constant operand each (and
    Identity) from the integer tensor to the logits, in graph ``model``."""
    from qnnflow.flows.ir.graph import where

    steps = []
    for n in chain:
        if n.op_type == "Identity":
            continue
        ops = [model.get_initializer(i) for i in n.input]  # None marks the data input
        const = next(v for v in ops if v is not None)
        if const.size not in (1, classes) or (const.size > 1 and const.shape[-1] != classes):
            raise ValueError(f"{where(n)}: a constant of shape {list(const.shape)} is not one value per class")
        steps.append((n.op_type, [None if v is None else np.asarray(v).reshape(-1) for v in ops], {}))
    ab = compose(steps, classes)
    if ab is None:
        raise ValueError(f"{what}: a constant divided by the logits is not affine in them; compile with --logits")
    return class_order_map(*ab, *rng, what)


def map_nodes(model, namer, acc: str, cmap: ClassMap, lo: int, hi: int, shape: list[int]):
    """Integer Mul / Add nodes computing ``v`` from the accumulator tensor ``acc`` (values in
    [lo, hi]); per-class constants are shaped ``shape`` (1 except the class axis) to broadcast.
    Returns (nodes, the tensor v, {new tensor: DataType}); constants go into ``model``."""
    from onnx import helper
    from qnnflow.flows.ir.graph import add_const, datatype_for_range

    nodes, types, cur = [], {}, acc
    factor = [m << cmap.shift for m in cmap.mul]

    def const(base: str, values: list[int]) -> str:
        arr = np.array(values[:1] if len(set(values)) == 1 else values, dtype=np.float64)
        arr = arr.reshape(()) if arr.size == 1 else arr.reshape(shape)
        return add_const(model, namer, base, arr, datatype_for_range(min(values), max(values)))

    if any(f != 1 for f in factor):
        out = namer("class_scaled")
        nodes.append(helper.make_node("Mul", [cur, const("class_mul", factor)], [out], name=namer("ClassMul")))
        ends = [f * x for f in factor for x in (lo, hi)]
        types[out] = datatype_for_range(min(ends), max(ends))
        cur = out
    if any(n != 0 for n in cmap.offset):
        out = namer("class_value")
        offset = const("class_offset", list(cmap.offset))
        nodes.append(helper.make_node("Add", [cur, offset], [out], name=namer("ClassOffset")))
        types[out] = datatype_for_range(*cmap.value_range(lo, hi))
        cur = out
    return nodes, cur, types


def fold_map(mul: list[int], offset: list[int]) -> tuple[list[int], list[int], int]:
    """The LabelSelect attributes (ClassMul, ClassOffset, ValueShift) of the constants of the Mul /
    Add nodes :func:`map_nodes` made: a factor of +-2**R for every class is a shift (no multiplier)."""
    shift = 0
    if len(set(mul)) == 1 and mul[0] != 0:
        m = abs(mul[0])
        if m & (m - 1) == 0:
            shift, mul = m.bit_length() - 1, [1 if mul[0] > 0 else -1]
    return mul, offset, shift
