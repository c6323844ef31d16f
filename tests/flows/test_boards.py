"""The board table, constraint files, and PLL settings (checked against IceStorm's icepll and
Project Trellis' ecppll, which come with the nextpnr wheels, Apycula's gowin_pll, and the rPLL's
formula written out here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from qnnflow.flows.implement.boards import (
    board_spec,
    board_table,
    board_top_sources,
    clock_settings,
    ecp5_pll,
    gowin_pll,
    ice40_pll,
    wrapper_sources,
)

from qnnflow import toolchain
from qnnflow.config import Board
from qnnflow.link import LinkFormat
from tests.hw.standin import standin_sources


def test_every_board_of_the_config_has_a_row_and_constraints() -> None:
    assert set(board_table()) == {b.value for b in Board}
    for board in Board:
        spec = board_spec(board)
        text = spec.constraints_path.read_text()
        for port in ("clk_osc", "uart_rx", "uart_tx", "led[0]", "led[1]"):
            assert port in text, f"{spec.constraints}: no constraint for {port}"
    assert board_spec(Board.ULX3S_85F).part == "LFE5U-85F-6BG381C" and board_spec("ulx3s-85f").osc_mhz == 25.0
    assert board_spec(Board.ICEBREAKER).package == "sg48" and board_spec("icebreaker").osc_mhz == 12.0
    tn20k = board_spec(Board.TANGNANO20K)
    assert (tn20k.family, tn20k.chip_family, tn20k.osc_mhz) == ("gowin", "GW2A-18C", 27.0)
    assert tn20k.packer == "gowin_pack" and tn20k.constraints == "tangnano20k.cst"


def test_tangnano20k_pins_are_sipeeds() -> None:
    """The crystal, the BL616 UART and LED0 / LED1 on the pins of Sipeed's pinout (a .cst line each)."""
    text = board_spec("tangnano20k").constraints_path.read_text()
    pins = dict(re.findall(r'^IO_LOC\s+"([^"]+)"\s+(\d+);', text, flags=re.MULTILINE))
    assert pins == {"clk_osc": "4", "uart_rx": "70", "uart_tx": "69", "led[0]": "15", "led[1]": "16"}


def test_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown board 'de10'; known boards: ulx3s-85f, orangecrab-25f, icebreaker, "
                                         "tangnano20k"):
        board_spec("de10")


def test_board_top_sources_cover_its_library_modules() -> None:
    names = [p.name for p in board_top_sources()]
    for module in ("uart_rx", "uart_tx", "fifo", "frame_decoder", "frame_encoder", "crc"):
        assert f"{module}.sv" in names
    assert names[-1] == "board_top.sv"


@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker", "tangnano20k"])
def test_wrapper_sources_include_the_modules_the_wrapper_instantiates(board: str) -> None:
    spec = board_spec(board)
    names = [p.name for p in wrapper_sources(spec)]
    assert names[-1] == f"{spec.wrapper}.sv"
    assert "power_on_reset.sv" in names and names.count("board_top.sv") == 1


