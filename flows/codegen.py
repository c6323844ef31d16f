"""Code generation: the folded dataflow graph -> ``rtl/`` of a build folder.

Writes
- ``top.sv``: module ``accelerator`` (the ports ``hw/boards/board_top.sv`` expects: clk, rst,
  ``s_axis_*`` and ``m_axis_*`` with ``tlast``), assembled from instances of the ``hw/`` modules
  by a small structural netlist writer (:class:`Netlist`): one wire bundle per stream, one
  instance per hardware layer, FIFOs as they are in the graph (depths from FIFO sizing, see
  :mod:`qnnflow.sim.accel`);
- ``probe.sv``: module ``accelerator_probe``, for simulation only: the accelerator plus the
  valid / ready bits of every internal stream as two output vectors (hierarchical references),
  which the testbenches use to measure FIFO occupancy and to say where a stalled stream stopped;
- the weight / threshold memory files (layouts from :mod:`qnnflow.flows.memfiles`);
- the library sources it uses (copied, so the folder is self-contained) and ``files.f`` listing
  them in compile order, paths relative to ``rtl/``;
- ``design.json``: the streams (name, width, element type, beats per frame, which layers they
  join), the FIFOs and their depths, the boundary tensors; read back with :func:`load_design`.

Memory files are named without a folder, so tools read them with ``rtl/`` as working directory.
The graph parts outside the hardware (the input quantizer before it, a logits rescale after it)
stay on the host; :func:`split` says where the hardware starts and ends.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from qnnflow.flows.graph import HW_DOMAIN, topo_nodes
from qnnflow.flows.layers import get_layer
from qnnflow.flows.memfiles import write_memh
from qnnflow.flows.passes_streams import SHAPE_OPS
from qnnflow.flows.rtl_backend import Backend, ElemType, backend
from qnnflow.hw import library as rtl_lib
from qnnflow.hw import rtl_dir
from qonnx.core.modelwrapper import ModelWrapper

TOP = "accelerator"
PROBE_TOP = "accelerator_probe"
DESIGN_FILE = "design.json"


# ---------------------------------------------------------------------------------------------
# the structural netlist writer
# ---------------------------------------------------------------------------------------------
@dataclass
class _Instance:
    module: str
    name: str
    params: dict[str, int | str]
    ports: dict[str, str]


def _literal(value: int | str) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(int(value))


class Netlist:
    """A flat structural module: ports, wires, continuous assignments, instances, rendered as SV."""

    def __init__(self, name: str, header: str):
        self.name = name
        self.header = header
        self.ports: list[tuple[str, int, str]] = []  # (direction, width, name)
        self.wires: list[tuple[int, str]] = []
        self.assigns: list[tuple[str, str]] = []
        self.instances: list[_Instance] = []
        self.blocks: list[str] = []  # small behavioural blocks (the boundary tlast counter)

    def port(self, direction: str, name: str, width: int = 1) -> None:
        self.ports.append((direction, width, name))

    def wire(self, name: str, width: int = 1) -> None:
        self.wires.append((width, name))

    def assign(self, lhs: str, rhs: str) -> None:
        self.assigns.append((lhs, rhs))

    def instance(self, module: str, name: str, params: dict[str, int | str], ports: dict[str, str]) -> None:
        self.instances.append(_Instance(module, name, params, ports))

    @staticmethod
    def _range(width: int) -> str:
        return f"[{width - 1}:0] " if width > 1 else ""

    def render(self) -> str:
        out = [self.header.rstrip(), "", "`resetall", "`timescale 1ns / 1ps", "`default_nettype none", ""]
        out.append(f"module {self.name} (")
        decls = [f"    {d:<6} wire logic {self._range(w)}{n}" for d, w, n in self.ports]
        out.append(",\n".join(decls))
        out.append(");")
        out.append("")
        for w, n in self.wires:
            out.append(f"    wire logic {self._range(w)}{n};")
        if self.wires:
            out.append("")
        for lhs, rhs in self.assigns:
            out.append(f"    assign {lhs} = {rhs};")
        if self.assigns:
            out.append("")
        for inst in self.instances:
            if inst.params:
                plist = ",\n".join(f"        .{k}({_literal(v)})" for k, v in inst.params.items())
                out.append(f"    {inst.module} #(\n{plist}\n    ) {inst.name} (")
            else:
                out.append(f"    {inst.module} {inst.name} (")
            out.append(",\n".join(f"        .{k}({v})" for k, v in inst.ports.items()))
            out.append("    );")
            out.append("")
        for block in self.blocks:
            out.append(block.rstrip())
            out.append("")
        out.append("endmodule")
        out.append("")
        out.append("`resetall")
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the design: streams and layers of the hardware part of a dataflow graph
# ---------------------------------------------------------------------------------------------
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


def _sanitize(name: str) -> str:
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


def _elem(model: ModelWrapper, tensor: str, fallback: str) -> ElemType:
    dt = model.get_tensor_datatype(tensor)
    name = dt.name if dt is not None and dt.name != "FLOAT32" else fallback
    return ElemType.of(name)


def frame_shapes(model: ModelWrapper) -> dict[str, list[int]]:
    """The shape of one frame (no batch dimension) of every tensor, from executing the graph once
    on a zero input: the shape annotations of a rewritten graph are not always up to date (a
    LabelSelect's output keeps the logits' shape)."""
    from qnnflow.flows.execute import Executor

    inp = model.graph.input[0].name
    shape = [1, *[int(v) for v in model.get_tensor_shape(inp)[1:]]]
    ctx = Executor(model).run(np.zeros(shape, dtype=np.float32), keep=True)
    return {k: [int(v) for v in np.shape(a)[1:]] for k, a in ctx.items()}


def _in_type_name(layer) -> str:
    for key in ("inputDataType",):
        if layer.get(key) is not None and key in layer.ATTRS:
            return layer.get(key)
    return ""


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
    shapes = frame_shapes(model)
    fifo_depths = dict(fifo_depths or {})

    streams: list[StreamInfo] = []
    by_tensor: dict[str, int] = {}

    def stream_for(tensor: str, width: int, elem: ElemType, src: str) -> int:
        elems = int(np.prod(shapes[tensor]))
        epb = width // elem.bits
        if epb < 1 or width % elem.bits or elems % epb:
            raise ValueError(
                f"stream {tensor}: {width}-bit beats must hold whole {elem.bits}-bit elements and a frame "
                f"({elems} elements) whole beats"
            )
        name = f"s{len(streams)}_{_sanitize(src if src != 's_axis' else 'in')}"
        streams.append(StreamInfo(name, tensor, width, elem.bits, elem.signed, elem.bipolar, elems // epb, src, ""))
        by_tensor[tensor] = len(streams) - 1
        return len(streams) - 1

    first = get_layer(sp.hw_nodes[0])
    stream_for(sp.in_tensor, first.in_width, _elem(model, sp.in_tensor, _in_type_name(first)), "s_axis")

    backends: list[tuple[str, Backend]] = []
    fifos: list[FifoInfo] = []
    for node in sp.hw_nodes:
        layer = get_layer(node)
        inst = "u_" + _sanitize(node.name)
        if node.op_type == "FIFO" and node.name in fifo_depths:
            layer.set("depth", int(fifo_depths[node.name]))
        be = backend(layer, model, _sanitize(node.name))
        n_in = be.in_lanes
        for t in node.input[:n_in]:
            t = sp.alias.get(t, t)
            if t not in by_tensor:
                raise ValueError(f"{node.name} ({node.op_type}): input stream {t} has no producer in the hardware")
            s = streams[by_tensor[t]]
            if s.dst:
                raise ValueError(f"stream {t} feeds both {s.dst} and {inst}: insert a DuplicateStreams layer")
            if s.width != layer.in_width:
                raise ValueError(
                    f"{node.name} ({node.op_type}): input beats are {layer.in_width} bits, but stream {t} "
                    f"carries {s.width}-bit beats"
                )
            s.dst = inst
        out_type = layer.get("outputDataType") if "outputDataType" in layer.ATTRS else ""
        for t in node.output:
            elem = _elem(model, t, out_type or "")
            if not out_type and node.op_type in (
                "FIFO",
                "WidthConverter",
                "DuplicateStreams",
                "MaxPool",
                "SlidingWindow",
            ):
                src = streams[by_tensor[sp.alias.get(node.input[0], node.input[0])]]
                elem = ElemType(src.elem_bits, src.signed, src.bipolar)
            stream_for(t, layer.out_width, elem, inst)
        if node.op_type == "FIFO":
            i = by_tensor[sp.alias.get(node.input[0], node.input[0])]
            fifos.append(FifoInfo(node.name, i, by_tensor[node.output[0]], int(be.params["DEPTH"]), streams[i].beats))
        backends.append((inst, be))
    out_index = by_tensor[sp.out_tensor]
    streams[out_index].dst = "m_axis"
    for s in streams:
        if not s.dst:
            raise ValueError(f"stream {s.tensor} from {s.src} is not consumed by any layer")

    net = _netlist(streams, out_index, backends, by_tensor, sp)
    (out / "top.sv").write_text(net.render())
    (out / "probe.sv").write_text(_probe(streams, out_index).render())
    for _, be in backends:
        for mem in be.memories:
            write_memh(out / mem.name, mem.words, mem.width)
    modules = sorted({be.module for _, be in backends})
    files: list[str] = []
    for m in modules:
        for src in rtl_lib.sources(m):
            if src.name not in files:
                shutil.copy(src, out / src.name)
                files.append(src.name)
    files.append("top.sv")
    (out / "files.f").write_text("\n".join(files) + "\n")
    design = Design(
        rtl_dir=str(out.resolve()),
        top=TOP,
        probe_top=PROBE_TOP,
        files=files,
        streams=streams,
        fifos=fifos,
        in_tensor=sp.in_tensor,
        out_tensor=sp.out_tensor,
        in_shape=shapes[sp.in_tensor],
        out_shape=shapes[sp.out_tensor],
        out_index=out_index,
        layers=[
            {
                "instance": inst,
                "name": be.layer.node.name,
                "op_type": be.layer.op_type,
                "module": be.module,
                "params": be.params,
                "exp_cycles": be.layer.exp_cycles(),
            }
            for inst, be in backends
        ],  # fmt: skip
    )
    (out / DESIGN_FILE).write_text(json.dumps(design.as_dict(), indent=1) + "\n")
    return design


_HEADER = """// accelerator: the streaming dataflow accelerator of one build, written by qnnflow codegen
// (flows/codegen.py) from dataflow.onnx; do not edit, regenerate instead.
//
// Function  : {layers} hardware layers joined by valid/ready streams; one frame of {in_beats}
//             input beats ({in_w} bits) gives {out_beats} output beats ({out_w} bits).
// Ports     : s_axis_* in, m_axis_* out (DESIGN.md stream conventions); m_axis_tlast marks the
//             last output beat of each frame; s_axis_tlast is not needed and ignored.
// Memories  : $readmemh files named without a folder: read them with this folder as working
//             directory.
"""


def _netlist(streams, out_index, backends, by_tensor, sp) -> Netlist:
    inp, outp = streams[0], streams[out_index]
    net = Netlist(
        TOP,
        _HEADER.format(
            layers=len(backends), in_beats=inp.beats, in_w=inp.width, out_beats=outp.beats, out_w=outp.width
        ),
    )
    net.port("input", "clk")
    net.port("input", "rst")
    net.port("input", "s_axis_tdata", inp.width)
    net.port("input", "s_axis_tvalid")
    net.port("output", "s_axis_tready")
    net.port("input", "s_axis_tlast")
    net.port("output", "m_axis_tdata", outp.width)
    net.port("output", "m_axis_tvalid")
    net.port("input", "m_axis_tready")
    net.port("output", "m_axis_tlast")
    for s in streams:
        net.wire(f"{s.name}_tdata", s.width)
        net.wire(f"{s.name}_tvalid")
        net.wire(f"{s.name}_tready")
    net.assign(f"{inp.name}_tdata", "s_axis_tdata")
    net.assign(f"{inp.name}_tvalid", "s_axis_tvalid")
    net.assign("s_axis_tready", f"{inp.name}_tready")
    net.assign("m_axis_tdata", f"{outp.name}_tdata")
    net.assign("m_axis_tvalid", f"{outp.name}_tvalid")
    net.assign(f"{outp.name}_tready", "m_axis_tready")
    for inst, be in backends:
        node = be.layer.node
        ins = [streams[by_tensor[sp.alias.get(t, t)]] for t in node.input[: be.in_lanes]]
        outs = [streams[by_tensor[t]] for t in node.output]
        ports = {"clk": "clk", "rst": "rst"}
        for side, group in (("s_axis", ins), ("m_axis", outs)):
            if len(group) == 1:
                s = group[0]
                ports[f"{side}_tdata"] = f"{s.name}_tdata"
                ports[f"{side}_tvalid"] = f"{s.name}_tvalid"
                ports[f"{side}_tready"] = f"{s.name}_tready"
                continue
            # several streams packed into lanes, lane 0 in the LSBs
            ports[f"{side}_tdata"] = "{" + ", ".join(f"{s.name}_tdata" for s in reversed(group)) + "}"
            vr_in, vr_out = ("tvalid", "tready") if side == "s_axis" else ("tready", "tvalid")
            ports[f"{side}_{vr_in}"] = "{" + ", ".join(f"{s.name}_{vr_in}" for s in reversed(group)) + "}"
            lanes = f"{inst}_{side}_{vr_out}"
            net.wire(lanes, len(group))
            ports[f"{side}_{vr_out}"] = lanes
            for k, s in enumerate(group):
                net.assign(f"{s.name}_{vr_out}", f"{lanes}[{k}]")
        if len(outs) > 1:  # an output lane bus drives the stream wires: m_axis_tdata as a wire
            lanes = f"{inst}_m_axis_tdata"
            net.wire(lanes, sum(s.width for s in outs))
            ports["m_axis_tdata"] = lanes
            off = 0
            for s in outs:
                net.assign(f"{s.name}_tdata", f"{lanes}[{off + s.width - 1}:{off}]")
                off += s.width
        net.instance(be.module, inst, be.params, ports)
    beats = outp.beats
    if beats == 1:
        net.assign("m_axis_tlast", "1'b1")
    else:
        cw = max(1, (beats - 1).bit_length())
        net.blocks.append(
            f"""    // m_axis_tlast: the last of the {beats} output beats of a frame
    logic [{cw - 1}:0] out_beat_reg;
    always_ff @(posedge clk) begin
        if (rst) begin
            out_beat_reg <= '0;
        end else if (m_axis_tvalid && m_axis_tready) begin
            out_beat_reg <= (out_beat_reg == {cw}'d{beats - 1}) ? '0 : out_beat_reg + 1'b1;
        end
    end
    assign m_axis_tlast = (out_beat_reg == {cw}'d{beats - 1});"""
        )
    net.blocks.append(
        """    // s_axis_tlast is part of the boundary but not needed: frames are counted in the layers
    wire logic unused_tlast;
    assign unused_tlast = s_axis_tlast;"""
    )
    return net


def _probe(streams: list[StreamInfo], out_index: int) -> Netlist:
    """The simulation wrapper: the accelerator plus every stream's valid and ready bit."""
    inp, outp = streams[0], streams[out_index]
    n = len(streams)
    net = Netlist(
        PROBE_TOP,
        "// accelerator_probe: simulation only (not for synthesis). The accelerator with the valid and\n"
        "// ready bit of every stream s of design.json at bit s of probe_valid / probe_ready.",
    )
    for d, name, w in (
        ("input", "clk", 1), ("input", "rst", 1),
        ("input", "s_axis_tdata", inp.width), ("input", "s_axis_tvalid", 1), ("output", "s_axis_tready", 1),
        ("input", "s_axis_tlast", 1),
        ("output", "m_axis_tdata", outp.width), ("output", "m_axis_tvalid", 1), ("input", "m_axis_tready", 1),
        ("output", "m_axis_tlast", 1),
        ("output", "probe_valid", n), ("output", "probe_ready", n),
    ):  # fmt: skip
        net.port(d, name, w)
    ports = {p: p for _, _, p in net.ports if not p.startswith("probe")}
    net.instance(TOP, "u_accel", {}, ports)
    for i, s in enumerate(streams):
        net.assign(f"probe_valid[{i}]", f"u_accel.{s.name}_tvalid")
        net.assign(f"probe_ready[{i}]", f"u_accel.{s.name}_tready")
    return net


def library_dir() -> Path:
    """Where the ``hw/`` modules come from (for messages)."""
    return rtl_dir()
