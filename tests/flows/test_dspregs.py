"""flows/implement/dspregs.py on Yosys' own ECP5 netlists: the registers around a multiplier move
into the MULT18X18D only when nothing else can see the difference, and nextpnr then places and
times the block as registered."""

from __future__ import annotations

import json

import pytest
from qnnflow.flows.implement.dspregs import absorb_multiplier_registers
from qnnflow.flows.implement.tools import run_tool

from qnnflow import toolchain

# two signed 9 x 9 products sharing operand b, as hw/mac_pipeline.sv's USE_MUL lanes share the input:
# operands registered without enable, products registered with `ce`. MIX: product p goes through
# logic (an XOR with a) before its register, so p's multiplier must be left alone.
MULS = """
module m #(parameter bit MIX = 0) (
    input logic clk, input logic ce, input logic [8:0] a, b, c, output logic [17:0] p, q
);
    logic signed [8:0] a_r, b_r, c_r;
    logic signed [17:0] p_r, q_r;
    always_ff @(posedge clk) begin
        a_r <= a; b_r <= b; c_r <= c;
        if (ce) p_r <= MIX ? (a_r * b_r) ^ 18'(a) : a_r * b_r;
        if (ce) q_r <= c_r * b_r;
    end
    assign p = p_r;
    assign q = q_r;
endmodule
"""


def _netlist(tmp_path, mix: int) -> dict:
    (tmp_path / "m.sv").write_text(MULS)
    script = f"read_verilog -sv m.sv\nchparam -set MIX {mix} m\nsynth_ecp5 -top m -json m.json\n"
    (tmp_path / "s.ys").write_text(script)
    run_tool(toolchain.require("yosys")["yosys"], ["-q", "s.ys"], cwd=tmp_path, log=tmp_path / "y.log", what="yosys")
    return json.loads((tmp_path / "m.json").read_text())


def _cells(netlist: dict, kind: str) -> dict[str, dict]:
    return {n: c for n, c in netlist["modules"]["m"]["cells"].items() if c["type"] == kind}


def _driver_of(netlist: dict, bit) -> tuple[str, str]:
    for cell in netlist["modules"]["m"]["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output" and bit in bits:
                return cell["type"], port
    raise AssertionError(f"no driver of {bit}")


@pytest.mark.synth
def test_operand_and_product_registers_move_into_the_multipliers(tmp_path):
    netlist = _netlist(tmp_path, mix=0)
    assert len(_cells(netlist, "MULT18X18D")) == 2
    ffs = len(_cells(netlist, "TRELLIS_FF"))
    assert ffs == 3 * 9 + 2 * 18  # operands and products in the fabric
    # what each operand pin will take: its flip-flop's D input, or the constant it is
    before = {}
    for name, dsp in _cells(netlist, "MULT18X18D").items():
        for pin in (f"{x}{i}" for x in "AB" for i in range(18)):
            (bit,) = dsp["connections"][pin]
            ff = next((f for f in _cells(netlist, "TRELLIS_FF").values() if f["connections"]["Q"] == [bit]), None)
            before[name, pin] = bit if ff is None else ff["connections"]["DI"][0]
    assert absorb_multiplier_registers(netlist) == 2
    # every flip-flop went: b's are taken by both blocks' B registers
    assert len(_cells(netlist, "TRELLIS_FF")) == 0
    ports = netlist["modules"]["m"]["ports"]
    for dsp in _cells(netlist, "MULT18X18D").values():
        prm, conn = dsp["parameters"], dsp["connections"]
        assert prm["REG_INPUTA_CLK"] == prm["REG_INPUTB_CLK"] == prm["REG_OUTPUT_CLK"] == "CLK0"
        assert conn["CLK0"] == ports["clk"]["bits"]
        # the operands had no enable (CE tied high), the products `ce`
        assert conn[prm["REG_INPUTA_CE"]] == conn[prm["REG_INPUTB_CE"]] == ["1"]
        assert conn[prm["REG_OUTPUT_CE"]] == ports["ce"]["bits"]
        assert conn["RST0"] == ["0"]
        # the operand pins take what their flip-flops took: here the module's inputs
        assert [conn[f"A{i}"][0] for i in range(9)] in (ports["a"]["bits"], ports["c"]["bits"])
        assert [conn[f"B{i}"][0] for i in range(9)] == ports["b"]["bits"]
    for (name, pin), bit in before.items():
        assert _cells(netlist, "MULT18X18D")[name]["connections"][pin] == [bit], pin
    # and the outputs come straight from the blocks' output registers
    for name in ("p", "q"):
        assert {_driver_of(netlist, bit)[0] for bit in ports[name]["bits"]} == {"MULT18X18D"}


@pytest.mark.synth
def test_a_product_that_meets_logic_keeps_its_registers(tmp_path):
    netlist = _netlist(tmp_path, mix=1)
    assert absorb_multiplier_registers(netlist) == 1  # q's multiplier only
    dsps = list(_cells(netlist, "MULT18X18D").values())
    untouched = [d for d in dsps if d["parameters"].get("REG_OUTPUT_CLK", "NONE") == "NONE"]
    assert len(untouched) == 1 and not any(k.startswith("REG_") for k in untouched[0]["parameters"])
    # b's register is still there for p's multiplier; a's too; c's went into q's block
    assert len(_cells(netlist, "TRELLIS_FF")) == 9 + 9 + 18


@pytest.mark.synth
def test_nextpnr_times_the_registered_multipliers(tmp_path):
    netlist = _netlist(tmp_path, mix=0)
    absorb_multiplier_registers(netlist)
    (tmp_path / "m2.json").write_text(json.dumps(netlist))
    tools = toolchain.require("nextpnr-ecp5")
    args = ["--85k", "--package", "CABGA381", "--speed", "6", "--json", "m2.json", "--freq", "150",
            "--timing-allow-fail", "-l", "pnr.log", "-q", "--textcfg", "m.config"]  # fmt: skip
    run_tool(tools["nextpnr-ecp5"], args, cwd=tmp_path, log=tmp_path / "p.log", what="nextpnr-ecp5")
    log = (tmp_path / "pnr.log").read_text()
    # nothing between registers is left in the fabric: the multiply is inside the blocks
    assert "no interior timing paths found" in log
    assert "MULT18X18D:       2/" in log