@pytest.mark.synth
@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker", "tangnano20k"])
def test_wrapper_elaborates_from_its_sources(board: str, tmp_path: Path) -> None:
    """Yosys finds every module of the wrapper (without a PLL) in wrapper_sources and an accelerator."""
    spec = board_spec(board)
    files = standin_sources(tmp_path / "standin", LinkFormat(8, 16, 4, 1)) + wrapper_sources(spec)
    for f in files:
        shutil.copyfile(f, tmp_path / f.name)
    tool = toolchain.find("yosys")
    script = f"read_verilog -defer -sv {' '.join(f.name for f in files)}; hierarchy -check -top {spec.wrapper}"
    out = subprocess.run(tool.argv("-q", "-p", script), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_pll_when_the_oscillator_is_the_clock() -> None:
    assert clock_settings(board_spec("ulx3s-85f"), 25.0).params == {"USE_PLL": 0}
    assert clock_settings(board_spec("ulx3s-85f"), 50.0).params["USE_PLL"] == 1


@pytest.mark.parametrize("mhz", [50.0, 40.0, 30.0])
def test_ecp5_pll_settings_are_consistent(mhz: float) -> None:
    pll = ecp5_pll(25.0, mhz)
    p = pll.params
    out = 25.0 / p["CLKI_DIV"] * p["CLKFB_DIV"]
    assert out == pytest.approx(pll.mhz) and 400 <= out * p["CLKOP_DIV"] <= 800
    assert abs(out - mhz) < 0.5


def _tool(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        pytest.skip(f"{name} not installed")
    return str(path)


@pytest.mark.synth
@pytest.mark.parametrize("mhz", [24.0, 30.0, 48.0])
def test_ice40_pll_matches_icepll(mhz: float) -> None:
    out = subprocess.run([_tool("yowasp-icepll"), "-i", "12", "-o", str(mhz)], capture_output=True, text=True,
                         check=True).stdout
    want = {k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", out, flags=re.MULTILINE)}
    achieved = float(re.search(r"F_PLLOUT:\s+([0-9.]+) MHz \(achieved\)", out).group(1))
    pll = ice40_pll(12.0, mhz)
    assert pll.mhz == pytest.approx(achieved, abs=1e-3)
    assert pll.params == want


@pytest.mark.synth
@pytest.mark.parametrize("mhz", [50.0, 33.0, 65.0])
def test_ecp5_pll_is_as_close_as_ecppll(mhz: float, tmp_path: Path) -> None:
    out = subprocess.run([_tool("yowasp-ecppll"), "-i", "25", "-o", str(mhz), "-f", "pll.v"], capture_output=True,
                         text=True, cwd=tmp_path, check=True).stdout
    achieved = float(re.search(r"clkout0 frequency: ([0-9.]+) MHz", out).group(1))
    assert abs(ecp5_pll(25.0, mhz).mhz - mhz) <= abs(achieved - mhz) + 1e-3


# the rPLL's ranges on GW2A(R)-18 C8/I7 (GW2A datasheet), written out here: PFD, VCO, CLKOUT in MHz
GW2A_PFD, GW2A_VCO, GW2A_OUT = (3.0, 500.0), (500.0, 1250.0), (3.90625, 625.0)


@pytest.mark.parametrize("mhz", [27.5, 30.0, 40.0, 48.0, 50.0, 66.0, 100.0])
def test_gowin_pll_follows_the_rpll_formula(mhz: float) -> None:
    """The settings give the clock they claim by f = 27 * (FBDIV_SEL+1) / (IDIV_SEL+1), within the ranges,
    and no setting in the whole space is closer to the request."""
    pll = gowin_pll(27.0, mhz)
    p = pll.params
    assert p["FCLKIN"] == "27"
    idiv, fbdiv, odiv = p["IDIV_SEL"] + 1, p["FBDIV_SEL"] + 1, p["ODIV_SEL"]
    out = 27.0 * fbdiv / idiv
    assert out == pytest.approx(pll.mhz, rel=1e-12)
    assert GW2A_PFD[0] <= 27.0 / idiv <= GW2A_PFD[1] and GW2A_VCO[0] <= out * odiv <= GW2A_VCO[1]
    odivs = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)
    assert 1 <= idiv <= 64 and 1 <= fbdiv <= 64 and odiv in odivs
    reachable = [27.0 * f / i for i in range(1, 65) for f in range(1, 65) for o in odivs
                 if 27.0 / i >= GW2A_PFD[0] and GW2A_OUT[0] < 27.0 * f / i <= GW2A_OUT[1]
                 and GW2A_VCO[0] <= 27.0 * f / i * o <= GW2A_VCO[1]]  # fmt: skip
    assert abs(out - mhz) <= min(abs(f - mhz) for f in reachable) + 1e-9


def test_gowin_pll_out_of_range_is_a_plain_error() -> None:
    with pytest.raises(ValueError, match=r"a GW2A rPLL makes 3.90625..625 MHz, not 700.0 MHz"):
        gowin_pll(27.0, 700.0)
    assert clock_settings(board_spec("tangnano20k"), 27.0).params == {"USE_PLL": 0}
    assert clock_settings(board_spec("tangnano20k"), 50.0).params["ODIV_SEL"] == 16


@pytest.mark.synth
@pytest.mark.parametrize("mhz", [30.0, 50.0, 65.0, 100.0])
def test_gowin_pll_is_as_close_as_apyculas_gowin_pll(mhz: float) -> None:
    out = subprocess.run([_tool("gowin_pll"), "-i", "27", "-o", str(mhz), "-d", "GW2AR-18 C8/I7"],
                         capture_output=True, text=True, check=True).stdout
    achieved = float(re.search(r"Achieved output frequency:\s+([0-9.]+) MHz", out).group(1))
    assert abs(gowin_pll(27.0, mhz).mhz - mhz) <= abs(achieved - mhz) + 1e-3
