"""Channels-last lowering of the integer graph: Conv -> SlidingWindow + MatMul, all NHWC.

:class:`LowerToChannelsLast` matches every 4D integer NCHW tensor that enters a Conv, MaxPool or
channels-first MultiThreshold from outside that region (the quantized input), puts a Transpose to
NHWC there (host side: the accelerator takes NHWC), and rewrites the region channels-last:

- Conv (any kernel and stride, the same padding before and after on each axis) -> SlidingWindow (im2col in (ky, kx, c)
  order) + MatMul with weights (KH*KW*Cin, Cout) in the same order; a depthwise Conv (group = C)
  -> SlidingWindow + VVAU with weights (C, KH*KW) (flows/passes/vvau.py);
- MultiThreshold -> the same thresholds with ``data_layout`` NHWC;
- MaxPool (kernel = stride, no padding; non-square for 1-D pooling) -> the MaxPool layer;
- TVSmooth on integer codes (scale 1, after the streamlining) -> SlidingWindow (3x3, stride 1,
  padding 1) + the TVSmooth layer (``hw/tv_smooth.sv``);
- Flatten / Reshape to 2D -> Reshape of the NHWC tensor, and the rows of the next MatMul (or the
  rows of per-feature thresholds before it) permuted from C*H*W to H*W*C order;
- Transpose NCHW -> NHWC -> nothing (the tensor already is NHWC);
- Add of two NCHW tensors (a residual join) -> Add of their NHWC twins.
It does not apply to graphs without such tensors; anything else reading an NCHW tensor is a
ValueError naming the node.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
from onnx import helper
from qnnflow.flows.ir.custom_ops import tv_node_params
from qnnflow.flows.ir.graph import Namer, add_const, topo_nodes, where
from qnnflow.flows.ir.layers import MaxPool, SlidingWindow, TVSmooth
from qnnflow.flows.passes.integer import _attr, _set_attr
from qnnflow.flows.passes.vvau import depthwise_vvau
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

REGION_OPS = ("Conv", "MaxPool", "MultiThreshold", "TVSmooth")


class _Site(NamedTuple):
    """A node's NCHW data input (its NHWC twin ``xin``, shape, type) and its output (shape, type)."""

    xin: str
    n: int
    c: int
    h: int
    w: int
    dt: DataType
    out: str
    oshape: list[int]
    odt: DataType


class LowerToChannelsLast:
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        entries = self._entries(model)
        if not entries:
            return model, False
        return _Lowering(model, entries).run(), True

    @staticmethod
    def _entries(model: ModelWrapper) -> list[str]:
        found = []
        names = {model.graph.input[0].name} | {o for n in model.graph.node for o in n.output}
        for t in names:
            shape = model.get_tensor_shape(t)
            if shape is None or len(shape) != 4 or not model.get_tensor_datatype(t).is_integer():
                continue
            p = model.find_producer(t)
            if p is not None and (p.op_type in REGION_OPS or p.op_type == "Add"):
                continue  # inside the region (an integer Add is a residual join of region tensors)
            cons = model.find_consumers(t) or []
            if any(
                c.op_type in ("Conv", "MaxPool")
                or (c.op_type == "MultiThreshold" and _attr(c, "data_layout", "NCHW") == "NCHW")
                for c in cons
            ):
                found.append(t)
        return found


