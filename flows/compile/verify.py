"""Verification built into the flow: each step's graph against QONNX execution of the original.

After every step, on every verification input:

- **decisions**: the class decisions are identical to the reference's. A decision is the project's
  one definition, :func:`qnnflow.flows.ir.reference.decisions`: the index a label-selecting graph
  outputs, or the argmax of the logits with ties (within a relative tolerance) to the lowest index,
  as LabelSelect does in hardware. Inputs where a plain argmax of the float32 reference would
  differ are counted (``reference_float_ties``).
- **integers**: every tensor the step's graph annotates as an integer type is checked to hold
  integers within that type's range, and compared element for element with the tensor of the same
  name and shape in the previous step's graph and in the reference (the original graph executed by
  qonnx), wherever that one is an integer tensor too.
- **logits**: where the output is float logits computed from an integer tensor ``q`` by an affine
  map (constant Mul / Add / Sub / Div and shape-only nodes), the reference's logits are mapped back
  through it, ``(logits - B) / A``, rounded to integers and compared with ``q`` exactly; how far the
  reference lies from the integer grid is recorded (``reference_grid_error``, in units of ``A``).

**Float noise in the reference.** QONNX executes the original in float32, which rounds a sum in an
order of its own: an activation whose exact value lies within float32 noise of a level boundary can
come out on either side. Where a step differs from the float32 reference, the original is run again
with every float tensor in float64 (:func:`qnnflow.flows.ir.reference.run_qonnx_double`); a decision or
integer element passes only if it equals the float32 value or, where float32 and float64 disagree
(the input lies within float noise of a boundary), the float64 one. Such inputs and elements are
counted (``float32_reference_differs``). Accumulators beyond 2**23 are compared with float64 only.

Any difference raises :class:`VerificationError` naming the step, the tensor (and the node that
produces it), the input, the element and both values. No float tolerance decides anything.

A step that provably cannot change a value is not executed again: ``fold`` (only the PE / SIMD
attributes of the layers change) and ``streams`` (only FIFOs and width converters, which pass data
through, are inserted) are checked structurally -- the graph without those is node for node,
attribute for attribute and initializer for initializer the previous one.

:func:`summary` derives the one-line account of a compile from ``verification.json``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from onnx import helper
from qnnflow.flows.ir.execute import Executor, integer_tensors, run_batched
from qnnflow.flows.ir.graph import HW_DOMAIN, topo_nodes, where
from qnnflow.flows.ir.reference import decisions
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError

# layers that pass their input through unchanged (flows/ir/layers.py) and the attributes that only fold
PASS_THROUGH = ("FIFO", "WidthConverter")
FOLD_ATTRS = ("PE", "SIMD")
AFFINE = ("Mul", "Add", "Sub", "Div")
SHAPE_ONLY = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
_F32_EXACT = 1 << 24


class VerificationError(FlowError):
    """A step's graph computes something other than the reference."""


@dataclass
class StepCheck:
    step: str
    samples: int
    decision_mismatches: int
    exact: bool  # the output compared exactly (integers, or logits as integers)
    float_ties: int = 0  # inputs decided by the tie rule where a plain argmax of the reference differs
    kinds: list[str] = field(default_factory=list)  # "decisions", "integers", "logits", "unchanged"
    integers: list[dict] = field(default_factory=list)  # {"tensor", "against", "elements"}
    logits: dict | None = None
    unchanged: str | None = None  # why the step cannot change a value (then it is not executed)
    # what agreed with the float64 reference only: {"decisions": inputs}; float32 rounded an
    # activation within its noise of a level boundary the other way
    float32_only: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {
            "step": self.step,
            "samples": self.samples,
            "decision_mismatches": self.decision_mismatches,
            "integer_exact": self.exact,
            "reference_float_ties": self.float_ties,
            "compared": self.kinds,
            "integer_tensors": self.integers,
            "integer_tensors_exact": len({c["tensor"] for c in self.integers}),
        }
        if self.float32_only:
            d["float32_reference_differs"] = self.float32_only
        if self.logits is not None:
            d["logits"] = self.logits
        if self.unchanged is not None:
            d["unchanged"] = self.unchanged
        return d


