"""The RTL library: one SystemVerilog module per file, and board constraint files (package data).

Find files with :func:`rtl_path` / :func:`rtl_dir`; never through environment variables.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def rtl_dir() -> Path:
    """The folder holding the ``.sv`` modules (a real folder for editable and wheel installs)."""
    return Path(str(resources.files(__name__)))


def rtl_path(module: str) -> Path:
    """The file of one RTL module, e.g. ``rtl_path("mvau")``; ValueError naming the known ones if absent."""
    path = rtl_dir() / f"{module}.sv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in rtl_dir().glob("*.sv"))) or "none"
        raise ValueError(f"no RTL module {module!r} in {rtl_dir()}; known modules: {known}")
    return path