class _Lowering:
    def __init__(self, model: ModelWrapper, entries: list[str]):
        self.m = model
        self.namer = Namer(model)
        self.entries = entries
        self.nhwc: dict[str, str] = {}  # NCHW tensor -> its NHWC twin
        self.perm: dict[str, np.ndarray] = {}  # 2D tensor in H*W*C order -> C*H*W index of each feature
        self._perm_names: dict[str, str] = {}  # such a tensor -> its name in the new graph
        self.nodes = []

    def _new(self, base: str, shape: list[int], dt: DataType) -> str:
        name = self.namer(base)
        self.m.set_tensor_shape(name, [int(d) for d in shape])
        self.m.set_tensor_datatype(name, dt)
        return name

    def run(self) -> ModelWrapper:
        m = self.m
        for t in self.entries:
            n, c, h, w = m.get_tensor_shape(t)
            dst = self._new(t + "_nhwc", [n, h, w, c], m.get_tensor_datatype(t))
            self.nodes.append(helper.make_node("Transpose", [t], [dst], name=self.namer("ToNHWC"), perm=[0, 2, 3, 1]))
            self.nhwc[t] = dst
        order = topo_nodes(m)
        for node in order:
            if any(i in self.nhwc for i in node.input):
                self._nchw(node)
            elif any(i in self.perm for i in node.input):
                self._permuted(node)
            else:
                self.nodes.append(node)
        m.graph.ClearField("node")
        m.graph.node.extend(self._ordered())
        return m

    def _ordered(self):
        # sort so that every node follows its producers (entries were appended first)
        from qnnflow.flows.ir.graph import topo_nodes as _topo

        tmp = ModelWrapper(copy.deepcopy(self.m.model))
        tmp.graph.ClearField("node")
        tmp.graph.node.extend(self.nodes)
        return _topo(tmp)

    # -- NCHW consumers --------------------------------------------------------------------------
    def _nchw(self, node) -> None:
        """A node reading an NCHW tensor of the region: its channels-last version (one method per
        op type), whose output becomes the NHWC twin (or the H*W*C flattening) of its output."""
        m = self.m
        x = node.input[0]
        if x not in self.nhwc:
            raise ValueError(f"{where(node)}: reads a channels-first tensor on a non-data input")
        n, c, h, w = m.get_tensor_shape(x)
        out = node.output[0]
        site = _Site(
            self.nhwc[x], n, c, h, w, m.get_tensor_datatype(x), out, m.get_tensor_shape(out), m.get_tensor_datatype(out)
        )
        op = node.op_type
        if op == "Conv":
            self._conv(node, site)
        elif op == "MultiThreshold":
            self._thresholds(node, site)
        elif op == "MaxPool":
            self._maxpool(node, site)
        elif op == "TVSmooth":
            self._tv_smooth(node, site)
        elif op in ("Flatten", "Reshape") and len(site.oshape) == 2:
            self._flatten(node, site)
        elif op == "Add" and all(i in self.nhwc for i in node.input):  # residual join of two streams
            y = self._new(out + "_nhwc", [n, h, w, c], site.odt)
            self.nodes.append(helper.make_node("Add", [self.nhwc[i] for i in node.input], [y], name=node.name))
            self.nhwc[out] = y
        elif op == "Transpose" and list(_attr(node, "perm")) == [0, 2, 3, 1]:
            self._rename_consumers(out, site.xin)
        else:
            raise ValueError(f"{where(node)}: {op} on a channels-first tensor has no channels-last lowering")

    def _conv(self, node, site: _Site) -> None:
        m = self.m
        xin, n, c, h, w, dt, out, odt = site.xin, site.n, site.c, site.h, site.w, site.dt, site.out, site.odt
        k = _attr(node, "kernel_shape")
        s = _attr(node, "strides", [1, 1])
        p = _attr(node, "pads", [0, 0, 0, 0])
        if p[0] != p[2] or p[1] != p[3] or any(_attr(node, "dilations", [1, 1])[i] != 1 for i in (0, 1)):
            raise ValueError(
                f"{where(node)}: only convolutions with the same padding before and after on each axis and no "
                f"dilation are supported (kernel {k}, strides {s}, pads {p})"
            )
        _, cout, oh, ow = site.oshape

        def axes(v):  # one int for a square window (as before), else [rows, cols]
            return int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]

        win = self._new(out + "_win", [n, oh, ow, k[0] * k[1] * c], dt)
        self.nodes.append(SlidingWindow.make(
            self.namer(node.name + "_swg"), [xin], [win], IFMChannels=int(c), IFMDim=[int(h), int(w)],
            OFMDim=[int(oh), int(ow)], ConvKernelDim=axes(k), Stride=axes(s), Pad=axes(p[:2]),
            PadValue=0,
            inputDataType=dt.name,
        ))  # fmt: skip
        y = self._new(out + "_nhwc", [n, oh, ow, cout], odt)
        if int(_attr(node, "group", 1)) != 1:  # depthwise (the streamlining refuses other groups)
            self.nodes.append(depthwise_vvau(m, self.namer, node, win, y, dt, odt))
            self.nhwc[out] = y
            return
        wt = m.get_initializer(node.input[1])  # (Cout, Cin, KH, KW)
        w2 = wt.transpose(2, 3, 1, 0).reshape(-1, wt.shape[0])
        wname = add_const(m, self.namer, node.name + "_W", w2, m.get_tensor_datatype(node.input[1]))
        self.nodes.append(helper.make_node("MatMul", [win, wname], [y], name=node.name))
        self.nhwc[out] = y

    def _thresholds(self, node, site: _Site) -> None:
        new = copy.deepcopy(node)
        new.input[0] = site.xin
        y = self._new(site.out + "_nhwc", [site.n, site.h, site.w, site.c], site.odt)
        new.output[0] = y
        _set_attr(new, "data_layout", "NHWC")
        self.nodes.append(new)
        self.nhwc[site.out] = y

    def _maxpool(self, node, site: _Site) -> None:
        k = _attr(node, "kernel_shape")
        s = _attr(node, "strides", k)
        if list(s) != list(k) or any(_attr(node, "pads", [0, 0, 0, 0])):
            raise ValueError(
                f"{where(node)}: only pooling with the stride equal to the window and no padding is supported "
                f"(kernel {list(k)}, strides {list(s)})"
            )
        y = self._new(site.out + "_nhwc", [site.n, site.oshape[2], site.oshape[3], site.c], site.odt)
        self.nodes.append(
            MaxPool.make(
                node.name,
                [site.xin],
                [y],
                NumChannels=int(site.c),
                ImgDim=[int(site.h), int(site.w)],
                PoolDim=int(k[0]) if k[0] == k[1] else [int(k[0]), int(k[1])],
                inputDataType=site.dt.name,
            )
        )
        self.nhwc[site.out] = y

    def _tv_smooth(self, node, site: _Site) -> None:
        scale, lo, hi, p, _ = tv_node_params(node)
        if scale != 1.0:
            raise ValueError(f"{where(node)}: TVSmooth must act on integer codes (scale 1) here, not scale {scale:g}")
        hw = [int(site.h), int(site.w)]
        win = self._new(site.out + "_win", [site.n, *hw, 9 * site.c], site.dt)
        self.nodes.append(SlidingWindow.make(
            self.namer(node.name + "_swg"), [site.xin], [win], IFMChannels=int(site.c), IFMDim=hw,
            OFMDim=hw, ConvKernelDim=3, Stride=1, Pad=1, PadValue=0, inputDataType=site.dt.name,
        ))  # fmt: skip
        y = self._new(site.out + "_nhwc", [site.n, site.h, site.w, site.c], site.odt)
        self.nodes.append(TVSmooth.make(
            node.name, [win], [y], NumChannels=int(site.c), ImgDim=[int(site.h), int(site.w)],
            inputDataType=site.dt.name, Lo=lo, Hi=hi, GammaQ=p.gamma_q, GammaFracBits=p.gamma_frac_bits,
            FracBits=p.frac_bits, Eps=float(p.eps),
        ))  # fmt: skip
        self.nhwc[site.out] = y

    def _flatten(self, node, site: _Site) -> None:
        n, c, h, w = site.n, site.c, site.h, site.w
        shape_name = add_const(self.m, self.namer, "flat_shape", np.array([n, h * w * c], dtype=np.int64))
        y = self._new(site.out + "_hwc", [n, h * w * c], site.odt)
        self.nodes.append(helper.make_node("Reshape", [site.xin, shape_name], [y], name=node.name))
        # feature j of the NHWC flattening is feature perm[j] of the NCHW flattening
        perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
        self._perm_out(site.out, y, perm)

    def _perm_out(self, old: str, new: str, perm: np.ndarray) -> None:
        if np.array_equal(perm, np.arange(len(perm))):
            self._rename_consumers(old, new)
        else:
            self.perm[old] = perm
            self._perm_names[old] = new

    def _rename_consumers(self, old: str, new: str) -> None:
        for other in self.m.graph.node:
            for i, name in enumerate(other.input):
                if name == old:
                    other.input[i] = new
        for o in self.m.graph.output:
            if o.name == old:
                raise ValueError(f"the graph output {old} is a channels-first tensor")

    # -- consumers of a permuted 2D tensor ------------------------------------------------------
    def _permuted(self, node) -> None:
        m = self.m
        x = node.input[0]
        perm = self.perm[x]
        new = copy.deepcopy(node)
        new.input[0] = self._perm_names[x]
        if node.op_type == "MatMul":
            w = m.get_initializer(node.input[1])
            new.input[1] = add_const(m, self.namer, node.name + "_W", w[perm], m.get_tensor_datatype(node.input[1]))
            self.nodes.append(new)
        elif node.op_type == "MultiThreshold":
            thr = m.get_initializer(node.input[1])
            if thr.shape[0] > 1:
                new.input[1] = add_const(m, self.namer, node.name + "_T", thr[perm])
            y = self.namer(node.output[0] + "_hwc")
            m.set_tensor_shape(y, m.get_tensor_shape(node.output[0]))
            m.set_tensor_datatype(y, m.get_tensor_datatype(node.output[0]))
            new.output[0] = y
            self.nodes.append(new)
            self.perm[node.output[0]] = perm
            self._perm_names[node.output[0]] = y
        else:
            raise ValueError(f"{where(node)}: {node.op_type} after flattening a channels-first tensor is not supported")