@dataclass
class Reference:
    """QONNX execution of the original model: outputs, decisions and integer tensors by name."""

    outputs: np.ndarray
    integers: dict[str, np.ndarray]
    model: ModelWrapper | None = None
    x: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.decisions = decisions(self.outputs)
        self.ties = int((decisions(self.outputs, tie_rtol=0.0) != self.decisions).sum())
        self._double: np.ndarray | None = None

    def double(self) -> np.ndarray:
        """The original model's outputs with every float tensor in float64
        (:func:`qnnflow.flows.ir.reference.run_qonnx_double`), computed once when first needed."""
        self._run_double()
        return self._double

    def double_integers(self) -> dict[str, np.ndarray]:
        """The integer tensors of :meth:`double`, by name."""
        self._run_double()
        return self._double_ints

    @property
    def has_double(self) -> bool:
        return self._double is not None

    def double_decisions(self) -> np.ndarray:
        self._run_double()
        return decisions(self._double)

    def _run_double(self) -> None:
        if self._double is None:
            from qnnflow.flows.ir.reference import run_qonnx_double

            out, kept = run_qonnx_double(self.model, self.x, keep=set(self.integers))
            self._double = np.asarray(out)
            self._double_ints = {k: _compact(v, None) for k, v in kept.items()}


@dataclass
class _State:
    step: str
    model: ModelWrapper
    out: np.ndarray
    integers: dict[str, np.ndarray]
    exact: bool


def reference(model: ModelWrapper, x: np.ndarray, batch: int = 500) -> Reference:
    """Run the original ``model`` on ``x`` with qonnx, keeping its integer-typed tensors."""
    from qnnflow.flows.ir.reference import run_qonnx

    names = integer_tensors(model) - {i.name for i in model.graph.initializer}
    out, kept = run_qonnx(model, x, batch_size=batch, keep=names)
    return Reference(np.asarray(out), {k: _compact(v, None) for k, v in kept.items()}, model, x)


