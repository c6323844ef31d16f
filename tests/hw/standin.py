"""TEST ONLY: a stand-in accelerator for the board top (tests/hw/data/standin_accelerator.sv).

The board top instantiates a module named ``accelerator`` without parameters, as codegen writes
it; for each parameter set the tests write a two-line ``accelerator`` that fixes the stand-in's
parameters.
"""

from __future__ import annotations

from pathlib import Path

from qnnflow.link import LinkFormat

DATA = Path(__file__).resolve().parent / "data"


def standin_sources(folder: Path, fmt: LinkFormat) -> list[Path]:
    """The stand-in and an ``accelerator`` wrapper for ``fmt``, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"accelerator_{fmt.in_width}x{fmt.in_beats}_{fmt.out_width}x{fmt.out_beats}.sv"
    ports = ", ".join(
        f".{p}({p})"
        for p in ("clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
                  "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast")
    )
    text = (
        "`default_nettype none\n"
        "module accelerator (input wire clk, input wire rst,\n"
        f"  input wire [{fmt.in_width - 1}:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,\n"
        "  input wire s_axis_tlast,\n"
        f"  output wire [{fmt.out_width - 1}:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready,\n"
        "  output wire m_axis_tlast);\n"
        f"  standin_accelerator #(.IN_W({fmt.in_width}), .IN_BEATS({fmt.in_beats}), .OUT_W({fmt.out_width}),\n"
        f"    .OUT_BEATS({fmt.out_beats})) u_standin ({ports});\n"
        "endmodule\n"
    )
    wrapper = folder / name
    if not wrapper.is_file() or wrapper.read_text() != text:
        wrapper.write_text(text)
    return [DATA / "standin_accelerator.sv", wrapper]
