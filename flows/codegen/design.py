"""The design codegen writes (``design.json``): the streams and layers of the hardware part of a
dataflow graph, as the simulation and the implementation read them back; and :func:`split`, which
says where the hardware part starts and ends."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen.backends import ElemType
from qnnflow.flows.ir.graph import HW_DOMAIN, SHAPE_OPS, topo_nodes
from qonnx.core.modelwrapper import ModelWrapper

TOP = "accelerator"
PROBE_TOP = "accelerator_probe"
DESIGN_FILE = "design.json"


@dataclass
class StreamInfo:
    """One stream of the accelerator (a wire bundle ``<name>_tdata/tvalid/tready`` in top.sv)."""

    name: str
    tensor: str
    width: int
    elem_bits: int
    signed: bool
    bipolar: bool
    beats: int  # per frame
    src: str  # producing instance, or "s_axis" for the accelerator's input
    dst: str  # consuming instance, or "m_axis" for its output

    @property
    def elems_per_beat(self) -> int:
        return self.width // self.elem_bits

    @property
    def words32(self) -> int:
        return -(-self.width // 32)


@dataclass
class FifoInfo:
    name: str
    in_stream: int  # index into Design.streams
    out_stream: int
    depth: int
    beats: int


@dataclass
class Design:
    """What codegen wrote, as the simulation and the implementation read it back (design.json)."""

    rtl_dir: str
    top: str
    probe_top: str
    files: list[str]  # relative to rtl_dir, in compile order (without probe.sv)
    streams: list[StreamInfo]
    fifos: list[FifoInfo]
    in_tensor: str  # the dataflow graph's tensor entering the hardware
    out_tensor: str  # ... and leaving it
    in_shape: list[int]  # of one frame (no batch dimension)
    out_shape: list[int]
    out_index: int  # the output stream's index in streams (the input's is 0)
    layers: list[dict] = field(default_factory=list)  # instance, name, op_type, module, params, exp_cycles

    @property
    def input(self) -> StreamInfo:
        return self.streams[0]

    @property
    def output(self) -> StreamInfo:
        return self.streams[self.out_index]

    @property
    def path(self) -> Path:
        return Path(self.rtl_dir)

    def as_dict(self) -> dict:
        return asdict(self)

    def stream_where(self, i: int) -> str:
        s = self.streams[i]
        src = "the accelerator input" if s.src == "s_axis" else s.src
        dst = "the accelerator output" if s.dst == "m_axis" else s.dst
        return f"{s.name} ({src} -> {dst})"


def load_design(rtl: Path | str) -> Design:
    """The design written by :func:`generate` into ``rtl`` (a build folder's ``rtl/``)."""
    path = Path(rtl) / DESIGN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {DESIGN_FILE} in {rtl}: run code generation first (qnnflow sim does)")
    d = json.loads(path.read_text())
    d["streams"] = [StreamInfo(**s) for s in d["streams"]]
    d["fifos"] = [FifoInfo(**f) for f in d["fifos"]]
    d["rtl_dir"] = str(Path(rtl).resolve())
    return Design(**d)


@dataclass
class Split:
    """Where the hardware part of a dataflow graph starts and ends."""

    in_tensor: str
    out_tensor: str
    hw_nodes: list  # in topological order
    alias: dict[str, str]  # tensor after a shape op -> the stream tensor it is a view of
    host_after: list  # non-hardware nodes after the hardware (run on the host)


def sanitize(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    return s if re.match(r"[A-Za-z_]", s) else "n_" + s


def split(model: ModelWrapper) -> Split:
    """Find the hardware part: one input stream, one output stream, shape ops in between as views.

    Raises ValueError naming the node when a non-hardware node sits between hardware layers, or
    when the hardware has other than one input and one output stream.
    """
    nodes = topo_nodes(model)
    alias: dict[str, str] = {}
    hw = [n for n in nodes if n.domain == HW_DOMAIN]
    if not hw:
        raise ValueError("the dataflow graph has no hardware layers (domain qnnflow.flows.layers)")
    produced = {o for n in hw for o in n.output}
    first, last = nodes.index(hw[0]), nodes.index(hw[-1])
    for n in nodes[first : last + 1]:
        if n.domain == HW_DOMAIN:
            continue
        src = alias.get(n.input[0], n.input[0]) if n.input else ""
        if n.op_type in SHAPE_OPS and src in produced:
            alias[n.output[0]] = src
            continue
        raise ValueError(
            f"{n.name} ({n.op_type}) sits between hardware layers; only {', '.join(SHAPE_OPS)} may, "
            "as views of a stream"
        )
    inits = {i.name for i in model.graph.initializer}
    ins, outs = [], []
    for n in hw:
        for t in n.input[:1] if n.op_type != "AddStreams" else n.input[:2]:
            t = alias.get(t, t)
            if t not in produced and t not in inits and t not in ins:
                ins.append(t)
    consumed = {alias.get(t, t) for n in hw for t in n.input}
    for n in hw:
        for t in n.output:
            if t not in consumed:
                outs.append(t)
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"the hardware must have one input and one output stream, found inputs {ins}, outputs {outs}")
    after = [n for n in nodes[last + 1 :]]
    return Split(ins[0], outs[0], hw, alias, after)


def elem_type(model: ModelWrapper, tensor: str, fallback: str) -> ElemType:
    dt = model.get_tensor_datatype(tensor)
    name = dt.name if dt is not None and dt.name != "FLOAT32" else fallback
    return ElemType.of(name)


def frame_shapes(model: ModelWrapper) -> dict[str, list[int]]:
    """The shape of one frame (no batch dimension) of every tensor, from executing the graph once
    on a zero input: the shape annotations of a rewritten graph are not always up to date (a
    LabelSelect's output keeps the logits' shape)."""
    from qnnflow.flows.ir.execute import Executor

    inp = model.graph.input[0].name
    shape = [1, *[int(v) for v in model.get_tensor_shape(inp)[1:]]]
    ctx = Executor(model).run(np.zeros(shape, dtype=np.float32), keep=True)
    return {k: [int(v) for v in np.shape(a)[1:]] for k, a in ctx.items()}


def in_type_name(layer) -> str:
    for key in ("inputDataType",):
        if layer.get(key) is not None and key in layer.ATTRS:
            return layer.get(key)
    return ""
