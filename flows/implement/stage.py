"""The bitstream stage of a build: implementation, the xc7z020 estimate and the report, skipped
when its record (``.stamps/``) shows the bitstream is up to date."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from qnnflow.flows.implement.autoclock import AUTO, implement_auto
from qnnflow.flows.implement.boards import BoardSpec, board_spec
from qnnflow.flows.implement.design import accelerator_design
from qnnflow.flows.implement.pnr import implement
from qnnflow.flows.implement.xilinx import xilinx_estimate

from qnnflow import toolchain
from qnnflow.config import Board
from qnnflow.errors import FlowError
from qnnflow.link import DEFAULT_BAUD


def bitstream_stage(
    build_dir: Path | str,
    board: Board | str = Board.ULX3S_85F,
    clock_mhz: float | str = 50.0,
    *,
    xilinx: bool = True,
    seed: int = 1,
    baud: int = DEFAULT_BAUD,
    progress: Callable[[str], None] | None = print,
    reuse: bool = False,
) -> dict:
    """What ``qnnflow bitstream`` (and the build's implement stage) runs: :func:`implement`, the
    xc7z020 estimate, then ``report.json`` / ``report.md``. Returns the report (a dict; see
    :func:`qnnflow.flows.implement.report.summary` for the short form). A failed implementation still
    leaves ``impl.json`` for a report of what was measured, and raises FlowError.

    ``seed`` is nextpnr's placement seed (``--seed``); Fmax varies with it. ``baud``: the UART's
    rate (the host must use the same: ``qnnflow run --baud``).

    ``reuse``: when the bitstream of this board was already made from the same RTL, settings, tools
    and code, only rewrite the report. A failure leaves a report of what was measured (timing not
    met, no bitstream), never the previous run's."""
    from qnnflow.flows.implement.report import write_report

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
    # made below when asked for; an older one (other RTL, or a run that asked for it) would be reported as this run's
    (build_dir / "impl" / "xc7z020" / "estimate.json").unlink(missing_ok=True)
    try:
        if clock_mhz == AUTO:
            implement_auto(build_dir, spec.name, design=design, seed=seed, baud=baud, progress=progress)
        else:
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


def _bitstream_inputs(
    build_dir: Path, spec: BoardSpec, clock_mhz: float | str, seed: int, baud: int, xilinx: bool
) -> dict:
    """What a bitstream is made from: the RTL, the settings, the tools' versions and this code."""
    from qnnflow import stamps

    tools = toolchain.require("yosys", f"nextpnr-{spec.family}", spec.packer)
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
