"""Hardware layers: custom ops in the ``qnnflow.flows.layers`` domain (``graph.HW_DOMAIN``).

Each layer class reads its attributes from the ONNX node and provides
- ``check()``: folding constraints, ValueError naming the node, e.g. "PE must divide MH (64), not 6";
- ``in_width`` / ``out_width``: stream widths in bits (elements per beat x element width, from the
  attributes ``IN_BEAT`` / ``OUT_BEAT`` name);
- ``execute(inputs)``: the bit-exact numpy model, through flows/ir/kernels.py (one definition of the
  numerics, shared with the RTL testbenches); integer results in float64, exact at any width;
- ``exp_cycles()``: cycles per frame at one beat per cycle;
- ``resources(family)``: estimates, see flows/compile/resources.py.

Attributes map one to one onto the parameters of the ``hw/`` modules (MW, MH, PE, SIMD, widths,
signedness, thresholds): the RTL backend (codegen) reads them, never the other way round.
Tensors are channels-last; ``vectors`` is the list of leading (non-batch) dims, e.g. [OH, OW].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from onnx import NodeProto, helper
from qnnflow.flows.ir import kernels, kernels_dw, kernels_tv
from qnnflow.flows.ir.graph import HW_DOMAIN
from qonnx.core.datatype import DataType


def _dt(name: str) -> DataType:
    return DataType[name]


def _divides(node: NodeProto, fold: str, value: int, total_name: str, total: int) -> None:
    if value < 1 or total % value != 0:
        raise ValueError(f"{node.name} ({node.op_type}): {fold} must divide {total_name} ({total}), not {value}")


class Layer:
    """Base of the hardware layers; ``ATTRS`` maps attribute name -> default (None: required)."""

    op_type: ClassVar[str] = ""
    ATTRS: ClassVar[dict[str, Any]] = {}
    FOLDS: ClassVar[tuple[str, ...]] = ()
    # A stream beat: (the attributes whose product is the number of elements in it, the attribute
    # naming the element type); the output beat is the input beat unless OUT_BEAT is given
    IN_BEAT: ClassVar[tuple[tuple[str, ...], str] | None] = None
    OUT_BEAT: ClassVar[tuple[tuple[str, ...], str] | None] = None

    def __init__(self, node: NodeProto):
        if node.op_type != self.op_type:
            raise TypeError(f"{node.name}: a {node.op_type} node is not a {self.op_type}")
        self.node = node
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        for k, v in self.attrs.items():
            if isinstance(v, bytes):
                self.attrs[k] = v.decode()
        missing = [k for k, d in self.ATTRS.items() if d is None and k not in self.attrs]
        if missing:
            raise ValueError(f"{node.name} ({node.op_type}): missing attributes {missing}")

    @classmethod
    def make(cls, name: str, inputs: list[str], outputs: list[str], **attrs) -> NodeProto:
        unknown = set(attrs) - set(cls.ATTRS)
        if unknown:
            raise TypeError(f"{cls.op_type}: unknown attributes {sorted(unknown)}")
        full = {k: v for k, v in cls.ATTRS.items() if v is not None}
        full.update(attrs)
        return helper.make_node(cls.op_type, inputs, outputs, name=name, domain=HW_DOMAIN, **full)

    def get(self, name: str) -> Any:
        return self.attrs.get(name, self.ATTRS.get(name))

    def set(self, name: str, value: Any) -> None:
        if name not in self.ATTRS:
            raise KeyError(f"{self.op_type} has no attribute {name}")
        for a in list(self.node.attribute):
            if a.name == name:
                self.node.attribute.remove(a)
        self.node.attribute.append(helper.make_attribute(name, value))
        self.attrs[name] = value

    @property
    def where(self) -> str:
        return f"{self.node.name} ({self.op_type})"

    def vectors(self) -> int:
        return int(np.prod(self.get("vectors") or [1]))

    # defaults overridden below
    def check(self) -> None:
        return None

    def folding(self) -> dict[str, int]:
        return {f: int(self.get(f)) for f in self.FOLDS}

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def exp_cycles(self) -> int:
        raise NotImplementedError

    @property
    def in_width(self) -> int:
        if self.IN_BEAT is None:
            raise NotImplementedError
        return self._beat_width(*self.IN_BEAT)

    @property
    def out_width(self) -> int:
        if self.IN_BEAT is None:
            raise NotImplementedError
        return self._beat_width(*(self.OUT_BEAT or self.IN_BEAT))

    def _beat_width(self, counts: tuple[str, ...], type_attr: str) -> int:
        """Bits of a beat of (the product of the ``counts`` attributes) elements of type ``type_attr``."""
        elements = 1
        for k in counts:
            elements *= int(self.get(k))
        return elements * _bits(_dt(self.get(type_attr)))


def pair(v) -> tuple[int, int]:
    """A square (int) or per-axis ([rows, cols]) window attribute as (rows, cols)."""
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    rows, cols = v
    return int(rows), int(cols)


def _bits(dt: DataType) -> int:
    return int(dt.bitwidth())


def _to_float(a: np.ndarray) -> np.ndarray:
    """Integer results as the graph holds integer tensors: float64, exact below 2**53 (flows/ir/execute.py)."""
    return np.asarray(a, dtype=np.float64)


# the attributes the MAC layers (MVAU, VVAU) share, after their dimensions
_MAC_ATTRS = {
    "PE": 1, "SIMD": 1, "vectors": [1],
    "inputDataType": None, "weightDataType": None, "outputDataType": None, "accDataType": None,
    "ActVal": 0, "noActivation": 0, "binaryXnorMode": 0,
}  # fmt: skip


class _MacLayer(Layer):
    """The part the MAC layers (:class:`MVAU`, :class:`VVAU`) share: the attributes after their
    dimensions, PE output elements per beat, and ``execute`` through the layer's golden ``kernel``."""

    FOLDS = ("PE", "SIMD")
    OUT_BEAT = (("PE",), "outputDataType")
    kernel: ClassVar[Callable[..., np.ndarray]]

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, w = inputs[0], inputs[1]
        thr = inputs[2] if len(inputs) > 2 and not self.get("noActivation") else None
        xnor = bool(self.get("binaryXnorMode"))
        bip_out = self.get("outputDataType") == "BIPOLAR"
        out = self.kernel(
            x, w, thresholds=thr, out_offset=0 if bip_out else int(self.get("ActVal")),
            x_bipolar=xnor, w_bipolar=xnor,
        )  # fmt: skip
        return [_to_float(2 * out - 1 if bip_out else out)]


