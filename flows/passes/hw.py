"""Conversion of the channels-last integer graph to hardware layers (flows/ir/layers.py).

Passes (``apply(model) -> (model, changed)``, to a fixed point):
- :class:`InferMVAU`: integer MatMul (+ its MultiThreshold) -> MVAU, bipolar x bipolar as XNOR-popcount;
- :class:`InferThresholding`: a standalone channels-last MultiThreshold -> Thresholding;
- :class:`InferAddStreams`: Add of two integer streams (a residual join) -> AddStreams;
- :class:`InferDuplicateStreams`: an integer stream read by several hardware layers (a residual
  fork) -> DuplicateStreams, one output per reader.

The label selection passes (``FinalScaleToLabelSelect``, ``InferLabelSelect``) are
flows/passes/hw_labels.py. The helpers a MAC layer's pass uses to type its weights and accumulator and to take a
MultiThreshold in (:func:`weight_type`, :func:`accumulator_type`, :func:`activation_output`,
:func:`layer_thresholds`) serve flows/passes/vvau.py too.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.graph import HW_DOMAIN, Namer, add_const, consumers, datatype_for_range, where
from qnnflow.flows.ir.layers import MVAU, AddStreams, DuplicateStreams, Thresholding
from qnnflow.flows.passes.integer import _attr
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def _range(dt: DataType) -> tuple[int, int]:
    return kernels.type_range(dt.name)


def _replace(model: ModelWrapper, old_nodes: list, new_node) -> None:
    nodes = list(model.graph.node)
    i = nodes.index(old_nodes[0])
    for n in old_nodes:
        nodes.remove(n)
    nodes.insert(i, new_node)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)


def _retype_readers(model: ModelWrapper, tensor: str, dt: DataType) -> None:
    """A layer's output stream has type ``dt`` (its hardware width), which may be wider than the exact
    range the streamlining annotated: shape-only nodes after it pass ``dt`` on, and layers already
    made from the tensor read ``dt`` (their ``inputDataType``), so that producer and reader widths agree."""
    for user in model.find_consumers(tensor) or []:
        if user.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"):
            model.set_tensor_datatype(user.output[0], dt)
            _retype_readers(model, user.output[0], dt)
            continue
        names = {a.name for a in user.attribute}
        for a in user.attribute:
            if a.name == "inputDataType" and a.s.decode() != dt.name:
                a.s = dt.name.encode()
        if "inputDataType" in names and "outputDataType" not in names:  # passes its elements on
            for o in user.output:
                if o and model.get_tensor_datatype(o) != dt:
                    model.set_tensor_datatype(o, dt)
                    _retype_readers(model, o, dt)


def weight_type(model: ModelWrapper, name: str, w: np.ndarray) -> DataType:
    """The datatype of the integer weights ``w`` (initializer ``name``): their annotation when it is
    an integer type, else BIPOLAR for -1 / +1 only, else the narrowest integer type of their range."""
    dt = model.get_tensor_datatype(name)
    if dt.is_integer():
        return dt
    return DataType["BIPOLAR"] if np.all(np.abs(w) == 1) else datatype_for_range(int(w.min()), int(w.max()))


def accumulator_type(
    products: int, idt: DataType, wdt: DataType, xnor: bool, at: str
) -> tuple[tuple[int, int], DataType]:
    """The range of an accumulator over ``products`` products of ``idt`` by ``wdt`` values (the
    XNOR-popcount's with ``xnor``) and its datatype, ``INT<ACC_W>`` (ValueError naming ``at`` when
    wider than the hardware holds)."""
    x_rng, w_rng = _range(idt), _range(wdt)
    acc_range = kernels.accumulator_range(products, x_rng, w_rng, xnor=xnor)
    return acc_range, DataType[f"INT{kernels.accumulator_width(products, x_rng, w_rng, xnor=xnor, where=at)}"]


def channels_last(mt) -> bool:
    """Whether a MultiThreshold thresholds the last axis: its layout channels-last, 2-D or not given."""
    return _attr(mt, "data_layout", "") in ("", "NC", "NHWC", "NWC")


def activation_output(mt) -> tuple[DataType, int | None]:
    """A MultiThreshold's output datatype and the ``ActVal`` of a hardware layer's output
    ``count + ActVal`` that equals it: output scale 1 and an integer bias, or a bipolar output's
    scale 2 and bias -1 (ActVal 0, the count 0 / 1 read as -1 / +1); None for any other."""
    scale, bias = _scale_bias(mt)
    odt = DataType[_attr(mt, "out_dtype")]
    bip = odt == DataType["BIPOLAR"]
    if not ((scale == 1.0 and bias == round(bias)) or (bip and scale == 2.0 and bias == -1.0)):
        return odt, None
    return odt, 0 if bip else int(bias)


def _scale_bias(mt) -> tuple[float, float]:
    return float(_attr(mt, "out_scale", 1.0)), float(_attr(mt, "out_bias", 0.0))


def _no_output_offset(mt, layer: str) -> ValueError:
    """The error for a MultiThreshold whose output scale and bias are not ``layer`` output offset."""
    scale, bias = _scale_bias(mt)
    return ValueError(f"{where(mt)}: output scale {scale} / bias {bias} cannot be {layer} output offset")


def layer_thresholds(thr: np.ndarray, rows: int, products: int, xnor: bool, acc_range: tuple[int, int]) -> np.ndarray:
    """A MultiThreshold's thresholds ``thr`` (float) as those of a MAC layer of ``rows`` output
    channels over ``products`` products: one row for all channels repeated, moved to the
    XNOR-popcount domain with ``xnor``, clipped to the accumulator range."""
    if thr.shape[0] == 1 and rows > 1:
        thr = np.repeat(thr, rows, axis=0)
    if xnor:  # dot = 2 * popcount - products, so dot >= t  <=>  popcount >= ceil((t + products) / 2)
        thr = np.ceil((thr + products) / 2)
    return kernels.clip_thresholds(thr, *acc_range)


class InferMVAU:
    """Matches MatMul(integer x, integer constant W) with an optional MultiThreshold as its only
    consumer, and makes one MVAU (weights stored (MH, MW), thresholds clipped to the accumulator
    range; with bipolar x and W the thresholds move to the XNOR-popcount domain)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for mm in model.get_nodes_by_op_type("MatMul"):
            w = model.get_initializer(mm.input[1])
            idt = model.get_tensor_datatype(mm.input[0])
            if w is None or not idt.is_integer():
                continue
            wdt = weight_type(model, mm.input[1], w)
            mw, mh = w.shape
            xnor = idt == DataType["BIPOLAR"] and wdt == DataType["BIPOLAR"]
            acc_range, acc_dt = accumulator_type(mw, idt, wdt, xnor, where(mm))
            in_shape = model.get_tensor_shape(mm.input[0])
            namer = Namer(model)
            wname = add_const(model, namer, mm.name + "_W", w.T.astype(np.float32), wdt)
            cons = consumers(model, mm.output[0])
            mt = cons[0] if len(cons) == 1 and cons[0].op_type == "MultiThreshold" else None
            attrs = dict(
                MW=int(mw), MH=int(mh), vectors=[int(d) for d in in_shape[1:-1]] or [1],
                inputDataType=idt.name, weightDataType=wdt.name, accDataType=acc_dt.name,
                binaryXnorMode=int(xnor),
            )  # fmt: skip
            ins = [mm.input[0], wname]
            if mt is None:
                self._accumulator_output(model, namer, mm, ins, cons, attrs, acc_range)
            elif channels_last(mt):
                self._with_activation(model, namer, mm, mt, ins, attrs, acc_range, acc_dt)
            else:
                continue  # channels-first: the channels-last lowering comes first
            return model, True
        return model, False

    @staticmethod
    def _with_activation(model: ModelWrapper, namer: Namer, mm, mt, ins: list[str], attrs: dict,
                         acc_range: tuple[int, int], acc_dt: DataType) -> None:  # fmt: skip
        """The MatMul ``mm`` and its MultiThreshold ``mt`` -> one MVAU with those thresholds."""
        odt, act_val = activation_output(mt)
        if act_val is None:
            raise _no_output_offset(mt, "an MVAU")
        thr = model.get_initializer(mt.input[1]).astype(np.float64)
        thr = layer_thresholds(thr, attrs["MH"], attrs["MW"], bool(attrs["binaryXnorMode"]), acc_range)
        tname = add_const(model, namer, mm.name + "_T", thr.astype(np.float32), acc_dt)
        node = MVAU.make(mm.name, [*ins, tname], [mt.output[0]], outputDataType=odt.name, ActVal=act_val, **attrs)
        _replace(model, [mm, mt], node)
        model.set_tensor_datatype(mt.output[0], odt)

    @staticmethod
    def _accumulator_output(model: ModelWrapper, namer: Namer, mm, ins: list[str], cons: list, attrs: dict,
                            acc_range: tuple[int, int]) -> None:  # fmt: skip
        """The MatMul ``mm`` -> an MVAU without activation, whose output is the accumulator; with
        XNOR that is the popcount, a new tensor, converted back to the dot product unless only TopK
        reads it (the popcount ranks the classes as the dot does)."""
        mw, xnor = attrs["MW"], bool(attrs["binaryXnorMode"])
        odt = DataType[f"INT{kernels.signed_width(*acc_range)}"] if not xnor else datatype_for_range(0, mw)
        out = mm.output[0]
        is_output = any(o.name == out for o in model.graph.output)
        to_dot = xnor and (is_output or any(c.op_type != "TopK" for c in cons))
        if xnor:  # a new name: the popcount is another value than the dot product it replaces
            out = namer(mm.output[0] + "_popcount")
        if xnor and not to_dot:  # only TopK reads it: the popcount ranks the classes as the dot does
            for c in cons:
                c.input[0] = out
        node = MVAU.make(mm.name, ins, [out], outputDataType=odt.name, noActivation=1, **attrs)
        if out != mm.output[0]:
            model.set_tensor_shape(out, model.get_tensor_shape(mm.output[0]))
        _replace(model, [mm], node)
        model.set_tensor_datatype(out, odt)
        _retype_readers(model, out, odt)
        if to_dot:
            _popcount_to_dot(model, namer, node, out, mm.output[0], mw)


