"""The accelerator as implementation sees it (codegen's ``rtl/``), the board top's parameters that
depend on it (the UART's bit period), and the Yosys lines that read it."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qnnflow.link import LinkFormat

# the accelerator's module name inside board_top.sv
ACCELERATOR_MODULE = "accelerator"
# a started frame is abandoned after this long without a byte (see frame_decoder.sv)
FRAME_TIMEOUT_S = 0.05
LED_HOLD_S = 0.25


@dataclass(frozen=True)
class AcceleratorDesign:
    """The accelerator's RTL: its top module, source files, memory files, and stream format."""

    top: str
    sources: tuple[Path, ...]
    data_files: tuple[Path, ...]
    link_format: LinkFormat


def accelerator_design(build_dir: Path | str) -> AcceleratorDesign:
    """The accelerator that codegen wrote into ``build_dir/rtl`` (design.json, files.f, memory files)."""
    from qnnflow.flows.codegen import load_design

    from qnnflow import stamps

    rtl = Path(build_dir) / "rtl"
    if stamps.rtl_digest(build_dir) is None:
        raise FileNotFoundError(
            f"{rtl} is missing or incomplete (no {stamps.RTL_STAMP}): run `qnnflow sim {build_dir}` first"
        )
    design = load_design(rtl)
    sources = tuple(rtl / f for f in design.files)
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"sources listed in {rtl / 'design.json'} are missing: {', '.join(missing)}")
    data = tuple(sorted(p for p in rtl.iterdir() if p.suffix in (".mem", ".hex", ".memh")))
    fmt = LinkFormat(design.input.width, design.input.beats, design.output.width, design.output.beats)
    return AcceleratorDesign(design.top, sources, data, fmt)


def copy_sources(files: Sequence[Path], folder: Path) -> list[str]:
    """Copy files into ``folder`` (Yosys' WebAssembly build sees only its working folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for path in files:
        if path.name in names:
            raise ValueError(f"two source files are named {path.name}; names must be unique")
        shutil.copyfile(path, folder / path.name)
        names.append(path.name)
    return names


def yosys_read(design: AcceleratorDesign, src: str, acc_names: list[str], board_names: list[str]) -> list[str]:
    """Read the accelerator (elaborated, then renamed to ``accelerator``) and the board files."""
    if design.top == ACCELERATOR_MODULE:
        # deferred: library modules are elaborated only with the parameters (and memory files)
        # that the accelerator gives them
        return [f"read_verilog -defer -sv {' '.join(f'{src}/{n}' for n in acc_names + board_names)}"]
    lines = [
        f"read_verilog -sv {' '.join(f'{src}/{n}' for n in acc_names)}",
        f"rename {design.top} {ACCELERATOR_MODULE}",
    ]
    lines.append(f"read_verilog -defer -sv {' '.join(f'{src}/{n}' for n in board_names)}")
    return lines


BAUD_TOLERANCE = 0.02  # largest relative bit-period error of the UART; a 10-bit frame stays in step


def uart_clks_per_bit(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit at ``baud``; ValueError when the clock cannot make that rate
    within :data:`BAUD_TOLERANCE` or gives fewer than 4 cycles per bit (hw/uart_rx.sv's minimum)."""
    if baud <= 0:
        raise ValueError(f"baud rate must be positive, not {baud}")
    n = round(clock_hz / baud)
    if n < 4:
        raise ValueError(
            f"{baud} baud needs at least 4 clock cycles per bit; {clock_hz / 1e6:g} MHz gives {clock_hz / baud:.2f}"
        )
    err = abs(clock_hz / n - baud) / baud
    if err > BAUD_TOLERANCE:
        raise ValueError(
            f"{clock_hz / 1e6:g} MHz cannot make {baud} baud: {n} cycles per bit give {clock_hz / n:.0f} baud "
            f"({err:.1%} off, at most {BAUD_TOLERANCE:.0%}); choose another clock or baud rate"
        )
    return n