class MVAU(_MacLayer):
    """Matrix-vector-activation unit: weights (MH, MW), optional thresholds (MH, T).

    Output: count(t <= acc) + ActVal with thresholds, else acc; a BIPOLAR output maps count
    0 / 1 to -1 / +1. With BIPOLAR input and weights, acc is the XNOR-popcount (binaryXnorMode)."""

    op_type = "MVAU"
    ATTRS = {"MW": None, "MH": None, **_MAC_ATTRS}
    IN_BEAT = (("SIMD",), "inputDataType")
    kernel = staticmethod(kernels.mvau)

    def check(self) -> None:
        _divides(self.node, "PE", int(self.get("PE")), "MH", int(self.get("MH")))
        _divides(self.node, "SIMD", int(self.get("SIMD")), "MW", int(self.get("MW")))

    def exp_cycles(self) -> int:
        mh, mw, pe, simd = (int(self.get(k)) for k in ("MH", "MW", "PE", "SIMD"))
        return (mh // pe) * (mw // simd) * self.vectors()


class _PerChannel(Layer):
    """A layer on ``NumChannels`` channels, PE of them per beat, one beat per cycle for each of the
    ``vectors`` (pixels)."""

    FOLDS = ("PE",)
    IN_BEAT = (("PE",), "inputDataType")

    def check(self) -> None:
        _divides(self.node, "PE", int(self.get("PE")), "NumChannels", int(self.get("NumChannels")))

    def exp_cycles(self) -> int:
        return int(self.get("NumChannels")) // int(self.get("PE")) * self.vectors()


class Thresholding(_PerChannel):
    """Standalone multi-threshold activation: count(t <= x) + ActVal per channel, PE channels per beat."""

    op_type = "Thresholding"
    ATTRS = {
        "NumChannels": None,
        "PE": 1,
        "vectors": [1],
        "inputDataType": None,
        "outputDataType": None,
        "ActVal": 0,
    }
    OUT_BEAT = (("PE",), "outputDataType")

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        bip_out = self.get("outputDataType") == "BIPOLAR"
        out = kernels.thresholding(inputs[0], inputs[1], 0 if bip_out else int(self.get("ActVal")))
        return [_to_float(2 * out - 1 if bip_out else out)]


class SlidingWindow(Layer):
    """im2col as a stream: NHWC in, (N, OH, OW, KH*KW*C) out in (ky, kx, c) order; SIMD channels per beat.
    ``ConvKernelDim``, ``Stride``, ``Pad``: an int (square) or [rows, cols] (e.g. [1, K] for a Conv1d)."""

    op_type = "SlidingWindow"
    ATTRS = {
        "IFMChannels": None, "IFMDim": None, "OFMDim": None, "ConvKernelDim": None, "Stride": 1, "Pad": 0,
        "PadValue": 0, "SIMD": 1, "inputDataType": None,
    }  # fmt: skip
    FOLDS = ("SIMD",)
    IN_BEAT = (("SIMD",), "inputDataType")

    def check(self) -> None:
        _divides(self.node, "SIMD", int(self.get("SIMD")), "IFMChannels", int(self.get("IFMChannels")))

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = kernels.sliding_window(
            inputs[0], pair(self.get("ConvKernelDim")), pair(self.get("Stride")), pair(self.get("Pad")),
            int(self.get("PadValue")),
        )  # fmt: skip
        return [_to_float(out)]

    def exp_cycles(self) -> int:
        c, simd = int(self.get("IFMChannels")), int(self.get("SIMD"))
        h, w = self.get("IFMDim")
        oh, ow = self.get("OFMDim")
        kh, kw = pair(self.get("ConvKernelDim"))
        # the window buffer reads every input once and writes every window element once
        return max(h * w, oh * ow * kh * kw) * (c // simd)


class MaxPool(_PerChannel):
    """Max over KH x KW windows, stride (KH, KW), NHWC; PE channels per beat. ``PoolDim``: an int
    (square) or [rows, cols]."""

    op_type = "MaxPool"
    ATTRS = {"NumChannels": None, "ImgDim": None, "PoolDim": None, "PE": 1, "inputDataType": None}

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_to_float(kernels.maxpool(inputs[0], pair(self.get("PoolDim"))))]

    def exp_cycles(self) -> int:
        h, w = self.get("ImgDim")
        return h * w * int(self.get("NumChannels")) // int(self.get("PE"))


class LabelSelect(Layer):
    """Indices of the K largest of ``Labels`` values, ties to the lowest index; PE values per beat.

    With a per-class map (``ClassMul``, ``ClassOffset``: one integer per class, or one for all;
    ``ValueShift``) the values compared are ``ClassMul[c] * x * 2**ValueShift + ClassOffset[c]``,
    the per-class scales and offsets of the logits made exact integers (flows/passes/label_map.py)."""

    op_type = "LabelSelect"
    ATTRS = {
        "Labels": None, "K": 1, "PE": 1, "inputDataType": None, "outputDataType": "UINT8",
        "ClassMul": [1], "ClassOffset": [0], "ValueShift": 0,
    }  # fmt: skip
    FOLDS = ("PE",)
    IN_BEAT = (("PE",), "inputDataType")
    OUT_BEAT = ((), "outputDataType")

    def check(self) -> None:
        _divides(self.node, "PE", int(self.get("PE")), "Labels", int(self.get("Labels")))
        n = int(self.get("Labels"))
        for k in ("ClassMul", "ClassOffset"):
            if len(self.get(k)) not in (1, n):
                raise ValueError(f"{self.where}: {k} needs 1 or Labels ({n}) values, not {len(self.get(k))}")

    def class_map(self) -> tuple[list[int], list[int], int]:
        """(multipliers, offsets) one per class, and the shift."""
        n = int(self.get("Labels"))
        mul, off = ([int(v) for v in self.get(k)] for k in ("ClassMul", "ClassOffset"))
        return (mul * n if len(mul) == 1 else mul), (off * n if len(off) == 1 else off), int(self.get("ValueShift"))

    def map_params(self) -> dict[str, int]:
        """The HDL parameters of ``hw/label_select.sv``'s per-class map ({} without one): widths
        from the input type's range, so that no value the stream can carry wraps."""
        mul, off, shift = self.class_map()
        has_mul, has_off = any(m != 1 for m in mul), any(n != 0 for n in off)
        if not (has_mul or has_off or shift):
            return {}
        if self.get("inputDataType") == "BIPOLAR":
            raise ValueError(f"{self.where}: a per-class map needs integer inputs, not BIPOLAR")
        x_range = kernels.type_range(self.get("inputDataType"))
        val_w = kernels.label_value_width(x_range, mul, off, shift, _bits(_dt(self.get("inputDataType"))))
        return {
            "HAS_MUL": int(has_mul), "HAS_OFFSET": int(has_off),
            "MUL_W": kernels.signed_width(min(mul), max(mul)) if has_mul else 2,
            "OFF_W": kernels.signed_width(min(off), max(off)) if has_off else 2,
            "SHIFT": shift, "VAL_W": val_w,
        }  # fmt: skip

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        mul, off, shift = self.class_map()
        return [kernels.label_select(inputs[0], int(self.get("K")), np.array(mul), np.array(off), shift)]

    def exp_cycles(self) -> int:
        return int(self.get("Labels")) // int(self.get("PE"))


class AddStreams(_PerChannel):
    """Elementwise sum of two streams (residual join); PE channels per beat."""

    op_type = "AddStreams"
    ATTRS = {"NumChannels": None, "PE": 1, "vectors": [1], "inputDataType": None, "outputDataType": None}
    OUT_BEAT = (("PE",), "outputDataType")

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_to_float(kernels.add_streams(inputs[0], inputs[1]))]