def _popcount_to_dot(model: ModelWrapper, namer: Namer, node, popcount: str, dot: str, mw: int) -> None:
    """Mul / Sub after ``node`` that turn its XNOR-popcount over ``mw`` products back into the dot
    product, 2 * popcount - MW, in the tensor ``dot``."""
    two, mwc, dbl = (
        add_const(model, namer, "two", np.array(2.0)),
        add_const(model, namer, "mw", np.array(float(mw))),
        namer("popcount_x2"),
    )
    nodes = list(model.graph.node)
    i = nodes.index(node) + 1
    nodes[i:i] = [
        helper.make_node("Mul", [popcount, two], [dbl], name=namer("PopcountToDot")),
        helper.make_node("Sub", [dbl, mwc], [dot], name=namer("PopcountToDot")),
    ]
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    model.set_tensor_datatype(dot, DataType[f"INT{kernels.signed_width(-mw, mw)}"])


class InferThresholding:
    """Matches a MultiThreshold on an integer, channels-last tensor (2D NC or NHWC) that no MVAU
    absorbed, and makes a Thresholding layer."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for mt in model.get_nodes_by_op_type("MultiThreshold"):
            idt = model.get_tensor_datatype(mt.input[0])
            shape = model.get_tensor_shape(mt.input[0])
            layout = _attr(mt, "data_layout", "")
            if not idt.is_integer():
                continue
            p = model.find_producer(mt.input[0])
            if p is not None and p.op_type == "MatMul":
                continue  # becomes the activation of an MVAU
            if len(shape) > 2 and layout not in ("NHWC", "NWC"):
                continue  # channels-first: the channels-last lowering comes first
            odt, act_val = activation_output(mt)
            if act_val is None:
                raise _no_output_offset(mt, "a threshold")
            c = shape[-1]
            thr = model.get_initializer(mt.input[1]).astype(np.float64)
            if thr.shape[0] == 1 and c > 1:
                thr = np.repeat(thr, c, axis=0)
            lo, hi = _range(idt)
            thr = kernels.clip_thresholds(thr, lo, hi)
            namer = Namer(model)
            tdt = DataType[f"INT{kernels.threshold_width(lo, hi, where=where(mt))}"]
            tname = add_const(model, namer, mt.name + "_T", thr.astype(np.float32), tdt)
            node = Thresholding.make(
                mt.name,
                [mt.input[0], tname],
                [mt.output[0]],
                NumChannels=int(c),
                vectors=[int(d) for d in shape[1:-1]] or [1],
                inputDataType=idt.name,
                outputDataType=odt.name,
                ActVal=act_val,
            )
            _replace(model, [mt], node)
            return model, True
        return model, False


class InferAddStreams:
    """Matches Add of two computed integer tensors of one shape (channels last) -> AddStreams. Both
    inputs must have one datatype (the RTL module has one input width and signedness); ValueError
    naming the node otherwise."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for add in model.get_nodes_by_op_type("Add"):
            ins = list(add.input)
            if len(ins) != 2 or any(model.get_initializer(i) is not None for i in ins):
                continue
            dts = [model.get_tensor_datatype(i) for i in ins]
            if not all(dt.is_integer() for dt in dts):
                continue
            shapes = [model.get_tensor_shape(i) for i in ins]
            if shapes[0] != shapes[1]:
                raise ValueError(f"{where(add)}: AddStreams needs inputs of one shape, found {shapes}")
            if dts[0] != dts[1]:
                raise ValueError(
                    f"{where(add)}: AddStreams needs both inputs of one datatype, found {dts[0].name} and "
                    f"{dts[1].name}; quantize both branches of the residual block with one quantizer"
                )
            if dts[0] == DataType["BIPOLAR"]:
                raise ValueError(f"{where(add)}: AddStreams does not add bipolar streams")
            lo, hi = _range(dts[0])
            odt = datatype_for_range(2 * lo, 2 * hi)
            node = AddStreams.make(
                add.name, ins, [add.output[0]], NumChannels=int(shapes[0][-1]),
                vectors=[int(d) for d in shapes[0][1:-1]] or [1], inputDataType=dts[0].name,
                outputDataType=odt.name,
            )  # fmt: skip
            _replace(model, [add], node)
            model.set_tensor_datatype(add.output[0], odt)
            _retype_readers(model, add.output[0], odt)
            return model, True
        return model, False