class Verifier:
    """Checks the steps of one compile in order against one reference (see the module docstring)."""

    def __init__(self, ref: Reference, x: np.ndarray, batch: int = 100):
        self.ref = ref
        self.x = x
        self.batch = batch
        self.prev: _State | None = None

    def check(self, step: str, model: ModelWrapper) -> tuple[StepCheck, np.ndarray]:
        if self.prev is not None:
            why = unchanged_values(self.prev.model, model)
            if why is not None:
                check = StepCheck(step, len(self.x), 0, self.prev.exact, self.ref.ties, ["unchanged"], unchanged=why)
                self.prev = _State(step, _copy(model), self.prev.out, self.prev.integers, self.prev.exact)
                return check, self.prev.out
        ints = integer_tensors(model) - {i.name for i in model.graph.initializer}
        out, vals = run_batched(model, self.x, self.batch, collect=ints)
        out = np.asarray(out)
        got = decisions(out)
        bad = np.flatnonzero(got != self.ref.decisions)
        f32_only = 0
        if len(bad):
            # float32 may have rounded an activation within its noise of a level boundary the other way:
            # where float32 and float64 disagree, the input lies within float noise of a boundary and
            # either decision is the model's; where they agree, the step must agree too
            d64 = self.ref.double_decisions()
            f32_only = int(np.sum(got[bad] == d64[bad]))
            bad = bad[got[bad] != d64[bad]]
        if len(bad):
            raise VerificationError(self._explain(step, model, out, int(bad[0]), len(bad)))
        check = StepCheck(step, len(self.x), 0, False, self.ref.ties, ["decisions"])
        if f32_only:
            check.float32_only["decisions"] = f32_only
        producers = {o: n for n in model.graph.node for o in n.output}
        order = {o: i for i, n in enumerate(topo_nodes(model)) for o in n.output}
        integers = {}  # in graph order, so that the first difference reported is the earliest one
        for name in sorted(vals, key=lambda t: (order.get(t, -1), t)):
            integers[name] = _compact(vals[name], model.get_tensor_datatype(name), step, name, producers.get(name))
        for name, value in integers.items():
            for against, other in (("reference", self.ref.integers), ("previous", self._prev_ints())):
                if name in other and other[name].shape == value.shape:
                    entry = {"tensor": name, "against": against, "elements": int(value.size)}
                    if against == "reference" and not np.array_equal(value, other[name]):
                        # as for decisions: an element where float32 and float64 disagree lies within
                        # float noise of a level boundary, and either value is the model's
                        r64 = self.ref.double_integers()[name]
                        noise = (value != other[name]) & (value == r64)
                        entry["float32_reference_differs_in"] = int(noise.sum())
                        against, other = "float32 and float64 references", {name: np.where(noise, value, other[name])}
                    _compare(step, name, producers.get(name), value, other[name], against, self._prev_name())
                    check.integers.append(entry)
        if check.integers:
            check.kinds.append("integers")
        out_name = model.graph.output[0].name
        if out_name in integers:
            check.exact = True  # an integer output: compared above, or (a new name) it is the decision
        else:
            check.logits = self._logits(step, model, out, integers, producers)
            if check.logits is not None:
                check.kinds.append("logits")
                check.exact = True
        self.prev = _State(step, _copy(model), out, integers, check.exact)
        return check, out

    def _prev_ints(self) -> dict[str, np.ndarray]:
        return self.prev.integers if self.prev is not None else {}

    def _prev_name(self) -> str:
        return self.prev.step if self.prev is not None else ""

    def _logits(self, step, model, out, integers, producers) -> dict | None:
        affine = output_affine_map(model)
        if affine is None:
            return None
        q_name, A, B = affine
        if q_name not in integers:
            return None
        q = integers[q_name].reshape(out.shape)

        def mapped(ref: np.ndarray) -> tuple[np.ndarray, float]:
            want = (ref.reshape(out.shape).astype(np.float64) - B) / A
            return np.rint(want).astype(np.int64), float(np.abs(want - np.rint(want)).max(initial=0.0))

        q32, grid = mapped(self.ref.outputs)
        record = {"tensor": q_name, "elements": int(q.size), "reference": "float32", "reference_grid_error": grid}
        f32_off = np.flatnonzero((q32 != q).reshape(len(q), -1).any(1))
        too_wide = int(np.abs(q).max(initial=0)) >= _F32_EXACT // 2
        if len(f32_off) or too_wide:
            # float32 execution of the original cannot resolve accumulators this large: the reference is
            # the original in float64. Otherwise float32 rounds an activation within its noise of a level
            # boundary the other way on some inputs: there float64 decides
            q64, grid64 = mapped(self.ref.double())
            if too_wide:
                record.update(reference="float64", reference_grid_error=grid64)
                q32 = q64
            else:
                noise = (q32 != q) & (q64 == q)
                record.update(reference="float32, float64 where they differ")
                q32 = np.where(noise, q, q32)
            record["float32_reference_differs_on"] = len(f32_off)
        _compare(step, q_name, producers.get(q_name), q, q32, "reference logits mapped back", "")
        record["reference_grid_error"] = round(record["reference_grid_error"], 6)
        return record

    def _explain(self, step, model, out, i, n_bad) -> str:
        msg = (
            f"step {step}: {n_bad} of {len(self.x)} inputs are decided differently from the reference; first "
            f"at input {i}: decision {decisions(out[i : i + 1])[0]}, reference {self.ref.decisions[i]}"
        )
        if self.ref.has_double:
            msg += f" (float64 reference {self.ref.double_decisions()[i]})"
        if self.prev is None:
            return msg
        now = Executor(model).run(self.x[i : i + 1], keep=True)
        before = Executor(self.prev.model).run(self.x[i : i + 1], keep=True)
        for node in topo_nodes(model):
            for t in node.output:
                if t in before and t in now and np.shape(before[t]) == np.shape(now[t]):
                    a, b = np.asarray(now[t]), np.asarray(before[t])
                    if not np.array_equal(a, b):
                        idx = tuple(int(j) for j in np.argwhere(a != b)[0])
                        return (
                            f"{msg}. First differing tensor: {t} (produced by {where(node)}) at element {idx}: "
                            f"{float(a[idx]):.9g} now, {float(b[idx]):.9g} before this step"
                        )
        return msg + ". No tensor shared with the previous step differs (the difference is in renamed tensors)"


