"""Implementation of the UART board top with a tiny stand-in accelerator (marker ``synth``):
Yosys -> nextpnr -> pack for ULX3S-85F, iCEBreaker and Tang Nano 20K (through its rPLL), the
report and the xc7z020 estimate (a clock that cannot be met: tests/qnnflow/test_build_e2e.py,
through the commands). Utilization and Fmax are held against a JSON baseline with a tolerance, so
a regression shows up; the baseline records the Yosys / nextpnr versions it was made with, and
``python -m tests.flows.test_implement`` (from the repository root) regenerates it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qnnflow.flows.implement import AcceleratorDesign, implement, xilinx_estimate
from qnnflow.flows.implement.report import write_report

from qnnflow import toolchain
from qnnflow.errors import FlowError
from qnnflow.link import LinkFormat
from tests.hw.standin import standin_sources

BASELINE_PATH = Path(__file__).parent / "data" / "board_top_baseline.json"
BASELINE = json.loads(BASELINE_PATH.read_text())
REGENERATE = "`python -m tests.flows.test_implement` (from the repository root)"
FMT = LinkFormat(8, 64, 4, 1)
BOARDS = (
    ("ulx3s-85f", 50.0, "standin.bit"),
    ("icebreaker", 24.0, "standin.bin"),
    ("tangnano20k", 50.0, "standin.fs"),  # 50.14 MHz from the rPLL
)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> tuple[Path, AcceleratorDesign]:
    build = tmp_path_factory.mktemp("impl") / "standin"
    sources = standin_sources(build / "standin_rtl", FMT)
    return build, AcceleratorDesign("accelerator", tuple(sources), (), FMT)


def _packer(result) -> str:
    return {"ecp5": "ecppack", "ice40": "icepack", "gowin": "gowin_pack"}[result.family]


def _within(got: int, want: int) -> bool:
    return abs(got - want) <= BASELINE["tolerance"] * want


@pytest.mark.synth
# Gowin's place and route takes a minute: make test-all (make test places the ECP5 and iCE40 ones)
@pytest.mark.parametrize(
    "board, mhz, bitfile", [pytest.param(*b, marks=pytest.mark.slow) if b[0] == "tangnano20k" else b for b in BOARDS]
)
def test_board_top_implements(standin, board: str, mhz: float, bitfile: str) -> None:
    if (why := toolchain.baseline_mismatch(BASELINE.get("tools"), REGENERATE)) is not None:
        pytest.fail(f"{BASELINE_PATH.name}: {why}")
    build, design = standin
    result = implement(build, board, mhz, design=design, progress=None)
    assert result.tools == toolchain.versions("yosys", f"nextpnr-{result.family}", _packer(result))
    bit = build / "impl" / board / bitfile
    assert result.bitstream == str(bit) and bit.stat().st_size > 10_000
    assert result.timing_met and result.clock_mhz == pytest.approx(mhz, rel=0.01)
    base = BASELINE[board]
    fmax = min(v["achieved"] for v in result.fmax.values())
    assert fmax >= base["min_fmax_mhz"], f"{board}: Fmax {fmax} MHz below the baseline {base['min_fmax_mhz']}"
    for cell, want in base.items():
        if cell.isupper():
            got = result.utilization[cell]["used"]
            assert _within(got, want), f"{board}: {cell} {got}, baseline {want} +-{BASELINE['tolerance']:.0%}"
    for log in result.logs.values():
        assert Path(log).is_file()
    assert json.loads((build / "impl" / board / "impl.json").read_text())["tools"] == result.tools
    report = write_report(build, board)
    md = (build / "report.md").read_text()
    assert report["bitstream"] == str(bit) and "Fmax" in md and board in md
    assert report["tools"] == result.tools
    assert report["performance"]["uart_fps"] == pytest.approx(115200 / 10 / FMT.request_bytes, rel=1e-3)


@pytest.mark.synth
def test_seed_reaches_nextpnr(standin) -> None:
    """The placement follows ``seed``: the same seed places the stand-in the same way, another differently."""
    build, design = standin
    placed = []
    for seed in (1, 1, 2):
        implement(build, "icebreaker", 24.0, design=design, seed=seed, progress=None)
        out = build / "impl" / "icebreaker"
        assert json.loads((out / "impl.json").read_text())["seed"] == seed
        placed.append((out / "pnr.asc").read_text())
    assert placed[0] == placed[1], "nextpnr placed differently with the same seed"
    assert placed[0] != placed[2], "seeds 1 and 2 gave the same placement: --seed did not reach nextpnr"


@pytest.mark.synth
def test_xilinx_estimate_counts_the_standin(standin) -> None:
    build, design = standin
    est = xilinx_estimate(build, design=design, progress=None)
    # the stand-in: a 4-bit sum, a 4-bit output register and a 1-bit beat counter
    assert 4 <= est["used"]["FF"] <= 16 and 1 <= est["used"]["LUT6"] <= 40
    assert est["used"]["BRAM18"] == 0 and est["used"]["DSP48"] == 0
    assert est["available"]["LUT6"] == 53200


ROM_SV = """module rom #(parameter int D = 288) (input logic clk, input logic [8:0] a, output logic [1:0] q,
                                    input logic we, input logic [7:0] wa, input logic [7:0] wd,
                                    output logic [7:0] rq);
  logic [1:0] wmem [D];
  initial for (int i = 0; i < D; i++) wmem[i] = 2'((i * 7) ^ (i >> 3));
  always_ff @(posedge clk) q <= wmem[a];
  logic [7:0] ram [256];  // a RAM: Yosys' own choice stays
  always_ff @(posedge clk) begin
    if (we) ram[wa] <= wd;
    rq <= ram[wa];
  end