class InferDuplicateStreams:
    """Matches an integer tensor read by two or more nodes that are all hardware layers (a residual
    fork inside the accelerator), and puts one DuplicateStreams with one output per reader before
    them. Does not apply to a tensor read by a host-side node or by a DuplicateStreams."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            for t in node.output:
                readers = consumers(model, t)
                if len(readers) < 2 or any(r.domain != HW_DOMAIN for r in readers):
                    continue
                if node.op_type == "DuplicateStreams":
                    continue
                dt = model.get_tensor_datatype(t)
                shape = model.get_tensor_shape(t)
                namer = Namer(model)
                outs = [namer(f"{t}_dup") for _ in readers]
                dup = DuplicateStreams.make(
                    namer("DuplicateStreams"), [t], outs, NumChannels=int(shape[-1]),
                    vectors=[int(d) for d in shape[1:-1]] or [1], inputDataType=dt.name,
                )  # fmt: skip
                for r, o in zip(readers, outs, strict=True):
                    for i, name in enumerate(r.input):
                        if name == t:
                            r.input[i] = o
                            break
                    model.set_tensor_shape(o, shape)
                    model.set_tensor_datatype(o, dt)
                nodes = list(model.graph.node)
                nodes.insert(nodes.index(node) + 1, dup)
                model.graph.ClearField("node")
                model.graph.node.extend(nodes)
                return model, True
        return model, False


def hw_region(model: ModelWrapper) -> tuple[list, list, list]:
    """(host-side nodes before, hardware nodes with the shape-only nodes between them, host-side
    nodes after); ValueError naming any other node found between hardware layers."""
    nodes = list(model.graph.node)
    idx = [i for i, n in enumerate(nodes) if n.domain == HW_DOMAIN]
    if not idx:
        raise ValueError("the graph has no hardware layers")
    first, last = idx[0], idx[-1]
    middle = nodes[first : last + 1]
    bad = [
        n for n in middle if n.domain != HW_DOMAIN and n.op_type not in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
    ]
    if bad:
        listing = "; ".join(f"{n.name} ({n.op_type})" for n in bad)
        raise ValueError(f"nodes between hardware layers that have no hardware layer: {listing}")
    return nodes[:first], middle, nodes[last + 1 :]
