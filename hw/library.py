"""Source lists of the RTL library: a module's file plus the files of the modules it instantiates.

The dependencies are read from the sources themselves (an instantiation ``name #(`` or
``name u_x (`` of another library module), so there is no second file list to keep in step.
"""

from __future__ import annotations

import re
from pathlib import Path

from qnnflow.hw import rtl_dir, rtl_path

# `module_name #(` or `module_name instance_name (` at the start of a line
_INSTANCE = re.compile(r"^[ \t]*([A-Za-z_]\w*)\b\s*(?:#\s*\(|[A-Za-z_]\w*\b\s*\()", re.MULTILINE)


# words that can start a line like an instantiation (`else if (`) but are not module names
_KEYWORDS = frozenset(
    "else if for while case casez casex begin end assign always always_ff always_comb always_latch initial "
    "return wire logic reg bit int input output inout module function task localparam parameter genvar "
    "typedef unique priority foreach repeat forever final default endcase endfunction endmodule endtask "
    "generate endgenerate".split()
)


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


def external_dependencies(module: str) -> list[str]:
    """Modules that ``module`` (or a library module it uses) instantiates but the library does not
    hold, such as a design's generated ``accelerator``; such a module cannot be checked alone."""
    known = set(modules())
    missing: set[str] = set()
    for name in [module, *dependencies(module)]:
        text = _strip_comments(rtl_path(name).read_text())
        for used in _INSTANCE.findall(text):
            if used not in known and used not in _KEYWORDS:
                missing.add(used)
    return sorted(missing)


def sources(module: str) -> list[Path]:
    """The files to compile for ``module``: its dependencies first, then the module itself."""
    return [rtl_path(dep) for dep in sorted(dependencies(module))] + [rtl_path(module)]
