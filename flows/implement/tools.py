"""Running Yosys, nextpnr and the packers: one call with its log, progress while it runs, and a
:class:`~qnnflow.errors.FlowError` that names the log and the error lines when it fails."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from qnnflow import toolchain
from qnnflow.errors import FlowError

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


def run_tool(
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
        detail = error_lines(log)
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


def error_lines(log: Path, limit: int = 6) -> str:
    if not log.is_file():
        return "(no log)"
    lines = log.read_text(errors="replace").splitlines()
    errors = [ln.strip() for ln in lines if "ERROR" in ln or "Error" in ln]
    return "; ".join((errors or lines[-limit:])[:limit])
