"""The boards qnnflow builds for, their clocks, and the RTL around the accelerator.

The board table is ``hw/boards/boards.toml`` (part, package, speed grade, oscillator, UART and
LED pins, constraint file); this module reads it, computes PLL settings for a requested clock,
and lists the RTL files of the board top (``hw/boards/board_top.sv`` with the library modules it
uses, and the family's wrapper with its PLL).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from qnnflow.hw import library as rtl
from qnnflow.hw import rtl_dir

from qnnflow.config import Board


def boards_dir() -> Path:
    return rtl_dir() / "boards"


# family -> the tool that turns nextpnr's output into a bitstream
PACKERS = {"ecp5": "ecppack", "ice40": "icepack", "gowin": "gowin_pack"}


@dataclass(frozen=True)
class BoardSpec:
    """One row of ``hw/boards/boards.toml``."""

    name: str
    family: str  # "ecp5", "ice40" or "gowin"
    part: str
    nextpnr_device: str  # nextpnr's device option: 85k / 25k (ECP5), up5k (iCE40), the part (Gowin)
    package: str
    speed: str
    osc_mhz: float
    constraints: str
    uart: str
    leds: str
    led_active_low: bool
    luts: int = 0  # LUT4s of the part
    bram_kbit: int = 0  # its block RAM in kbit (DP16KD / EBR / BSRAM together)
    chip_family: str = ""  # Gowin: the chip database (nextpnr's --vopt family, gowin_pack -d), e.g. GW2A-18C

    @property
    def packer(self) -> str:
        """The tool that writes the bitstream (a name of :data:`qnnflow.toolchain.SPECS`)."""
        return PACKERS[self.family]

    @property
    def constraints_path(self) -> Path:
        return boards_dir() / self.constraints

    @property
    def wrapper(self) -> str:
        """The family's top module (``hw/boards/<family>_top.sv``)."""
        return f"{self.family}_top"


@functools.cache
def board_table() -> dict[str, BoardSpec]:
    path = boards_dir() / "boards.toml"
    data = tomllib.loads(path.read_text())
    return {name: BoardSpec(name=name, **row) for name, row in data.items()}


def board_spec(board: Board | str) -> BoardSpec:
    name = board.value if isinstance(board, Board) else board
    table = board_table()
    if name not in table:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(table)}")
    return table[name]


# -- PLL settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PllSettings:
    """Parameters of the family wrapper's PLL and the clock they give (MHz)."""

    params: dict[str, int | str]  # integers; a string only where the primitive takes one (rPLL's FCLKIN)
    mhz: float


def ecp5_pll(osc_mhz: float, want_mhz: float) -> PllSettings:
    """EHXPLLL dividers with feedback from CLKOP: f = osc / CLKI_DIV * CLKFB_DIV, VCO = f * CLKOP_DIV.

    Limits (ECP5 sysCLOCK guide, as used by Project Trellis' ecppll): input 8..400 MHz, PFD
    3.125..400 MHz, VCO 400..800 MHz, output 3.125..400 MHz. The closest frequency wins; among
    equals, the VCO nearest 600 MHz."""
    if not 3.125 <= want_mhz <= 400:
        raise ValueError(f"an ECP5 PLL makes 3.125..400 MHz, not {want_mhz} MHz")
    best: tuple[float, float, dict[str, int], float] | None = None
    for clki_div in range(1, 129):
        pfd = osc_mhz / clki_div
        if pfd < 3.125:
            break
        if pfd > 400:
            continue
        for clkfb_div in range(1, 81):
            out = pfd * clkfb_div
            if out > 400:
                break
            for clkop_div in range(1, 129):
                vco = out * clkop_div
                if vco > 800:
                    break
                if vco < 400:
                    continue
                key = (abs(out - want_mhz), abs(vco - 600))
                if best is None or key < best[:2]:
                    params = {
                        "CLKI_DIV": clki_div,
                        "CLKFB_DIV": clkfb_div,
                        "CLKOP_DIV": clkop_div,
                        "CLKOP_CPHASE": clkop_div - 1,
                    }
                    best = (*key, params, out)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {want_mhz} MHz from {osc_mhz} MHz")
    return PllSettings(best[2], best[3])


def ice40_pll(osc_mhz: float, want_mhz: float) -> PllSettings:
    """SB_PLL40 dividers, simple feedback: f = osc * (DIVF+1) / ((DIVR+1) * 2**DIVQ).

    Limits (iCE40 sysCLOCK PLL guide, as used by IceStorm's icepll): PFD 10..133 MHz, VCO
    533..1066 MHz, output 16..275 MHz; FILTER_RANGE from the PFD frequency."""
    if not 16 <= want_mhz <= 275:
        raise ValueError(f"an iCE40 PLL makes 16..275 MHz, not {want_mhz} MHz")
    best: tuple[float, dict[str, int], float] | None = None
    for divr in range(16):
        pfd = osc_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                if best is None or abs(out - want_mhz) < best[0]:
                    ranges = (17, 26, 44, 66, 101)
                    filt = 1 + sum(pfd >= r for r in ranges)
                    best = (abs(out - want_mhz), {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filt}, out)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes {want_mhz} MHz from {osc_mhz} MHz")
    return PllSettings(best[1], best[2])


