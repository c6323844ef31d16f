"""The project's own QONNX custom ops, in the ONNX domain :data:`TV_DOMAIN` (this module's path, so
qonnx's registry finds the classes here by importing the domain: ``getCustomOp`` and
``execute_onnx`` run them like qonnx's own ops, with no registration step).

- ``TVSmooth``: one total-variation smoothing step (:func:`qnnflow.flows.ir.kernels_tv.tv_step`)
  on a quantized activation. Input: a float tensor ``x = scale * c``, ``c`` integer codes in
  ``lo`` .. ``hi`` (what a Quant with that scale and zero point 0 outputs), layout ``data_layout``
  (NCHW as exported from PyTorch, or NHWC). Output: ``scale * tv_step(c)``, float32. Attributes:
  ``scale`` (float), ``lo``, ``hi`` (the codes' levels), ``gamma_q``, ``gamma_frac_bits``,
  ``frac_bits``, ``eps`` (:class:`kernels_tv.TVParams`). A value that is not ``scale`` times an
  integer in ``lo .. hi`` (to 1e-4 of a code) is a ValueError: the op is defined on the grid only.
  Several iterations are several nodes.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir.graph import TV_DOMAIN
from qnnflow.flows.ir.kernels_tv import TVParams, tv_step
from qonnx.custom_op.base import CustomOp

__all__ = ["TV_DOMAIN", "TVSmooth", "make_tv_node", "tv_node_params"]


def tv_node_params(node) -> tuple[float, int, int, TVParams, str]:
    """(scale, lo, hi, TVParams, data_layout) of a TVSmooth node, with their defaults."""
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    layout = a.get("data_layout", b"NCHW")
    layout = layout.decode() if isinstance(layout, bytes) else layout
    p = TVParams(
        int(a["gamma_q"]), float(a.get("eps", 0.25)), int(a.get("frac_bits", 6)), int(a.get("gamma_frac_bits", 4))
    )
    return float(a["scale"]), int(a["lo"]), int(a["hi"]), p, layout


def make_tv_node(name: str, x: str, y: str, *, scale: float, lo: int, hi: int, p: TVParams, layout: str = "NCHW"):
    """A TVSmooth node ``x`` -> ``y``."""
    return helper.make_node(
        "TVSmooth", [x], [y], name=name, domain=TV_DOMAIN, scale=float(scale), lo=int(lo), hi=int(hi),
        gamma_q=int(p.gamma_q), gamma_frac_bits=int(p.gamma_frac_bits), frac_bits=int(p.frac_bits),
        eps=float(p.eps), data_layout=layout,
    )  # fmt: skip


def codes_of(x: np.ndarray, scale: float, lo: int, hi: int, where: str) -> np.ndarray:
    """The integer codes ``x / scale`` (ValueError if ``x`` is off the grid or outside lo .. hi)."""
    v = np.asarray(x, dtype=np.float64) / scale
    c = np.round(v)
    if v.size and (np.max(np.abs(v - c)) > 1e-4 or c.min() < lo or c.max() > hi):
        bad = float(v.flat[int(np.argmax(np.abs(v - c) + (c < lo) + (c > hi)))])
        raise ValueError(
            f"{where}: the input must be scale ({scale:g}) times integer codes in {lo}..{hi}; found the code {bad:g}"
        )
    return c.astype(np.int64)


class TVSmooth(CustomOp):
    """See the module docstring."""

    def get_nodeattr_types(self):
        return {
            "scale": ("f", True, 1.0),
            "lo": ("i", True, 0),
            "hi": ("i", True, 1),
            "gamma_q": ("i", True, 0),
            "gamma_frac_bits": ("i", False, 4),
            "frac_bits": ("i", False, 6),
            "eps": ("f", False, 0.25),
            "data_layout": ("s", False, "NCHW", {"NCHW", "NHWC"}),
        }

    def make_shape_compatible_op(self, model):
        node = self.onnx_node
        return helper.make_node("Identity", [node.input[0]], [node.output[0]])

    def infer_node_datatype(self, model):
        node = self.onnx_node
        model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(node.input[0]))

    def execute_node(self, context, graph):
        node = self.onnx_node
        scale, lo, hi, p, layout = tv_node_params(node)
        x = context[node.input[0]]
        c = codes_of(x, scale, lo, hi, f"{node.name} (TVSmooth)")
        if layout == "NCHW":
            y = np.moveaxis(tv_step(np.moveaxis(c, 1, -1), lo, hi, p), -1, 1)
        else:
            y = tv_step(c, lo, hi, p)
        out = scale * y
        # float32 as Quant writes its output; integer codes (scale 1) stay exact either way
        context[node.output[0]] = out.astype(x.dtype if x.dtype.kind == "f" else np.float32)

    def verify_node(self):
        return []