def _copy(model: ModelWrapper) -> ModelWrapper:
    """A copy the next step cannot change (steps may rewrite their input graph in place)."""
    return ModelWrapper(copy.deepcopy(model.model))


def _compact(v: np.ndarray, dt: DataType | None, step: str = "", name: str = "", node=None) -> np.ndarray:
    """Integer values of a tensor as the narrowest numpy integer type; with ``dt``, VerificationError
    if they are not integers of that DataType's range. (Min / max first, then one cast and one
    comparison: the tensors are large, im2col windows included.)"""
    a = np.asarray(v)
    if a.dtype.kind == "f" and dt is None:
        a = np.rint(a)
    vmin, vmax = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if dt is not None and a.size:
        lo, hi = int(dt.min()), int(dt.max())
        if vmin < lo or vmax > hi:
            i = int(np.flatnonzero(((a < lo) | (a > hi)).ravel())[0])
            raise VerificationError(
                f"step {step}: tensor {name}{_by(node)} is annotated {dt.name} ({lo}..{hi}) but holds "
                f"{a.ravel()[i]:.9g} at input {np.unravel_index(i, a.shape)[0]}, element {_elem(a, i)}"
            )
    m = max(abs(vmin), abs(vmax))
    t = next((t for t in (np.int8, np.int16, np.int32) if m <= np.iinfo(t).max), np.int64)
    out = a.astype(t)
    if a.dtype.kind == "f" and not np.array_equal(out, a):
        i = int(np.flatnonzero((out != a).ravel())[0])
        raise VerificationError(
            f"step {step}: tensor {name}{_by(node)} is annotated {dt.name} but holds the non-integer "
            f"{a.ravel()[i]!r} (input {np.unravel_index(i, a.shape)[0]}, element {_elem(a, i)})"
        )
    return out


def _by(node) -> str:
    return f" (produced by {where(node)})" if node is not None else ""


def _elem(a: np.ndarray, flat_index: int) -> tuple[int, ...]:
    return tuple(int(j) for j in np.unravel_index(flat_index, a.shape)[1:])


def _compare(step, name, node, now, other, against: str, prev_step: str) -> None:
    if np.array_equal(now, other):
        return
    diff = np.flatnonzero((now.astype(np.int64) != other.astype(np.int64)).ravel())
    i = int(diff[0])
    what = f"the previous step ({prev_step})" if against == "previous" else f"the {against}"
    n_in = len(np.unique(np.unravel_index(diff, now.shape)[0]))
    raise VerificationError(
        f"step {step}: integer tensor {name}{_by(node)} differs from {what} in {len(diff)} elements on {n_in} "
        f"inputs; first at input {np.unravel_index(i, now.shape)[0]}, element {_elem(now, i)}: "
        f"{int(now.ravel()[i])} now, {int(other.ravel()[i])} in {what}"
    )