# rPLL ODIV_SEL: the output divider's allowed values (Gowin clock user guide UG286)
GOWIN_ODIVS = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)


def gowin_pll(osc_mhz: float, want_mhz: float) -> PllSettings:
    """GW2A rPLL dividers, internal feedback: f = osc * (FBDIV_SEL+1) / (IDIV_SEL+1),
    PFD = osc / (IDIV_SEL+1), VCO = f * ODIV_SEL.

    Limits (GW2A(R) datasheet DS102 / DS976, speed grade C8/I7; the same as Apycula's gowin_pack
    checks): CLKIN 3..500 MHz, PFD 3..500 MHz, VCO 500..1250 MHz, CLKOUT 3.90625..625 MHz.
    IDIV_SEL and FBDIV_SEL are 0..63, ODIV_SEL one of :data:`GOWIN_ODIVS`. The closest frequency
    wins; among equals, the VCO nearest 875 MHz (the middle of its range). The settings include
    ``FCLKIN``, the oscillator in MHz as the string rPLL takes: gowin_pack sets the charge pump
    from it."""
    if not 3.90625 < want_mhz <= 625:
        raise ValueError(f"a GW2A rPLL makes 3.90625..625 MHz, not {want_mhz} MHz")
    if not 3 <= osc_mhz <= 500:
        raise ValueError(f"a GW2A rPLL takes a 3..500 MHz input, not {osc_mhz} MHz")
    best: tuple[float, float, dict[str, int], float] | None = None
    for idiv in range(1, 65):
        pfd = osc_mhz / idiv
        if pfd < 3:
            break
        for fbdiv in range(1, 65):
            out = pfd * fbdiv
            if not 3.90625 < out <= 625:
                continue
            for odiv in GOWIN_ODIVS:
                vco = out * odiv
                if not 500 <= vco <= 1250:
                    continue
                key = (abs(out - want_mhz), abs(vco - 875))
                if best is None or key < best[:2]:
                    best = (*key, {"IDIV_SEL": idiv - 1, "FBDIV_SEL": fbdiv - 1, "ODIV_SEL": odiv}, out)
    if best is None:
        raise ValueError(f"no GW2A rPLL setting makes {want_mhz} MHz from {osc_mhz} MHz")
    return PllSettings({"FCLKIN": f"{osc_mhz:g}", **best[2]}, best[3])


_PLLS = {"ecp5": ecp5_pll, "ice40": ice40_pll, "gowin": gowin_pll}


def clock_settings(spec: BoardSpec, want_mhz: float) -> PllSettings:
    """The wrapper's clock parameters for ``want_mhz``: no PLL when the oscillator is that clock."""
    if abs(want_mhz - spec.osc_mhz) < 1e-9:
        return PllSettings({"USE_PLL": 0}, spec.osc_mhz)
    pll = _PLLS[spec.family](spec.osc_mhz, want_mhz)
    return PllSettings({"USE_PLL": 1, **pll.params}, pll.mhz)


# -- RTL of the board top ------------------------------------------------------------------------

_INSTANCE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:#\s*\(|[A-Za-z_]\w*\s*\()", re.MULTILINE)


def board_top_sources() -> list[Path]:
    """``hw/boards/board_top.sv`` and the library modules it uses (not the accelerator)."""
    top = boards_dir() / "board_top.sv"
    text = re.sub(r"//[^\n]*", "", top.read_text())
    known = set(rtl.modules())
    files: list[Path] = []
    for module in _INSTANCE.findall(text):
        if module in known:
            for path in rtl.sources(module):
                if path not in files:
                    files.append(path)
    return files + [top]


def wrapper_sources(spec: BoardSpec) -> list[Path]:
    """The family wrapper (PLL, pins), the board modules it uses besides the board top, directly or
    not (``hw/boards/board_core.sv``, ``power_on_reset.sv``), and the board top with its library
    modules, for synthesis; a module before the modules that use it."""
    wrapper = boards_dir() / f"{spec.wrapper}.sv"
    used: list[Path] = []

    def visit(path: Path) -> None:
        text = re.sub(r"//[^\n]*", "", path.read_text())
        # instances of other files in hw/boards/ (the PLL primitive is the vendor's, not a file)
        for m in _INSTANCE.findall(text):
            dep = boards_dir() / f"{m}.sv"
            if m != "board_top" and dep.is_file() and dep not in used:
                visit(dep)
                used.append(dep)

    visit(wrapper)
    return board_top_sources() + used + [wrapper]
