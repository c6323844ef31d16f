"""Source lists of the RTL library: a module's file plus the files of the modules it instantiates.

The dependencies are read from the sources themselves (an instantiation ``name #(`` or
``name u_x (`` of another library module), so there is no second file list to keep in step.
"""

from __future__ import annotations

import re
from pathlib import Path

from qnnflow.hw import rtl_dir, rtl_path

# `module_name #(` or `module_name instance_name (` at the start of a line
_INSTANCE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:#\s*\(|[A-Za-z_]\w*\s*\()", re.MULTILINE)


def modules() -> list[str]:
    """Names of every module of the library (one per ``hw/*.sv`` file)."""
    return sorted(p.stem for p in rtl_dir().glob("*.sv"))


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def dependencies(module: str) -> list[str]:
    """Library modules that ``module`` instantiates, directly or not (not including itself)."""
    known = set(modules())
    seen: list[str] = []
    todo = [module]
    while todo:
        name = todo.pop()
        text = _strip_comments(rtl_path(name).read_text())
        for used in _INSTANCE.findall(text):
            if used in known and used != module and used not in seen and used != name:
                seen.append(used)
                todo.append(used)
    return seen


def sources(module: str) -> list[Path]:
    """The files to compile for ``module``: its dependencies first, then the module itself."""
    return [rtl_path(dep) for dep in sorted(dependencies(module))] + [rtl_path(module)]