def output_affine_map(model: ModelWrapper) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``(q, A, B)`` if the graph output is ``A * q + B`` of an integer-annotated tensor ``q``
    through constant Mul / Add / Sub / Div and shape-only nodes; A and B broadcast to one sample of
    the output (batch dimension 1). None if the output is not such a map of an integer tensor."""
    ints = integer_tensors(model)
    chain = []
    t = model.graph.output[0].name
    while t not in ints:
        node = model.find_producer(t)
        if node is None or node.op_type not in AFFINE + SHAPE_ONLY:
            return None
        if node.op_type in SHAPE_ONLY:
            chain.append((node, None, 0))
            t = node.input[0]
            continue
        consts = [model.get_initializer(i) for i in node.input]
        if sum(c is None for c in consts) != 1:
            return None
        k = 0 if consts[0] is None else 1
        chain.append((node, np.asarray(consts[1 - k], dtype=np.float64), k))
        t = node.input[k]
    shape = [1, *model.get_tensor_shape(t)[1:]]
    A, B = np.ones(shape), np.zeros(shape)
    for node, c, k in reversed(chain):
        op = node.op_type
        if c is None:
            out_shape = model.get_tensor_shape(node.output[0])
            if out_shape is None:
                return None
            A, B = A.reshape([1, *out_shape[1:]]), B.reshape([1, *out_shape[1:]])
        elif op == "Mul":
            A, B = A * c, B * c
        elif op == "Add":
            A, B = A + 0 * c, B + c
        elif op == "Sub":
            A, B = (A + 0 * c, B - c) if k == 0 else (-A + 0 * c, c - B)
        elif op == "Div":
            if k != 0:
                return None
            A, B = A / c, B / c
    if np.any(A == 0):
        return None
    return t, A, B


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def unchanged_values(before: ModelWrapper, after: ModelWrapper) -> str | None:
    """Why ``after`` computes exactly the values of ``before`` -- it differs only in folding
    attributes and in inserted pass-through layers -- or None if it may compute anything else."""
    alias: dict[str, str] = {}
    nodes, inserted = [], 0
    for n in after.graph.node:
        if n.op_type in PASS_THROUGH and n.domain == HW_DOMAIN:
            alias[n.output[0]] = n.input[0]
            inserted += 1
        else:
            nodes.append(n)

    def resolve(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    old = list(before.graph.node)
    if len(old) != len(nodes) or before.graph.output[0].name != resolve(after.graph.output[0].name):
        return None
    refolded = 0
    for a, b in zip(old, nodes, strict=True):
        if (a.op_type, a.domain, list(a.input), list(a.output)) != (
            b.op_type, b.domain, [resolve(i) for i in b.input], list(b.output)
        ):  # fmt: skip
            return None
        aa, ba = _attrs(a), _attrs(b)
        if {k: v for k, v in aa.items() if k not in FOLD_ATTRS} != {k: v for k, v in ba.items() if k not in FOLD_ATTRS}:
            return None
        refolded += int(aa != ba)
        for i in a.input:
            va, vb = before.get_initializer(i), after.get_initializer(i)
            if (va is None) != (vb is None) or (va is not None and not np.array_equal(va, vb)):
                return None
    if inserted == 0 and refolded == 0:
        return "the graph is unchanged"
    parts = []
    if refolded:
        parts.append(f"only PE / SIMD of {refolded} layers changed")
    if inserted:
        parts.append(f"{inserted} FIFOs / width converters (pass-through) inserted")
    return "; ".join(parts) + "; every other node, attribute and initializer is the previous step's"


def summary(verification: dict) -> str:
    """One line from a compile's ``verification.json``: what every step was compared on."""
    steps = verification.get("steps", [])
    n = verification.get("samples", steps[0]["samples"] if steps else 0)
    decided = all(s.get("decision_mismatches", 1) == 0 for s in steps)
    tensors = {t["tensor"] for s in steps for t in s.get("integer_tensors", [])}
    logits = sum(1 for s in steps if "logits" in s.get("compared", []))
    unchanged = sum(1 for s in steps if "unchanged" in s.get("compared", []))
    executed = [s for s in steps if "unchanged" not in s.get("compared", [])]
    parts = [f"{len(steps)} steps verified on {n} inputs: decisions {'identical' if decided else 'DIFFER'}"]
    parts.append(f"{len(tensors)} integer tensors exact")
    if logits:
        parts.append(f"logits exact as integers in {logits} steps")
    inexact = [s["step"] for s in executed if not s.get("integer_exact")]
    if inexact:
        parts.append(f"no integer output yet in {', '.join(inexact)}")
    if unchanged:
        parts.append(f"{unchanged} steps unchanged by construction")
    return ", ".join(parts)
