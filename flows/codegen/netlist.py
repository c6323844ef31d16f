"""The structural netlist writer, and the two modules codegen writes with it: ``accelerator``
(``top.sv``: one wire bundle per stream, one instance per hardware layer) and
``accelerator_probe`` (``probe.sv``: the accelerator plus every stream's valid / ready bit)."""

from __future__ import annotations

from dataclasses import dataclass

from qnnflow.flows.codegen.design import PROBE_TOP, TOP, StreamInfo


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


_HEADER = """// accelerator: the streaming dataflow accelerator of one build, written by qnnflow codegen
// (flows/codegen/) from dataflow.onnx; do not edit, regenerate instead.
//
// Function  : {layers} hardware layers joined by valid/ready streams; one frame of {in_beats}
//             input beats ({in_w} bits) gives {out_beats} output beats ({out_w} bits).
// Ports     : s_axis_* in, m_axis_* out (DESIGN.md stream conventions); m_axis_tlast marks the
//             last output beat of each frame; s_axis_tlast is not needed and ignored.
// Memories  : $readmemh files named without a folder: read them with this folder as working
//             directory.
"""


def accelerator_netlist(streams: list[StreamInfo], out_index: int, layers: list[tuple], n_layers: int) -> Netlist:
    """``top.sv``: the boundary ports, a wire bundle per stream, one instance per layer.

    ``layers``: (instance name, module, parameters, input streams, output streams) per layer."""
    inp, outp = streams[0], streams[out_index]
    header = _HEADER.format(layers=n_layers, in_beats=inp.beats, in_w=inp.width, out_beats=outp.beats,
                            out_w=outp.width)  # fmt: skip
    net = Netlist(TOP, header)
    _boundary(net, inp, outp)
    for s in streams:
        net.wire(f"{s.name}_tdata", s.width)
        net.wire(f"{s.name}_tvalid")
        net.wire(f"{s.name}_tready")
    for inst, module, params, ins, outs in layers:
        net.instance(module, inst, params, _layer_ports(net, inst, ins, outs))
    _tlast(net, outp.beats)
    return net


def _boundary_ports(inp: StreamInfo, outp: StreamInfo) -> tuple[tuple[str, str, int], ...]:
    """(direction, name, width) of the accelerator's ports, what ``hw/boards/board_top.sv`` expects."""
    return (
        ("input", "clk", 1), ("input", "rst", 1),
        ("input", "s_axis_tdata", inp.width), ("input", "s_axis_tvalid", 1), ("output", "s_axis_tready", 1),
        ("input", "s_axis_tlast", 1),
        ("output", "m_axis_tdata", outp.width), ("output", "m_axis_tvalid", 1), ("input", "m_axis_tready", 1),
        ("output", "m_axis_tlast", 1),
    )  # fmt: skip


def _boundary(net: Netlist, inp: StreamInfo, outp: StreamInfo) -> None:
    """The accelerator's ports (what ``hw/boards/board_top.sv`` expects), joined to the first and
    last stream; ``s_axis_tlast`` is part of the boundary but unused (frames are counted inside)."""
    for d, name, w in _boundary_ports(inp, outp):
        net.port(d, name, w)
    net.assign(f"{inp.name}_tdata", "s_axis_tdata")
    net.assign(f"{inp.name}_tvalid", "s_axis_tvalid")
    net.assign("s_axis_tready", f"{inp.name}_tready")
    net.assign("m_axis_tdata", f"{outp.name}_tdata")
    net.assign("m_axis_tvalid", f"{outp.name}_tvalid")
    net.assign(f"{outp.name}_tready", "m_axis_tready")
    net.blocks.append(
        """    // s_axis_tlast is part of the boundary but not needed: frames are counted in the layers
    wire logic unused_tlast;
    assign unused_tlast = s_axis_tlast;"""
    )


def _layer_ports(net: Netlist, inst: str, ins: list[StreamInfo], outs: list[StreamInfo]) -> dict[str, str]:
    """A layer's port connections. Several streams on one side are packed into lanes (lane 0 in
    the LSBs), with one valid / ready bit per lane."""
    ports = {"clk": "clk", "rst": "rst"}
    for side, group in (("s_axis", ins), ("m_axis", outs)):
        if len(group) == 1:
            s = group[0]
            ports.update({f"{side}_tdata": f"{s.name}_tdata", f"{side}_tvalid": f"{s.name}_tvalid",
                          f"{side}_tready": f"{s.name}_tready"})  # fmt: skip
            continue
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
    return ports


def _tlast(net: Netlist, beats: int) -> None:
    """``m_axis_tlast``: the last of the ``beats`` output beats of a frame (a beat counter)."""
    if beats == 1:
        net.assign("m_axis_tlast", "1'b1")
        return
    cw = max(1, (beats - 1).bit_length())
    net.blocks.insert(
        0,
        f"""    // m_axis_tlast: the last of the {beats} output beats of a frame
    logic [{cw - 1}:0] out_beat_reg;
    always_ff @(posedge clk) begin
        if (rst) begin
            out_beat_reg <= '0;
        end else if (m_axis_tvalid && m_axis_tready) begin
            out_beat_reg <= (out_beat_reg == {cw}'d{beats - 1}) ? '0 : out_beat_reg + 1'b1;
        end
    end
    assign m_axis_tlast = (out_beat_reg == {cw}'d{beats - 1});""",
    )


def probe_netlist(streams: list[StreamInfo], out_index: int) -> Netlist:
    """The simulation wrapper: the accelerator plus every stream's valid and ready bit."""
    inp, outp = streams[0], streams[out_index]
    n = len(streams)
    net = Netlist(
        PROBE_TOP,
        "// accelerator_probe: simulation only (not for synthesis). The accelerator with the valid and\n"
        "// ready bit of every stream s of design.json at bit s of probe_valid / probe_ready.",
    )
    for d, name, w in (*_boundary_ports(inp, outp), ("output", "probe_valid", n), ("output", "probe_ready", n)):
        net.port(d, name, w)
    ports = {p: p for _, _, p in net.ports if not p.startswith("probe")}
    net.instance(TOP, "u_accel", {}, ports)
    for i, s in enumerate(streams):
        net.assign(f"probe_valid[{i}]", f"u_accel.{s.name}_tvalid")
        net.assign(f"probe_ready[{i}]", f"u_accel.{s.name}_tready")
    return net