class DuplicateStreams(_PerChannel):
    """Two copies of one stream (residual fork); PE channels per beat."""

    op_type = "DuplicateStreams"
    ATTRS = {"NumChannels": None, "PE": 1, "vectors": [1], "inputDataType": None}

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [_to_float(a) for a in kernels.duplicate_streams(inputs[0], len(self.node.output))]


class _PassThrough(Layer):
    """A layer that passes its data through unchanged (it buffers or regroups beats), with its input
    and output widths in bits given by the attributes ``WIDTHS`` names."""

    WIDTHS: ClassVar[tuple[str, str]]

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0]]

    @property
    def in_width(self) -> int:
        return int(self.get(self.WIDTHS[0]))

    @property
    def out_width(self) -> int:
        return int(self.get(self.WIDTHS[1]))


class FIFO(_PassThrough):
    """A stream FIFO of ``depth`` beats of ``width`` bits; passes data through unchanged."""

    op_type = "FIFO"
    ATTRS = {"depth": 2, "width": None, "beats": None}
    WIDTHS = ("width", "width")

    def check(self) -> None:
        if int(self.get("depth")) < 1:
            raise ValueError(f"{self.where}: depth must be at least 1, not {self.get('depth')}")

    def exp_cycles(self) -> int:
        return int(self.get("beats"))


