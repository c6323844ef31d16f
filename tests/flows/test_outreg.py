"""flows/implement/outreg.py on Yosys' own ECP5 netlists: the register after a block-RAM read moves
into the DP16KD only when nothing else can see the difference."""

from __future__ import annotations

import json

import pytest
from qnnflow.flows.implement.outreg import absorb_output_registers
from qnnflow.flows.implement.tools import run_tool

from qnnflow import toolchain

# a 1024 x 18 RAM read into its read register, then `q` registered once more: with `logic` between
# them when MIX is set (the second register then takes the read XOR the write data)
RAM = """
module ram #(parameter bit MIX = 0, parameter bit EN = 0) (
    input logic clk, input logic we, input logic ce, input logic [9:0] wa, ra,
    input logic [17:0] wd, output logic [17:0] q
);
    (* no_rw_check *)  // as hw/fifo.sv: no read-write collision logic between the RAM and `r`
    logic [17:0] mem [1024];
    logic [17:0] r;
    always_ff @(posedge clk) begin
        if (we) mem[wa] <= wd;
        r <= mem[ra];
        if (!EN || ce) q <= MIX ? r ^ wd : r;
    end
endmodule
"""


def _netlist(tmp_path, **params) -> dict:
    (tmp_path / "ram.sv").write_text(RAM)
    chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
    script = f"read_verilog -sv ram.sv\nchparam {chparam} ram\nsynth_ecp5 -top ram -json ram.json\n"
    (tmp_path / "s.ys").write_text(script)
    run_tool(toolchain.require("yosys")["yosys"], ["-q", "s.ys"], cwd=tmp_path, log=tmp_path / "y.log", what="yosys")
    return json.loads((tmp_path / "ram.json").read_text())


def _cells(netlist: dict, kind: str) -> list[dict]:
    return [c for c in netlist["modules"]["ram"]["cells"].values() if c["type"] == kind]


@pytest.mark.synth
@pytest.mark.parametrize("enable", [0, 1])
def test_the_register_after_a_read_becomes_the_output_register(tmp_path, enable):
    netlist = _netlist(tmp_path, MIX=0, EN=enable)
    (bram,) = _cells(netlist, "DP16KD")
    ffs = len(_cells(netlist, "TRELLIS_FF"))
    assert absorb_output_registers(netlist) == 1
    port = "A" if bram["parameters"]["REGMODE_A"] == "OUTREG" else "B"
    assert bram["parameters"][f"REGMODE_{port}"] == "OUTREG"
    assert len(_cells(netlist, "TRELLIS_FF")) == ffs - 18  # the 18 data flip-flops are gone
    q_bits = netlist["modules"]["ram"]["ports"]["q"]["bits"]
    assert sorted(map(str, q_bits)) == sorted(str(bram["connections"][f"DO{port}{i}"][0]) for i in range(18))
    # the flip-flops' clock enable became the output register's (none: always enabled)
    assert (bram["connections"][f"OCE{port}"] == ["1"]) == (not enable)


@pytest.mark.synth
def test_a_read_that_meets_logic_is_left_alone(tmp_path):
    netlist = _netlist(tmp_path, MIX=1, EN=0)
    before = json.dumps(netlist, sort_keys=True)
    assert absorb_output_registers(netlist) == 0
    assert json.dumps(netlist, sort_keys=True) == before


# a 512 x W RAM: Yosys maps its first 36 bits onto one DP16KD in its 36-bit pseudo-dual-port form
# (written on port A, read on port B, the word on DOA0-17 and DOB0-17); with W = 44 the last 8 bits
# onto a second one of which only DOA0-7 are used (the 8-bit tail of a wide threshold word)
WIDE = """
module ram #(parameter int W = 36) (input logic clk, input logic we, input logic [8:0] wa, ra,
                                    input logic [W-1:0] wd, output logic [W-1:0] q);
    (* no_rw_check *)
    logic [W-1:0] mem [512];
    logic [W-1:0] r;
    always_ff @(posedge clk) begin
        if (we) mem[wa] <= wd;
        r <= mem[ra];
        q <= r;
    end
endmodule
"""


@pytest.mark.synth
@pytest.mark.parametrize("width", [36, 44])
def test_a_36_bit_read_takes_both_halves_registers_as_lattice_configures_them(tmp_path, width):
    (tmp_path / "ram.sv").write_text(WIDE)
    script = f"read_verilog -sv ram.sv\nchparam -set W {width} ram\nsynth_ecp5 -top ram -json ram.json\n"
    (tmp_path / "s.ys").write_text(script)
    run_tool(toolchain.require("yosys")["yosys"], ["-q", "s.ys"], cwd=tmp_path, log=tmp_path / "y.log", what="yosys")
    netlist = json.loads((tmp_path / "ram.json").read_text())
    brams = _cells(netlist, "DP16KD")
    assert len(brams) == -(-width // 36)
    assert all(int(str(b["parameters"]["DATA_WIDTH_B"]), 2) == 36 for b in brams)
    ffs = len(_cells(netlist, "TRELLIS_FF"))
    assert absorb_output_registers(netlist) == len(brams)  # one read per block RAM, both halves
    assert len(_cells(netlist, "TRELLIS_FF")) == ffs - width
    outs = []
    for bram in brams:
        assert (bram["parameters"]["REGMODE_A"], bram["parameters"]["REGMODE_B"]) == ("OUTREG", "OUTREG")
        # both halves' registers on the read's clock and enable, also a half with no bit in use
        assert bram["connections"]["CLKA"] == bram["connections"]["CLKB"]
        assert bram["connections"]["OCEA"] == bram["connections"]["OCEB"] == ["1"]
        outs += [str(b) for b in (bram["connections"][f"DO{x}{i}"][0] for x in "AB" for i in range(18))]
    # every bit of q now comes straight from a block RAM's output register
    q_bits = list(map(str, netlist["modules"]["ram"]["ports"]["q"]["bits"]))
    assert set(q_bits) <= set(outs) and len(set(q_bits)) == width
