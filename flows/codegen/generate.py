""":func:`generate`: the folded dataflow graph -> a build folder's ``rtl/`` (see :mod:`qnnflow.flows.codegen`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen.backends import Backend, ElemType, backend
from qnnflow.flows.codegen.design import (
    DESIGN_FILE,
    PROBE_TOP,
    TOP,
    Design,
    FifoInfo,
    Split,
    StreamInfo,
    elem_type,
    frame_shapes,
    in_type_name,
    sanitize,
    split,
)
from qnnflow.flows.codegen.memfiles import write_memh
from qnnflow.flows.codegen.netlist import accelerator_netlist, probe_netlist
from qnnflow.flows.ir.layers import Layer, get_layer
from qnnflow.hw import library as rtl_lib
from qonnx.core.modelwrapper import ModelWrapper

# layers whose output elements are their input's (the stream type passes through)
_PASS_THROUGH = ("FIFO", "WidthConverter", "DuplicateStreams", "MaxPool", "SlidingWindow", "TVSmooth")


class _Streams:
    """The accelerator's streams as the layers are visited in order: each layer's output tensors
    become new streams, its inputs must be streams no other layer reads yet."""

    def __init__(self, model: ModelWrapper, sp: Split):
        self.model, self.sp = model, sp
        self.shapes = frame_shapes(model)
        self.streams: list[StreamInfo] = []
        self.by_tensor: dict[str, int] = {}

    def of(self, tensor: str) -> StreamInfo:
        return self.streams[self.by_tensor[self.sp.alias.get(tensor, tensor)]]

    def add(self, tensor: str, width: int, elem: ElemType, src: str) -> None:
        elems = int(np.prod(self.shapes[tensor]))
        epb = width // elem.bits
        if epb < 1 or width % elem.bits or elems % epb:
            raise ValueError(
                f"stream {tensor}: {width}-bit beats must hold whole {elem.bits}-bit elements and a frame "
                f"({elems} elements) whole beats"
            )
        name = f"s{len(self.streams)}_{sanitize(src if src != 's_axis' else 'in')}"
        beats = elems // epb
        self.streams.append(StreamInfo(name, tensor, width, elem.bits, elem.signed, elem.bipolar, beats, src, ""))
        self.by_tensor[tensor] = len(self.streams) - 1

    def connect(self, node, layer: Layer, inst: str, lanes: int) -> list[StreamInfo]:
        """The layer's input streams, marked as read by ``inst``."""
        ins = []
        for t in node.input[:lanes]:
            if self.sp.alias.get(t, t) not in self.by_tensor:
                raise ValueError(f"{node.name} ({node.op_type}): input stream {t} has no producer in the hardware")
            s = self.of(t)
            if s.dst:
                raise ValueError(f"stream {t} feeds both {s.dst} and {inst}: insert a DuplicateStreams layer")
            if s.width != layer.in_width:
                raise ValueError(
                    f"{node.name} ({node.op_type}): input beats are {layer.in_width} bits, but stream {t} "
                    f"carries {s.width}-bit beats"
                )
            s.dst = inst
            ins.append(s)
        return ins

    def produce(self, node, layer: Layer, inst: str) -> list[StreamInfo]:
        """The layer's output streams (element type from the graph, or passed through)."""
        out_type = layer.get("outputDataType") if "outputDataType" in layer.ATTRS else ""
        for t in node.output:
            elem = elem_type(self.model, t, out_type or "")
            if not out_type and node.op_type in _PASS_THROUGH:
                src = self.of(node.input[0])
                elem = ElemType(src.elem_bits, src.signed, src.bipolar)
            self.add(t, layer.out_width, elem, inst)
        return [self.streams[self.by_tensor[t]] for t in node.output]


def generate(
    model: ModelWrapper | Path | str,
    out_dir: Path | str,
    fifo_depths: dict[str, int] | None = None,
) -> Design:
    """Write the accelerator of the dataflow graph ``model`` into ``out_dir`` (a build folder's ``rtl/``).

    ``fifo_depths`` (FIFO node name -> beats) overrides the depths in the graph. The folder is
    emptied first. Returns the :class:`Design` (also written to ``design.json``).
    """
    if not isinstance(model, ModelWrapper):
        model = ModelWrapper(str(model))
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sp = split(model)
    st = _Streams(model, sp)
    first = get_layer(sp.hw_nodes[0])
    st.add(sp.in_tensor, first.in_width, elem_type(model, sp.in_tensor, in_type_name(first)), "s_axis")
    backends, layers, fifos = _layers(st, dict(fifo_depths or {}))
    out_index = st.by_tensor[sp.out_tensor]
    st.streams[out_index].dst = "m_axis"
    for s in st.streams:
        if not s.dst:
            raise ValueError(f"stream {s.tensor} from {s.src} is not consumed by any layer")
    (out / "top.sv").write_text(accelerator_netlist(st.streams, out_index, layers, len(backends)).render())
    (out / "probe.sv").write_text(probe_netlist(st.streams, out_index).render())
    files = _write_sources(out, backends)
    design = Design(
        rtl_dir=str(out.resolve()), top=TOP, probe_top=PROBE_TOP, files=files, streams=st.streams, fifos=fifos,
        in_tensor=sp.in_tensor, out_tensor=sp.out_tensor, in_shape=st.shapes[sp.in_tensor],
        out_shape=st.shapes[sp.out_tensor], out_index=out_index,
        layers=[
            {"instance": inst, "name": be.layer.node.name, "op_type": be.layer.op_type, "module": be.module,
             "params": be.params, "exp_cycles": be.layer.exp_cycles()}
            for inst, be in backends
        ],
    )  # fmt: skip
    (out / DESIGN_FILE).write_text(json.dumps(design.as_dict(), indent=1) + "\n")
    return design


def _layers(st: _Streams, fifo_depths: dict[str, int]) -> tuple[list, list, list[FifoInfo]]:
    """Every hardware layer's backend, its netlist entry (instance, module, parameters, input and
    output streams), and the FIFOs with their depths."""
    backends: list[tuple[str, Backend]] = []
    layers, fifos = [], []
    for node in st.sp.hw_nodes:
        layer = get_layer(node)
        inst = "u_" + sanitize(node.name)
        if node.op_type == "FIFO" and node.name in fifo_depths:
            layer.set("depth", int(fifo_depths[node.name]))
        be = backend(layer, st.model, sanitize(node.name))
        ins = st.connect(node, layer, inst, be.in_lanes)
        outs = st.produce(node, layer, inst)
        if node.op_type == "FIFO":
            i = st.by_tensor[st.sp.alias.get(node.input[0], node.input[0])]
            fifos.append(FifoInfo(node.name, i, st.by_tensor[node.output[0]], int(be.params["DEPTH"]), ins[0].beats))
        backends.append((inst, be))
        layers.append((inst, be.module, be.params, ins, outs))
    return backends, layers, fifos


def _write_sources(out: Path, backends: list[tuple[str, Backend]]) -> list[str]:
    """The memory files, the library sources the layers use (copied, so ``rtl/`` stands alone) and
    ``files.f`` in compile order; returns that order."""
    for _, be in backends:
        for mem in be.memories:
            write_memh(out / mem.name, mem.words, mem.width)
    files: list[str] = []
    for m in sorted({be.module for _, be in backends}):
        for src in rtl_lib.sources(m):
            if src.name not in files:
                shutil.copy(src, out / src.name)
                files.append(src.name)
    files.append("top.sv")
    (out / "files.f").write_text("\n".join(files) + "\n")
    return files