class WidthConverter(_PassThrough):
    """Regroups a stream from ``inWidth``- to ``outWidth``-bit beats (whole elements per beat)."""

    op_type = "WidthConverter"
    ATTRS = {"inWidth": None, "outWidth": None, "elemWidth": None, "elements": None}
    WIDTHS = ("inWidth", "outWidth")

    def check(self) -> None:
        e = int(self.get("elemWidth"))
        for k in ("inWidth", "outWidth"):
            if int(self.get(k)) % e:
                raise ValueError(f"{self.where}: {k} ({self.get(k)}) must be a multiple of the element width ({e})")

    def exp_cycles(self) -> int:
        e, n = int(self.get("elemWidth")), int(self.get("elements"))
        return n * e // min(int(self.get("inWidth")), int(self.get("outWidth")))


class VVAU(_MacLayer):
    """Depthwise vector-vector-activation unit (``hw/vvau.sv``) on the window stream of a
    SlidingWindow: weights (Channels, KH*KW), optional thresholds (Channels, T); each channel is
    convolved with its own kernel. ``Kernel`` is [KH, KW]; PE channels and SIMD window positions
    per beat, SIMD > 1 only with PE = Channels. Output and XNOR mode as :class:`MVAU`."""

    op_type = "VVAU"
    ATTRS = {"Channels": None, "Kernel": None, **_MAC_ATTRS}
    IN_BEAT = (("SIMD", "PE"), "inputDataType")
    kernel = staticmethod(kernels_dw.vvau)

    def kk(self) -> int:
        kh, kw = pair(self.get("Kernel"))
        return kh * kw

    def check(self) -> None:
        ch, pe, simd = int(self.get("Channels")), int(self.get("PE")), int(self.get("SIMD"))
        _divides(self.node, "PE", pe, "Channels", ch)
        _divides(self.node, "SIMD", simd, "KH*KW", self.kk())
        if simd > 1 and pe != ch:
            raise ValueError(
                f"{self.where}: SIMD > 1 needs PE = Channels ({ch}), not PE = {pe} with SIMD = {simd} (window "
                f"positions of the same channels are adjacent in the (ky, kx, c) stream only then)"
            )

    def exp_cycles(self) -> int:
        # hw/vvau.sv takes one beat per cycle: NF * SF beats per window, windows back to back
        ch, pe, simd = int(self.get("Channels")), int(self.get("PE")), int(self.get("SIMD"))
        return (ch // pe) * (self.kk() // simd) * self.vectors()


class TVSmooth(_PerChannel):
    """One TV smoothing step (``hw/tv_smooth.sv``, :func:`kernels_tv.tv_step`) on the 3x3 window
    stream (stride 1, padding 1) of an ``ImgDim`` = [H, W] map of ``NumChannels`` channels: input
    (N, H, W, 9*C) in (ky, kx, c) order, output the smoothed map (N, H, W, C); PE channels per beat.
    Codes in ``Lo`` .. ``Hi``; ``GammaQ`` = round(gamma^2 * 2^GammaFracBits), the table's ``FracBits``
    and ``Eps`` as :class:`kernels_tv.TVParams`."""

    op_type = "TVSmooth"
    ATTRS = {
        "NumChannels": None, "ImgDim": None, "PE": 1, "inputDataType": None, "Lo": None, "Hi": None,
        "GammaQ": None, "GammaFracBits": 4, "FracBits": 6, "Eps": 0.25,
    }  # fmt: skip

    def params(self) -> kernels_tv.TVParams:
        return kernels_tv.TVParams(
            int(self.get("GammaQ")), float(self.get("Eps")), int(self.get("FracBits")), int(self.get("GammaFracBits"))
        )

    def check(self) -> None:
        super().check()
        lo, hi = int(self.get("Lo")), int(self.get("Hi"))
        if lo >= hi:
            raise ValueError(f"{self.where}: the levels Lo..Hi must be increasing, not {lo}..{hi}")
        self.params()  # its own checks

    def execute(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        c = int(self.get("NumChannels"))
        win = np.asarray(inputs[0])
        if win.shape[-1] != 9 * c:
            raise ValueError(
                f"{self.where}: the input must be 3x3 windows of {c} channels (last axis {9 * c}), not {win.shape}"
            )
        # the window's centre (position 4) is the map itself; the step needs the map only (the
        # module reads the other positions of the same map from the window stream)
        x = win[..., 4 * c : 5 * c]
        return [_to_float(kernels_tv.tv_step(x, int(self.get("Lo")), int(self.get("Hi")), self.params()))]

    def exp_cycles(self) -> int:
        h, w = self.get("ImgDim")
        # nine window beats per pixel and channel fold, one per cycle
        return 9 * h * w * int(self.get("NumChannels")) // int(self.get("PE"))


LAYERS: dict[str, type[Layer]] = {
    cls.op_type: cls
    for cls in (
        MVAU,
        Thresholding,
        SlidingWindow,
        MaxPool,
        LabelSelect,
        AddStreams,
        DuplicateStreams,
        FIFO,
        WidthConverter,
        VVAU,
        TVSmooth,
    )
}


def get_layer(node: NodeProto) -> Layer:
    """The layer object of a node in the hardware domain."""
    if node.domain != HW_DOMAIN or node.op_type not in LAYERS:
        raise ValueError(f"{node.name} ({node.op_type}) is not a hardware layer; known: {', '.join(LAYERS)}")
    return LAYERS[node.op_type](node)


def hw_nodes(model) -> list[NodeProto]:
    return [n for n in model.graph.node if n.domain == HW_DOMAIN]
