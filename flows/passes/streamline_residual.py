"""Part of the streamlining (flows/passes/streamline.py): residual adds of two quantized branches.

A residual block forks a tensor into two branches that meet again in an Add. In the integer graph
the Add becomes an Add of the two branches' integer tensors, which the hardware conversion turns
into AddStreams (and the fork into DuplicateStreams):

- both branches must be plain ``A * q + B`` (quantized activations, or accumulators whose pending
  float ops collapse to a scale) with per-channel scales in one integer ratio ``k`` (``k = 1`` for a
  shared quantizer, the usual Brevitas pattern); the coarser branch is first multiplied by ``k``
  with a MultiThreshold that repeats each of its thresholds ``k`` times (exact, and fused into the
  branch's quantizer by the integer clean-up where possible); a branch whose integer type is
  narrower than the other's gets the same MultiThreshold with ``k = 1`` into the common type
  (AddStreams adds two streams of one element type);
- the sum is ``A * (k * qa + qb) + (Ba + Bb)``; the reference adds two float32 products, which
  for non-power-of-two scales can differ in the last bit between pairs with the same integer sum.
  That spread is recorded per sum value (``IntTensor.sum_spread``) and the next quantizer checks
  that it maps both ends of every spread to the same level, so the integer add stays bit-exact
  with the reference or the compile stops with an error naming the quantizer.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir.graph import QONNX_DOMAIN, add_const, datatype_for_range, where
from qnnflow.flows.passes.tail import FloatPath, IntTensor

SPREAD_LIMIT = 1 << 22  # most (qa, qb, channel) triples enumerated to find the float spread of a sum
RATIO_RTOL = 1e-6  # scales whose ratio is this close to an integer count as an integer ratio


class ResidualMixin:
    """Uses the host class's ``new``, ``namer``, ``nodes``, ``forms``, ``dtypes``, ``_collapse``,
    ``_emit`` and ``_dtype``."""

    def _residual_add(self, node: NodeProto, forms: list) -> None:
        what = where(node)
        if any(isinstance(f, FloatPath) for f in forms):
            raise ValueError(f"{what}: both inputs of a residual add must be quantized; one of them is the float input")
        shapes = [self.old.get_tensor_shape(i) for i in node.input[:2]]
        if shapes[0] != shapes[1]:
            raise ValueError(f"{what}: a residual add needs two inputs of one shape, found {shapes[0]} and {shapes[1]}")
        a, b = (self._collapse(f, node) for f in forms)
        if a.bipolar or b.bipolar or a.shape_nodes or b.shape_nodes:
            raise ValueError(
                f"{what}: a residual add needs two integer (not bipolar) tensors of the same shape in the "
                f"integer graph; found {'bipolar' if a.bipolar or b.bipolar else 'a pending reshape'}"
            )
        c = a.channels
        Aa, Ab = (np.broadcast_to(np.asarray(t.A, dtype=np.float64), (c,)) for t in (a, b))
        ratio = Aa / Ab
        if np.all(ratio < 1):
            a, b, Aa, Ab, ratio = b, a, Ab, Aa, 1 / ratio
        k = np.rint(ratio)
        if not (np.all(k >= 1) and np.allclose(ratio, k, rtol=RATIO_RTOL, atol=0) and np.all(k == k[0])):
            shown = np.unique(np.asarray(forms[0].A if isinstance(forms[0], IntTensor) else 0)).ravel()[:4]
            other = np.unique(np.asarray(forms[1].A if isinstance(forms[1], IntTensor) else 0)).ravel()[:4]
            raise ValueError(
                f"{what}: the scales of the two inputs of a residual add must be in one integer ratio for an "
                f"integer-exact add, found {shown.tolist()} and {other.tolist()} (ratio "
                f"{np.unique(ratio)[:4].tolist()}); quantize both branches with one shared quantizer "
                f"(e.g. the same QuantIdentity) or with scales that are integer multiples of each other"
            )
        k = int(k[0])
        lo_a, hi_a = k * int(np.min(a.lo)), k * int(np.max(a.hi))
        lo_b, hi_b = int(np.min(b.lo)), int(np.max(b.hi))
        # AddStreams takes two streams of one element type: both branches in the type holding both
        common = datatype_for_range(min(lo_a, lo_b), max(hi_a, hi_b))
        qa, qb = a.name, b.name
        if k > 1 or self.dtypes.get(qa, self.new.get_tensor_datatype(qa)) != common:
            qa = self._times(a, k, common)
        if self.dtypes.get(qb, self.new.get_tensor_datatype(qb)) != common:
            qb = self._times(b, 1, common)
        lo, hi = lo_a + lo_b, hi_a + hi_b
        out = self._emit("Add", [qa, qb], node.output[0] + "_int")
        self.dtypes[out] = datatype_for_range(lo, hi)
        B = np.broadcast_to(np.asarray(a.B, dtype=np.float64), (c,)) + np.broadcast_to(
            np.asarray(b.B, dtype=np.float64), (c,)
        )
        spread = _sum_spread(a, b, k, Ab, B, what)
        self.forms[node.output[0]] = IntTensor(
            out,
            Ab.copy(),
            B,
            np.array([lo]),
            np.array([hi]),
            self.old.get_tensor_shape(node.output[0]),
            a.axis,
            sum_spread=spread,
        )

    def _times(self, t: IntTensor, k: int, odt) -> str:
        """A MultiThreshold computing ``k * q`` (q in [lo, hi] of ``t``) as datatype ``odt``: each
        threshold repeated k times (k = 1: the same values in a wider type)."""
        lo, hi = int(np.min(t.lo)), int(np.max(t.hi))
        thr = np.repeat(np.arange(lo + 1, hi + 1, dtype=np.float32), k)
        thr_name = add_const(self.new, self.namer, t.name + "_times", np.tile(thr, (t.channels, 1)))
        out = self.namer(t.name + f"_x{k}")
        attrs = {"out_dtype": odt.name, "out_bias": float(k * lo)}
        if len(t.shape) == 4:
            attrs["data_layout"] = "NHWC" if t.axis == 3 else "NCHW"
        self.nodes.append(
            helper.make_node(
                "MultiThreshold", [t.name, thr_name], [out], domain=QONNX_DOMAIN,
                name=self.namer(f"Times{k}"), **attrs,
            )
        )  # fmt: skip
        self.dtypes[out] = odt
        return out

    def _check_spread(self, t: IntTensor, levels, what: str) -> None:
        """Raise if the quantizer ``levels`` (float values (P, C) -> levels) maps the float values
        that one integer sum of a residual add can take in the reference to different levels."""
        vmin, vmax, model = t.sum_spread
        want = levels(model)
        for v in (vmin, vmax):
            got = levels(v)
            bad = np.argwhere(got != want)
            if len(bad):
                i, ch = bad[0]
                s = int(np.min(t.lo)) + int(i)
                raise ValueError(
                    f"{what}: the residual add before it is not integer-exact: in channel {ch}, branch pairs "
                    f"with integer sum {s} give float sums from {vmin[i, ch]:.9g} to {vmax[i, ch]:.9g} in the "
                    f"reference (float32 rounding of the branch scales), which this quantizer maps to "
                    f"levels {want[i, ch]} and {got[i, ch]}; use power-of-two scales for the branches"
                )


def _sum_spread(
    a: IntTensor, b: IntTensor, k: int, A: np.ndarray, B: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The float32 values the reference's ``(Aa * qa + Ba) + (Ab * qb + Bb)`` takes for each integer
    sum ``k * qa + qb``: (min, max, modelled value ``A * sum + B``), each (sums, C); None if every
    pair gives exactly the modelled value."""
    c = len(A)
    params = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), (c,)) for v in (a.A, a.B, b.A, b.B)], axis=1)
    uniq, inverse = np.unique(params, axis=0, return_inverse=True)
    qa = np.arange(int(np.min(a.lo)), int(np.max(a.hi)) + 1)
    qb = np.arange(int(np.min(b.lo)), int(np.max(b.hi)) + 1)
    if len(qa) * len(qb) * len(uniq) > SPREAD_LIMIT:
        raise ValueError(
            f"{what}: the branches of the residual add are too wide ({len(qa)} x {len(qb)} levels) to check "
            f"that the integer add is exact"
        )
    s = (k * qa[:, None] + qb[None, :]).ravel()
    lo = int(s.min())
    n = int(s.max()) - lo + 1
    vmin = np.full((n, len(uniq)), np.inf, dtype=np.float32)
    vmax = np.full((n, len(uniq)), -np.inf, dtype=np.float32)
    for j, (aa, ba, ab, bb) in enumerate(uniq):
        va = (aa * qa + ba).astype(np.float32)
        vb = (ab * qb + bb).astype(np.float32)
        v = (va[:, None] + vb[None, :]).ravel()  # float32 add, as in the reference
        np.minimum.at(vmin[:, j], s - lo, v)
        np.maximum.at(vmax[:, j], s - lo, v)
    sums = np.arange(lo, lo + n, dtype=np.float64)[:, None]
    model = (A[None, :] * sums + B[None, :]).astype(np.float32)
    vmin, vmax = vmin[:, inverse], vmax[:, inverse]
    reached = np.isfinite(vmin)
    vmin, vmax = np.where(reached, vmin, model), np.where(reached, vmax, model)
    if np.array_equal(vmin, model) and np.array_equal(vmax, model):
        return None
    return vmin, vmax, model
