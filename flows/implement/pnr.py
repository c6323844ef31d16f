"""Synthesis, place and route, and packing of the board top with a build's accelerator:
:func:`implement` (see :mod:`qnnflow.flows.implement` for the steps and their outputs), and for
benchmarks :func:`seed_sweep`: one synthesis placed with several nextpnr seeds (Fmax moves by a few
MHz from seed to seed, so a figure is the median over seeds), written into ``impl/<board>-seeds/``."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qnnflow.flows.implement.boards import BoardSpec, PllSettings, board_spec, clock_settings, wrapper_sources
from qnnflow.flows.implement.design import (
    FRAME_TIMEOUT_S,
    LED_HOLD_S,
    AcceleratorDesign,
    accelerator_design,
    copy_sources,
    uart_clks_per_bit,
    yosys_read,
)
from qnnflow.flows.implement.dspregs import absorb_multiplier_registers
from qnnflow.flows.implement.outreg import absorb_output_registers
from qnnflow.flows.implement.tools import error_lines, run_tool

from qnnflow import toolchain
from qnnflow.config import Board
from qnnflow.errors import FlowError
from qnnflow.link import DEFAULT_BAUD, LinkFormat

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
GOWIN_RESOURCES = {  # nextpnr-himbaechel's bel types on GW2A
    "LUT4": "LUT4",
    "ALU": "ALU (carry LUT)",
    "DFF": "FF",
    "BSRAM": "BSRAM",
    "RAM16SDP4": "LUTRAM (RAM16SDP4)",
    "MULT18X18": "DSP (MULT18X18)",
    "MULT9X9": "DSP (MULT9X9)",
    "IOB": "IO",
    "rPLL": "PLL",
}

LOGS = {"synth": "yosys.log", "pnr": "nextpnr.log", "pack": "pack.log"}


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
    clock_search: list[dict] = field(default_factory=list)  # --clock-mhz auto: each try (autoclock.py)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))
        return path


@dataclass
class _Run:
    """One implementation in ``out`` (``impl/<board>/``): the board, its tools, the step times."""

    out: Path
    spec: BoardSpec
    tools: dict[str, toolchain.Tool]
    progress: Callable[[str], None] | None
    seconds: dict[str, float] = field(default_factory=dict)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def step(self, key: str, tool: str, args: list[str], what: str, *, own_log: bool = True) -> None:
        """Run one tool in ``out``; its console output goes to ``<tool>.stdout.log`` when it
        writes a log of its own (``LOGS[key]``), else to that log."""
        log = self.out / (f"{tool.split('-')[0]}.stdout.log" if own_log else LOGS[key])
        self.seconds[key] = run_tool(
            self.tools[tool], args, cwd=self.out, log=log, what=what,
            tool_log=self.out / LOGS[key] if own_log else None, progress=self.progress if own_log else None,
        )  # fmt: skip


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
    require_timing: bool = True,
) -> ImplResult:
    """Synthesize, place and route, and pack the board top with the build's accelerator.

    Returns the figures (also in ``impl/<board>/impl.json``); raises FlowError if a tool fails,
    the design does not fit, or (with ``require_timing``) the clock misses ``clock_mhz``; without
    it a missed clock returns the figures with no bitstream."""
    build_dir = Path(build_dir)
    spec = board_spec(board)
    design = design or accelerator_design(build_dir)
    name = name or build_dir.resolve().name
    clock = clock_settings(spec, clock_mhz)
    clks_per_bit = uart_clks_per_bit(clock.mhz * 1e6, baud)  # a rate the clock cannot make: before any output
    run = _Run(
        build_dir / "impl" / spec.name, spec,
        toolchain.require("yosys", f"nextpnr-{spec.family}", spec.packer), progress,
    )  # fmt: skip
    src_files = _stage_sources(run, design)
    params = _top_params(clock, design.link_format, spec, clks_per_bit)
    cells = _synthesize(run, design, src_files, params)
    report, seed = _place_and_route(run, clock, seed, cells, retries=PLACEMENT_RETRIES)
    result = _result(run, clock_mhz, clock, baud, seed, report, cells, design.link_format)
    if not result.timing_met:
        result.write(run.out / "impl.json")
        if not require_timing:  # the caller picks another clock (flows/implement/autoclock.py)
            return result
        raise _timing_failure(result, run)
    result.bitstream = str(_pack(run, name))
    result.write(run.out / "impl.json")
    return result


def _stage_sources(run: _Run, design: AcceleratorDesign) -> tuple[list[str], list[str], str]:
    """A fresh ``out`` with the accelerator's and the board top's sources in ``src/``, the memory
    files and the constraint file beside them (Yosys' WebAssembly build sees only its folder).
    Returns the accelerator's file names, the board files' names and the constraint file's."""
    if run.out.exists():
        shutil.rmtree(run.out)
    src = run.out / "src"
    acc_names = copy_sources(design.sources, src)
    # codegen copies the library modules it uses into rtl/; the board top needs some of the same
    board_names = copy_sources([f for f in wrapper_sources(run.spec) if f.name not in acc_names], src)
    copy_sources(design.data_files, run.out)  # $readmemh paths are relative to Yosys' folder
    constraints = shutil.copyfile(run.spec.constraints_path, run.out / run.spec.constraints_path.name).name
    return acc_names, board_names, constraints


def _top_params(clock: PllSettings, fmt: LinkFormat, spec: BoardSpec, clks_per_bit: int) -> dict[str, int | str]:
    """The board top's parameters: PLL, LED polarity, the UART's timing, the accelerator's streams."""
    hz = clock.mhz * 1e6
    return {
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


# family -> Yosys' synthesis command (before -top and -json)
SYNTH_COMMANDS = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp", "gowin": "synth_gowin -family gw2a"}

# iCE40: a ROM of at least this many words goes into an EBR (SB_RAM40_4K) even where Yosys would
# build it from LUTs. Its read is registered either way, but from LUT4s a ROM of 2**n words is a
# 16-word LUT and n - 4 levels of 2:1 multiplexers: the digits CNN's first weight ROM (288 x 2 bits)
# was six LUT levels and the UP5K's critical path at 45 MHz. An EBR holds 2,048 x 2 bits; the UP5K
# has 30 (the digits CNN uses 21 without it).
ICE40_ROM_IN_EBR_WORDS = 128


def synth_lines(family: str, synth_cmd: str, options: str, top: str) -> list[str]:
    """Yosys' synthesis lines: the synth command, on iCE40 split before memory mapping to put deep
    ROMs into EBRs (:data:`ICE40_ROM_IN_EBR_WORDS`)."""

    def synth(*args: str) -> str:
        return " ".join(filter(None, (synth_cmd, options, f"-top {top}", *args)))

    if family != "ice40":
        return [synth("-json synth.json")]
    roms = f"t:$mem_v2 r:WR_PORTS=0 %i r:SIZE>={ICE40_ROM_IN_EBR_WORDS} %i"
    return [synth("-run :map_ram"), f'setattr -set rom_style "block" {roms}', synth("-json synth.json -run map_ram:")]


def _synthesize(
    run: _Run, design: AcceleratorDesign, src_files: tuple, params: dict, options: str = ""
) -> dict[str, int]:
    """Yosys synth_ecp5 / synth_ice40 / synth_gowin of the family wrapper -> ``synth.json``; the cell
    counts. ``options``: more options of the synth command (benchmarks compare them)."""
    acc_names, board_names, _ = src_files
    spec = run.spec
    values = {k: f'"{v}"' if isinstance(v, str) else v for k, v in params.items()}  # a string parameter quoted
    script = yosys_read(design, "src", acc_names, board_names) + [
        "chparam " + " ".join(f"-set {k} {v}" for k, v in values.items()) + f" {spec.wrapper}",
        *synth_lines(spec.family, SYNTH_COMMANDS[spec.family], options, spec.wrapper),
        "tee -q -o synth_stat.json stat -json",
    ]
    (run.out / "synth.ys").write_text("\n".join(script) + "\n")
    run.say(f"  synthesis ({spec.family}, Yosys) ...")
    run.step("synth", "yosys", ["-q", "-l", LOGS["synth"], "synth.ys"], "Yosys synthesis")
    cells = stat_cells(run.out / "synth_stat.json")
    if spec.family == "ecp5":  # block RAM reads and multipliers: their own registers (outreg.py, dspregs.py)
        netlist = json.loads((run.out / "synth.json").read_text())
        cells["DP16KD output registers"] = absorb_output_registers(netlist)
        cells["MULT18X18D registers"] = absorb_multiplier_registers(netlist)
        (run.out / "synth.json").write_text(json.dumps(netlist))
    return cells


def _pnr_args(spec: BoardSpec, clock: PllSettings, seed: int) -> list[str]:
    args = ["--json", "synth.json", "--freq", f"{clock.mhz:g}", "--report", "pnr_report.json",
            "--seed", str(seed), "--timing-allow-fail", "-l", LOGS["pnr"], "-q"]  # fmt: skip
    constraints = spec.constraints_path.name
    if spec.family == "ecp5":
        return args + [f"--{spec.nextpnr_device}", "--package", spec.package, "--speed", spec.speed,
                       "--lpf", constraints, "--textcfg", "pnr.config"]  # fmt: skip
    if spec.family == "gowin":  # nextpnr-himbaechel: the part, its chip database, the .cst file
        return args + ["--device", spec.nextpnr_device, "--vopt", f"family={spec.chip_family}",
                       "--vopt", f"cst={constraints}", "--write", "pnr.json"]  # fmt: skip
    return args + [f"--{spec.nextpnr_device}", "--package", spec.package, "--pcf", constraints, "--asc", "pnr.asc"]


# more seeds when the placer finds no legal placement: near a part's limit that depends on the
# seed (the digits CNN on the UP5K, 86 % of the LCs: none with seed 1, one with seeds 2 and 3)
PLACEMENT_RETRIES = 2


def _no_legal_placement(log: Path) -> bool:
    return log.is_file() and "Unable to find legal placement" in log.read_text(errors="replace")


def _place_and_route(
    run: _Run, clock: PllSettings, seed: int, cells: dict[str, int], retries: int = 0
) -> tuple[dict, int]:
    """nextpnr with the board's constraints and the clock constraint; its JSON report and the seed
    that placed. With no legal placement, up to ``retries`` more seeds (seed + 1, ...) are tried. A
    design that does not fit is reported with the synthesized cells."""
    spec = run.spec
    run.say(f"  place and route (nextpnr-{spec.family}, {spec.part}, {clock.mhz:g} MHz) ...")
    for s in range(seed, seed + retries + 1):
        try:
            run.step("pnr", f"nextpnr-{spec.family}", _pnr_args(spec, clock, s), f"nextpnr-{spec.family}")
        except FlowError as err:
            log = run.out / LOGS["pnr"]
            if s < seed + retries and _no_legal_placement(log):
                run.say(f"  nextpnr found no legal placement with seed {s}; placing again with seed {s + 1} ...")
                continue
            raise _pnr_failure(err, log, spec, cells, seeds=(seed, s)) from None
        return json.loads((run.out / "pnr_report.json").read_text()), s
    raise AssertionError("unreachable: the last seed returns or raises")


def _result(run: _Run, requested_mhz: float, clock: PllSettings, baud: int, seed: int, report: dict,
            cells: dict[str, int], fmt: LinkFormat) -> ImplResult:  # fmt: skip
    """The figures of nextpnr's report: Fmax per clock domain, utilization, whether timing is met."""
    fmax = {
        _clock_name(k): {"achieved": round(v["achieved"], 2), "constraint": round(v["constraint"], 2)}
        for k, v in report.get("fmax", {}).items()
    }
    utilization = {
        k: {"used": int(v["used"]), "available": int(v["available"])}
        for k, v in report.get("utilization", {}).items()
        if int(v["used"]) > 0 or k in ECP5_RESOURCES or k in ICE40_RESOURCES or k in GOWIN_RESOURCES
    }
    return ImplResult(
        board=run.spec.name, part=run.spec.part, family=run.spec.family, requested_mhz=requested_mhz,
        clock_mhz=round(clock.mhz, 4), baud=baud, bitstream=None, fmax=fmax,
        timing_met=all(v["achieved"] >= v["constraint"] for v in fmax.values()), utilization=utilization,
        yosys_cells=cells, seconds=run.seconds, logs={k: str(run.out / v) for k, v in LOGS.items()},
        link_format=asdict(fmt), pll=dict(clock.params), seed=seed,
        tools={name: tool.label for name, tool in run.tools.items()},
    )  # fmt: skip


def _timing_failure(result: ImplResult, run: _Run) -> FlowError:
    failed = ", ".join(
        f"{k}: {v['achieved']:.1f} MHz < {v['constraint']:.1f} MHz"
        for k, v in result.fmax.items()
        if v["achieved"] < v["constraint"]
    )
    return FlowError(
        f"timing not met on {run.spec.part}: {failed}; try --clock-mhz "
        f"{int(min(v['achieved'] for v in result.fmax.values()))} or a lower clock",  # rounded down
        run.out / LOGS["pnr"],
    )


# family -> the bitstream's suffix and the packer's arguments before it (the placed design)
PACK_ARGS = {"ecp5": (".bit", ["pnr.config"]), "ice40": (".bin", ["pnr.asc"]), "gowin": (".fs", ["pnr.json"])}


def _pack(run: _Run, name: str) -> Path:
    """ecppack / icepack / gowin_pack -> ``<name>.bit`` (ECP5), ``<name>.bin`` (iCE40), ``<name>.fs`` (Gowin)."""
    suffix, args = PACK_ARGS[run.spec.family]
    bitstream = run.out / f"{name}{suffix}"
    if run.spec.family == "gowin":
        args = ["-d", run.spec.chip_family, *args, "-o"]
    packer = run.spec.packer
    run.say(f"  bitstream ({packer}) ...")
    run.step("pack", packer, [*args, bitstream.name], packer, own_log=False)
    return bitstream


def _clock_name(net: str) -> str:
    """nextpnr's clock net as the design names it: ``$glbnet$clk`` -> ``clk``."""
    net = net.replace("$glbnet$", "")
    return re.sub(r"\$(TRELLIS_IO_IN|SB_IO_IN|SB_IO_IN_gb)$", "", net)


def stat_cells(path: Path) -> dict[str, int]:
    stat = json.loads(path.read_text())
    top = stat.get("design", {})
    cells = top.get("num_cells_by_type", {})
    return {k: int(v) for k, v in sorted(cells.items()) if not k.startswith("$scope")}


def _pnr_failure(
    err: FlowError, log: Path, spec: BoardSpec, cells: dict[str, int], seeds: tuple[int, int] = (1, 1)
) -> FlowError:
    """``err`` of nextpnr, or where the log says the design does not fit, a message that says so
    with the synthesized cells (and the seeds tried, ``seeds``: first and last)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    fits = ("no BELs remaining", "Unable to place cell", "Unable to find legal placement")
    if any(f in text for f in fits) or "not enough" in text.lower():
        used = ", ".join(f"{k} {v}" for k, v in cells.items())
        tried = f" (nextpnr seeds {seeds[0]} to {seeds[1]})" if seeds[1] > seeds[0] else ""
        where = f"{spec.part} ({spec.name}){tried}"
        return FlowError(f"the design does not fit on {where}: {error_lines(log)}; synthesized cells: {used}", log)
    return err


# -- several nextpnr seeds from one synthesis (for benchmarks) ------------------------------------------------
def seed_sweep(
    build_dir: Path | str,
    board: str,
    clock_mhz: float,
    seeds: tuple[int, ...],
    progress: Callable[[str], None] | None = print,
    synth_options: str = "",
) -> dict:
    """Yosys once, then nextpnr with each of ``seeds`` (``--timing-allow-fail``: a missed clock is
    recorded, not raised). Per seed: Fmax (the slowest clock domain), whether the clock was met,
    nextpnr's utilization and seconds; and the synthesis' cells and seconds."""
    if not seeds:
        raise ValueError("seed_sweep needs at least one nextpnr seed")
    build_dir = Path(build_dir)
    spec = board_spec(board)
    design = accelerator_design(build_dir)
    clock = clock_settings(spec, clock_mhz)
    tools = toolchain.require("yosys", f"nextpnr-{spec.family}")
    run = _Run(build_dir / "impl" / f"{spec.name}-seeds", spec, tools, progress)
    src_files = _stage_sources(run, design)
    params = _top_params(clock, design.link_format, spec, uart_clks_per_bit(clock.mhz * 1e6, DEFAULT_BAUD))
    cells = _synthesize(run, design, src_files, params, synth_options)
    runs = []
    for seed in seeds:
        run.say(f"  nextpnr seed {seed}")
        report, _ = _place_and_route(run, clock, seed, cells)
        res = _result(run, clock_mhz, clock, DEFAULT_BAUD, seed, report, cells, design.link_format)
        runs.append({
            "seed": seed,
            "fmax_mhz": min((v["achieved"] for v in res.fmax.values()), default=None),
            "fmax_per_clock": res.fmax,
            "timing_met": res.timing_met,
            "utilization": res.utilization,
            "pnr_seconds": round(run.seconds["pnr"], 2),
        })  # fmt: skip
    return {
        "board": spec.name,
        "part": spec.part,
        "clock_mhz": round(clock.mhz, 4),
        "synth_command": f"{SYNTH_COMMANDS[spec.family]} {synth_options}".strip(),
        "synth_seconds": round(run.seconds["synth"], 2),
        "yosys_cells": cells,
        "runs": runs,
        "tools": {name: tool.label for name, tool in tools.items()},
        "folder": str(run.out),
    }