endmodule
"""


@pytest.mark.synth
@pytest.mark.parametrize("depth", [288, 64])
def test_ice40_puts_deep_roms_into_ebrs(tmp_path, depth: int) -> None:
    """On iCE40 a ROM of ICE40_ROM_IN_EBR_WORDS words or more becomes an EBR (SB_RAM40_4K), where
    plain synth_ice40 builds it from LUTs; a shallower ROM and any RAM keep Yosys' own choice."""
    import subprocess

    from qnnflow.flows.implement.pnr import ICE40_ROM_IN_EBR_WORDS, SYNTH_COMMANDS, synth_lines

    (tmp_path / "rom.sv").write_text(ROM_SV)
    yosys = toolchain.find("yosys")

    def ebrs(lines: list[str]) -> int:
        script = ["read_verilog -sv rom.sv", f"chparam -set D {depth} rom", *lines, "tee -q -o stat.json stat -json"]
        (tmp_path / "s.ys").write_text("\n".join(script) + "\n")
        subprocess.run(yosys.argv("-q", "s.ys"), cwd=tmp_path, check=True, capture_output=True, timeout=600)
        cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
        return sum(v for k, v in cells.items() if k.startswith("SB_RAM40_4K"))

    plain = ebrs([f"{SYNTH_COMMANDS['ice40']} -top rom"])
    split = ebrs(synth_lines("ice40", SYNTH_COMMANDS["ice40"], "", "rom"))
    assert plain == 1  # the RAM
    assert split == (2 if depth >= ICE40_ROM_IN_EBR_WORDS else 1)
    # the other families' script is the plain command
    assert synth_lines("ecp5", "synth_ecp5", "-abc9", "t") == ["synth_ecp5 -abc9 -top t -json synth.json"]


