"""Implementation: the accelerator inside the UART board top -> Yosys -> nextpnr -> bitstream.

:func:`implement` runs, in ``build/<name>/impl/<board>/``:

1. Yosys ``synth_ecp5`` / ``synth_ice40`` of the family wrapper (``hw/boards/<family>_top.sv``:
   PLL, power-on reset, pins) around ``hw/boards/board_top.sv`` and the accelerator,
2. nextpnr-ecp5 / nextpnr-ice40 with the board's constraint file and the clock constraint,
3. ecppack / icepack -> ``<name>.bit`` (ECP5) or ``<name>.bin`` (iCE40),

and writes ``impl.json`` (utilization against the device's totals, Fmax per clock domain, the
clock, wall time of each step). Every tool writes its own log file there. A tool error, a design
that does not fit, or a clock that misses its constraint raises :class:`FlowError` with the log
and the figures that failed; ``impl.json`` is written first, so the report can still show them.

:func:`xilinx_estimate` runs Yosys ``synth_xilinx`` on the accelerator alone for an xc7z020
resource estimate (LUT6, FF, BRAM18, DSP48), for comparison with FINN's published designs.

The accelerator comes from codegen (``rtl/design.json``: top module, files in compile order,
stream widths and beats per frame; memory files in ``rtl/``). Tests pass an
:class:`AcceleratorDesign` of their own instead.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qnnflow.flows.boards import BoardSpec, board_spec, clock_settings, wrapper_sources

from qnnflow import toolchain
from qnnflow.config import Board
from qnnflow.errors import FlowError
from qnnflow.link import DEFAULT_BAUD, LinkFormat

# the accelerator's module name inside board_top.sv
ACCELERATOR_MODULE = "accelerator"
# a started frame is abandoned after this long without a byte (see frame_decoder.sv)
FRAME_TIMEOUT_S = 0.05
LED_HOLD_S = 0.25

XC7Z020 = {"LUT6": 53200, "FF": 106400, "BRAM18": 280, "DSP48": 220}

# nextpnr's cell types -> the names the report uses
ECP5_RESOURCES = {
    "TRELLIS_COMB": "LUT4",
    "TRELLIS_FF": "FF",
    "DP16KD": "BRAM (DP16KD)",
    "MULT18X18D": "DSP (MULT18X18D)",
    "TRELLIS_IO": "IO",
    "EHXPLLL": "PLL",
}
ICE40_RESOURCES = {
    "ICESTORM_LC": "LC (LUT4+FF)",
    "ICESTORM_RAM": "BRAM (EBR)",
    "ICESTORM_SPRAM": "SPRAM",
    "ICESTORM_DSP": "DSP (SB_MAC16)",
    "SB_IO": "IO",
    "ICESTORM_PLL": "PLL",
}


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


# -- running the tools ---------------------------------------------------------------------------


PROGRESS_EVERY_S = 15.0  # a line on the console this often while a tool runs

# nextpnr's log lines that start a phase, and the phase's name
_PNR_PHASES = (
    ("Info: Packing", "packing"),
    ("Info: Running placement", "placement"),
    ("Info: Placed ", "placement"),
    ("Info: Running detail placement", "detail placement"),
    ("Info: Routing", "routing"),
    ("Info: Router", "routing"),
    ("Info: Critical path report", "timing analysis"),
)
_YOSYS_PASS = re.compile(r"^\d+(?:\.\d+)*\. Executing (.+?)\.?$", re.MULTILINE)


def tool_phase(log: Path) -> str | None:
    """What a running Yosys or nextpnr is doing, read from the end of its log."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    passes = _YOSYS_PASS.findall(tail)
    if passes:
        return passes[-1]
    phase = None
    for line in tail.splitlines():
        for marker, name in _PNR_PHASES:
            if line.startswith(marker):
                phase = name
    return phase


def _run(
    tool: toolchain.Tool,
    args: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    what: str,
    tool_log: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Run one tool with its console output in ``log`` (and its own log in ``tool_log``, if it
    writes one); FlowError naming the tool's log and its error lines if it fails. While it runs,
    ``progress`` gets a line every :data:`PROGRESS_EVERY_S` with the elapsed time and the phase."""
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            tool.argv(*args), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=toolchain.tool_env(tool)
        )
        try:
            while True:
                try:
                    proc.wait(timeout=PROGRESS_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    if progress is not None:
                        phase = tool_phase(tool_log if tool_log is not None else log)
                        progress(f"    {what}: {time.monotonic() - start:.0f} s" + (f" ({phase})" if phase else ""))
        except BaseException:  # Ctrl-C or any error here: no orphaned tool left running
            proc.kill()
            proc.wait()
            raise
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        main = tool_log if tool_log is not None and tool_log.is_file() else log
        detail = _error_lines(log)
        if log.is_file() and "call stack exhausted" in log.read_text(errors="replace"):
            # the WebAssembly build (yowasp) has a fixed call stack; deep recursion in a pass
            # (Yosys's ABC9 XAIGER analysis on a wide 8-bit design) exhausts it where a native build does not
            detail = (
                f"the WebAssembly build of the tool ran out of call stack on this design (a limit of the "
                f"yowasp wheels, not of the design); a native {what.split()[0]} on PATH with --system-tools "
                f"may get through. Last lines: {detail}"
            )
        raise FlowError(f"{what} failed (exit {proc.returncode}): {detail}", main)
    return seconds


def _error_lines(log: Path, limit: int = 6) -> str:
    if not log.is_file():
        return "(no log)"
    lines = log.read_text(errors="replace").splitlines()
    errors = [ln.strip() for ln in lines if "ERROR" in ln or "Error" in ln]
    return "; ".join((errors or lines[-limit:])[:limit])


def _copy_sources(files: Sequence[Path], folder: Path) -> list[str]:
    """Copy files into ``folder`` (Yosys' WebAssembly build sees only its working folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for path in files:
        if path.name in names:
            raise ValueError(f"two source files are named {path.name}; names must be unique")
        shutil.copyfile(path, folder / path.name)
        names.append(path.name)
    return names


def _yosys_read(design: AcceleratorDesign, src: str, acc_names: list[str], board_names: list[str]) -> list[str]:
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


@dataclass
class ImplResult:
    """What :func:`implement` measured; written as ``impl.json``."""

    board: str
    part: str
    family: str
    requested_mhz: float
    clock_mhz: float  # what the PLL (or oscillator) makes
    baud: int
    bitstream: str | None
    fmax: dict[str, dict[str, float]]
    timing_met: bool
    utilization: dict[str, dict[str, int]]
    yosys_cells: dict[str, int]
    seconds: dict[str, float]
    logs: dict[str, str]
    link_format: dict[str, int]
    pll: dict[str, int] = field(default_factory=dict)
    seed: int = 1  # nextpnr's placement seed
    tools: dict[str, str] = field(default_factory=dict)  # tool -> version it was made with (toolchain.versions)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))
        return path


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


def implement(
    build_dir: Path | str,
    board: Board | str = Board.ULX3S_85F,
    clock_mhz: float = 50.0,
    *,
    design: AcceleratorDesign | None = None,
    name: str | None = None,
    baud: int = DEFAULT_BAUD,
    seed: int = 1,
    progress: Callable[[str], None] | None = print,
) -> ImplResult:
    """Synthesize, place and route, and pack the board top with the build's accelerator.

    Returns the figures (also in ``impl/<board>/impl.json``); raises FlowError if a tool fails,
    the design does not fit, or the clock misses ``clock_mhz``."""
    build_dir = Path(build_dir)
    spec = board_spec(board)
    design = design or accelerator_design(build_dir)
    name = name or build_dir.resolve().name
    clock = clock_settings(spec, clock_mhz)
    say = progress or (lambda _msg: None)

    clks_per_bit = uart_clks_per_bit(clock.mhz * 1e6, baud)  # a rate the clock cannot make: before any output
    out = build_dir / "impl" / spec.name
    if out.exists():
        shutil.rmtree(out)
    src = out / "src"
    acc_names = _copy_sources(design.sources, src)
    # codegen copies the library modules it uses into rtl/; the board top needs some of the same
    board_names = _copy_sources([f for f in wrapper_sources(spec) if f.name not in acc_names], src)
    _copy_sources(design.data_files, out)  # $readmemh paths are relative to Yosys' folder
    constraints = shutil.copyfile(spec.constraints_path, out / spec.constraints_path.name).name

    hz = clock.mhz * 1e6
    fmt = design.link_format
    params = {
        **clock.params,
        "LED_ACTIVE_LOW": int(spec.led_active_low),
        "CLKS_PER_BIT": clks_per_bit,
        "TIMEOUT_CLKS": round(hz * FRAME_TIMEOUT_S),
        "LED_HOLD_CLKS": round(hz * LED_HOLD_S),
        "IN_W": fmt.in_width,
        "IN_BEATS": fmt.in_beats,
        "OUT_W": fmt.out_width,
        "OUT_BEATS": fmt.out_beats,
    }
    tools = toolchain.require("yosys", f"nextpnr-{spec.family}", "ecppack" if spec.family == "ecp5" else "icepack")
    seconds: dict[str, float] = {}
    logs = {"synth": "yosys.log", "pnr": "nextpnr.log", "pack": "pack.log"}

    # 1. synthesis
    synth_cmd = (
        f"synth_ecp5 -top {spec.wrapper} -json synth.json"
        if spec.family == "ecp5"
        else f"synth_ice40 -dsp -top {spec.wrapper} -json synth.json"
    )
    script = _yosys_read(design, "src", acc_names, board_names) + [
        "chparam " + " ".join(f"-set {k} {v}" for k, v in params.items()) + f" {spec.wrapper}",
        synth_cmd,
        "tee -q -o synth_stat.json stat -json",
    ]
    (out / "synth.ys").write_text("\n".join(script) + "\n")
    say(f"  synthesis ({spec.family}, Yosys) ...")
    seconds["synth"] = _run(
        tools["yosys"],
        ["-q", "-l", logs["synth"], "synth.ys"],
        cwd=out,
        log=out / "yosys.stdout.log",
        what="Yosys synthesis",
        tool_log=out / logs["synth"],
        progress=progress,
    )
    cells = _stat_cells(out / "synth_stat.json")

    # 2. place and route
    pnr_args = [
        "--json",
        "synth.json",
        "--freq",
        f"{clock.mhz:g}",
        "--report",
        "pnr_report.json",
        "--seed",
        str(seed),
        "--timing-allow-fail",
        "-l",
        logs["pnr"],
        "-q",
    ]
    if spec.family == "ecp5":
        pnr_args += [
            f"--{spec.nextpnr_device}",
            "--package",
            spec.package,
            "--speed",
            spec.speed,
            "--lpf",
            constraints,
            "--textcfg",
            "pnr.config",
        ]
    else:
        pnr_args += [f"--{spec.nextpnr_device}", "--package", spec.package, "--pcf", constraints, "--asc", "pnr.asc"]
    say(f"  place and route (nextpnr-{spec.family}, {spec.part}, {clock.mhz:g} MHz) ...")
    try:
        seconds["pnr"] = _run(
            tools[f"nextpnr-{spec.family}"],
            pnr_args,
            cwd=out,
            log=out / "nextpnr.stdout.log",
            what=f"nextpnr-{spec.family}",
            tool_log=out / logs["pnr"],
            progress=progress,
        )
    except FlowError as err:
        raise _pnr_failure(err, out / logs["pnr"], spec, cells) from None
    report = json.loads((out / "pnr_report.json").read_text())
    fmax = {
        _clock_name(k): {"achieved": round(v["achieved"], 2), "constraint": round(v["constraint"], 2)}
        for k, v in report.get("fmax", {}).items()
    }
    utilization = {
        k: {"used": int(v["used"]), "available": int(v["available"])}
        for k, v in report.get("utilization", {}).items()
        if int(v["used"]) > 0 or k in ECP5_RESOURCES or k in ICE40_RESOURCES
    }
    timing_met = all(v["achieved"] >= v["constraint"] for v in fmax.values())

    result = ImplResult(
        board=spec.name,
        part=spec.part,
        family=spec.family,
        requested_mhz=clock_mhz,
        clock_mhz=round(clock.mhz, 4),
        baud=baud,
        bitstream=None,
        fmax=fmax,
        timing_met=timing_met,
        utilization=utilization,
        yosys_cells=cells,
        seconds=seconds,
        logs={k: str(out / v) for k, v in logs.items()},
        link_format=asdict(fmt),
        pll={k: v for k, v in clock.params.items()},
        seed=seed,
        tools={name: tool.label for name, tool in tools.items()},
    )
    if not timing_met:
        result.write(out / "impl.json")
        failed = ", ".join(
            f"{k}: {v['achieved']:.1f} MHz < {v['constraint']:.1f} MHz"
            for k, v in fmax.items()
            if v["achieved"] < v["constraint"]
        )
        raise FlowError(
            f"timing not met on {spec.part}: {failed}; try --clock-mhz "
            f"{int(min(v['achieved'] for v in fmax.values()))} or a lower clock",  # rounded down
            out / logs["pnr"],
        )

    # 3. bitstream
    suffix = ".bit" if spec.family == "ecp5" else ".bin"
    bitstream = out / f"{name}{suffix}"
    pack_args = ["pnr.config", bitstream.name] if spec.family == "ecp5" else ["pnr.asc", bitstream.name]
    say(f"  bitstream ({'ecppack' if spec.family == 'ecp5' else 'icepack'}) ...")
    packer = tools["ecppack" if spec.family == "ecp5" else "icepack"]
    seconds["pack"] = _run(packer, pack_args, cwd=out, log=out / logs["pack"], what=packer.name)
    result.bitstream = str(bitstream)
    result.write(out / "impl.json")
    return result


def _clock_name(net: str) -> str:
    """nextpnr's clock net as the design names it: ``$glbnet$clk`` -> ``clk``."""
    net = net.replace("$glbnet$", "")
    return re.sub(r"\$(TRELLIS_IO_IN|SB_IO_IN|SB_IO_IN_gb)$", "", net)


def _stat_cells(path: Path) -> dict[str, int]:
    stat = json.loads(path.read_text())
    top = stat.get("design", {})
    cells = top.get("num_cells_by_type", {})
    return {k: int(v) for k, v in sorted(cells.items()) if not k.startswith("$scope")}


def _pnr_failure(err: FlowError, log: Path, spec: BoardSpec, cells: dict[str, int]) -> FlowError:
    text = log.read_text(errors="replace") if log.is_file() else ""
    if "no BELs remaining" in text or "Unable to place cell" in text or "not enough" in text.lower():
        used = ", ".join(f"{k} {v}" for k, v in cells.items())
        return FlowError(
            f"the design does not fit on {spec.part} ({spec.name}): {_error_lines(log)}; synthesized cells: {used}", log
        )
    return err


# -- xc7z020 estimate ----------------------------------------------------------------------------

_LUT_SITES = {
    "LUT1": 1,
    "LUT2": 1,
    "LUT3": 1,
    "LUT4": 1,
    "LUT5": 1,
    "LUT6": 1,
    "LUT6_2": 1,
    "SRL16E": 1,
    "SRLC32E": 1,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1D": 4,
    "RAM32M": 4,
    "RAM64M": 4,
    "RAM32M16": 8,
    "RAM64M8": 8,
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM128X1S": 2,
    "RAM256X1S": 4,
}
_FF = ("FDRE", "FDSE", "FDCE", "FDPE")


def xc7_used(cells: dict[str, int]) -> dict[str, int]:
    """LUT6 (LUT sites, counting LUT RAM and shift registers), FF, BRAM18 (a RAMB36 counts 2) and
    DSP48 of a Yosys ``synth_xilinx`` cell count."""
    return {
        "LUT6": sum(n * cells.get(k, 0) for k, n in _LUT_SITES.items()),
        "FF": sum(cells.get(k, 0) for k in _FF),
        "BRAM18": cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
        "DSP48": cells.get("DSP48E1", 0),
    }


def xilinx_estimate(
    build_dir: Path | str,
    *,
    design: AcceleratorDesign | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict:
    """Yosys ``synth_xilinx -family xc7`` of the accelerator alone: LUT6 (LUT sites, counting
    LUTRAM and shift registers), FF, BRAM18 (a RAMB36 counts 2) and DSP48 against the xc7z020.
    Written to ``impl/xc7z020/estimate.json``."""
    build_dir = Path(build_dir)
    design = design or accelerator_design(build_dir)
    out = build_dir / "impl" / "xc7z020"
    if out.exists():
        shutil.rmtree(out)
    names = _copy_sources(design.sources, out / "src")
    _copy_sources(design.data_files, out)
    script = [
        f"read_verilog -defer -sv {' '.join(f'src/{n}' for n in names)}",
        f"synth_xilinx -family xc7 -top {design.top}",
        "tee -q -o synth_stat.json stat -json",
    ]
    (out / "synth.ys").write_text("\n".join(script) + "\n")
    if progress:
        progress("  xc7z020 estimate (Yosys synth_xilinx) ...")
    seconds = _run(
        toolchain.find("yosys"),
        ["-q", "-l", "yosys.log", "synth.ys"],
        cwd=out,
        log=out / "yosys.stdout.log",
        what="Yosys synth_xilinx",
        tool_log=out / "yosys.log",
        progress=progress,
    )
    cells = _stat_cells(out / "synth_stat.json")
    used = xc7_used(cells)
    estimate = {
        "device": "xc7z020",
        "used": used,
        "available": XC7Z020,
        "percent": {k: round(100 * used[k] / XC7Z020[k], 2) for k in used},
        "cells": cells,
        "seconds": round(seconds, 2),
        "log": str(out / "yosys.log"),
        "note": "Yosys synth_xilinx, not Vivado: a resource estimate before placement",
        "tools": toolchain.versions("yosys"),
    }
    (out / "estimate.json").write_text(json.dumps(estimate, indent=1, sort_keys=True))
    return estimate


def bitstream_stage(
    build_dir: Path | str,
    board: Board | str = Board.ULX3S_85F,
    clock_mhz: float = 50.0,
    *,
    xilinx: bool = True,
    seed: int = 1,
    baud: int = DEFAULT_BAUD,
    progress: Callable[[str], None] | None = print,
    reuse: bool = False,
) -> dict:
    """What ``qnnflow bitstream`` (and the build's implement stage) runs: :func:`implement`, the
    xc7z020 estimate, then ``report.json`` / ``report.md``. Returns the report (a dict; see
    :func:`qnnflow.flows.report.summary` for the short form). A failed implementation still
    leaves ``impl.json`` for a report of what was measured, and raises FlowError.

    ``seed`` is nextpnr's placement seed (``--seed``); Fmax varies with it. ``baud``: the UART's
    rate (the host must use the same: ``qnnflow run --baud``).

    ``reuse``: when the bitstream of this board was already made from the same RTL, settings, tools
    and code, only rewrite the report. A failure leaves a report of what was measured (timing not
    met, no bitstream), never the previous run's."""
    from qnnflow.flows.report import write_report

    from qnnflow import stamps

    build_dir = Path(build_dir)
    spec = board_spec(board)
    design = accelerator_design(build_dir)
    inputs = _bitstream_inputs(build_dir, spec, clock_mhz, seed, baud, xilinx)
    impl = _load_json(build_dir / "impl" / spec.name / "impl.json")
    if (
        reuse
        and stamps.is_current(build_dir, "bitstream", inputs, key=spec.name)
        and impl is not None
        and impl.get("bitstream")
        and Path(impl["bitstream"]).is_file()
    ):
        if progress:
            progress(f"  {impl['bitstream']}: up to date (same RTL, settings and tools); reusing it")
        return write_report(build_dir, spec.name)
    stamps.invalidate(build_dir, "report")
    stamps.remove_stamp(build_dir, "bitstream", key=spec.name)
    try:
        implement(build_dir, spec.name, clock_mhz, design=design, seed=seed, baud=baud, progress=progress)
    except FlowError:
        if (build_dir / "impl" / spec.name / "impl.json").is_file():
            write_report(build_dir, spec.name)  # what was measured: timing NOT met, no bitstream
        raise
    if xilinx:
        xilinx_estimate(build_dir, design=design, progress=progress)
    stamps.write_stamp(build_dir, "bitstream", inputs, key=spec.name)
    return write_report(build_dir, spec.name)


def _load_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _bitstream_inputs(build_dir: Path, spec: BoardSpec, clock_mhz: float, seed: int, baud: int, xilinx: bool) -> dict:
    """What a bitstream is made from: the RTL, the settings, the tools' versions and this code."""
    from qnnflow import stamps

    pack = "ecppack" if spec.family == "ecp5" else "icepack"
    tools = toolchain.require("yosys", f"nextpnr-{spec.family}", pack)
    return {
        "rtl": stamps.digest_path(build_dir / "rtl"),
        "board": spec.name,
        "clock_mhz": clock_mhz,
        "seed": seed,
        "baud": baud,
        "xilinx": xilinx,
        "tools": {name: f"{t.version} ({t.origin})" for name, t in tools.items()},
        "source": stamps.source_digest("qnnflow", "flows", "hw"),
    }