def regenerate() -> None:
    """Implement the stand-in on both boards again and rewrite the baseline's cell counts with the
    tool versions used; the Fmax floors and the tolerance are kept (the measured Fmax is printed)."""
    import tempfile

    doc = {"note": BASELINE["note"], "tools": {}, "tolerance": BASELINE["tolerance"]}
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "standin"
        design = AcceleratorDesign("accelerator", tuple(standin_sources(build / "standin_rtl", FMT)), (), FMT)
        for board, mhz, _ in BOARDS:
            result = implement(build, board, mhz, design=design, progress=print)
            cells = {k: result.utilization[k]["used"] for k in BASELINE[board] if k.isupper()}
            doc[board] = {**cells, "min_fmax_mhz": BASELINE[board]["min_fmax_mhz"]}
            doc["tools"].update(result.tools)
            print(f"{board}: {cells}, Fmax {min(v['achieved'] for v in result.fmax.values()):.1f} MHz", flush=True)
    lines = [f' "{k}": {json.dumps(v)}' for k, v in doc.items()]
    BASELINE_PATH.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"-> {BASELINE_PATH}")


if __name__ == "__main__":
    regenerate()


def test_a_wasm_stack_exhaustion_is_explained(tmp_path) -> None:
    """A yowasp tool that dies with 'call stack exhausted' (Yosys's ABC9 on the 8-bit digits CNN did)
    gets a message naming the WebAssembly limit and the way around it, not only its last lines."""
    from qnnflow.flows.implement.tools import run_tool

    fake = tmp_path / "fake-yosys"
    fake.write_text("#!/bin/sh\necho 'Caused by:'\necho '    wasm trap: call stack exhausted'\nexit 1\n")
    fake.chmod(0o755)
    tool = toolchain.Tool("yosys", fake, "0.0", "test")
    with pytest.raises(FlowError, match=r"ran out of call stack .* --system-tools .*call stack exhausted"):
        run_tool(tool, [], cwd=tmp_path, log=tmp_path / "out.log", what="Yosys synthesis")
    # any other failure keeps the plain message
    fake.write_text("#!/bin/sh\necho 'ERROR: syntax error'\nexit 1\n")
    with pytest.raises(FlowError, match=r"^Yosys synthesis failed \(exit 1\): ERROR: syntax error \(log: "):
        run_tool(tool, [], cwd=tmp_path, log=tmp_path / "out.log", what="Yosys synthesis")


def test_no_legal_placement_tries_the_next_seeds(tmp_path) -> None:
    """nextpnr finding no legal placement (a design near the part's limit; the placement depends on
    the seed) is placed again with the next seeds, up to PLACEMENT_RETRIES more, and the seed that
    placed is returned; when every seed fails, the message says the design does not fit, with the
    seeds tried and the synthesized cells. Tools replaced by a stand-in that fails below seed 3."""
    from types import SimpleNamespace

    from qnnflow.flows.implement import pnr
    from qnnflow.flows.implement.boards import board_spec, clock_settings

    spec = board_spec("icebreaker")
    tried, said = [], []

    def step(key, tool, args, what, own_log=True):
        seed = int(args[args.index("--seed") + 1])
        tried.append(seed)
        if seed < fail_below:
            (tmp_path / pnr.LOGS["pnr"]).write_text("ERROR: Unable to find legal placement for all cells\n")
            raise FlowError(f"{what} failed (exit 125)")
        (tmp_path / "pnr_report.json").write_text(json.dumps({"fmax": {}}))

    run = SimpleNamespace(spec=spec, out=tmp_path, say=said.append, step=step)
    clock = clock_settings(spec, 24.0)
    fail_below = 3
    report, seed = pnr._place_and_route(run, clock, 1, {"LC": 9}, retries=pnr.PLACEMENT_RETRIES)
    assert (seed, tried, report) == (3, [1, 2, 3], {"fmax": {}})
    assert sum("no legal placement with seed" in s for s in said) == 2
    tried.clear()
    fail_below = 9
    with pytest.raises(FlowError, match=r"does not fit on iCE40UP5K.* \(icebreaker\) \(nextpnr seeds 1 to 3\).*LC 9"):
        pnr._place_and_route(run, clock, 1, {"LC": 9}, retries=pnr.PLACEMENT_RETRIES)
    assert tried == [1, 2, 3]
