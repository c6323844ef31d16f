"""The import rule of the layers (docs/ARCHITECTURE.md): each folder is one layer and imports point
only down,

    base modules of qnnflow/  <-  hw/  <-  flows/  <-  sim/, models/  <-  build, CLI, host, bench

and compiling a QONNX model does not load PyTorch. Read from the sources' import statements (every
one, also those inside functions), so a new upward or sideways import fails here, naming the file
and line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# modules of qnnflow/ below every folder: configuration, errors, tools, provenance, the link protocol
BASE = ("__init__", "config", "errors", "toolchain", "sysdeps", "stamps", "link")
# modules of qnnflow/ above every folder: they join the stages
TOP = ("__main__", "build", "cli", "cli_args", "host", "hwmap", "bench", "explore")
# layer -> the layers it may import (itself included)
ALLOWED = {
    "base": {"base"},
    "hw": {"base", "hw"},
    "flows": {"base", "hw", "flows"},
    "sim": {"base", "hw", "flows", "sim"},
    "models": {"base", "hw", "flows", "models"},
    "top": {"base", "hw", "flows", "sim", "models", "top"},
}
FOLDERS = {"hw": "hw", "flows": "flows", "sim": "sim", "models": "models"}


def _layer_of_module(name: str) -> str | None:
    """The layer of an imported ``qnnflow...`` module name (None for names outside the package)."""
    parts = name.split(".")
    if parts[0] != "qnnflow":
        return None
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    if parts[1] in TOP:
        return "top"
    if parts[1] in FOLDERS:
        return parts[1]
    raise AssertionError(f"{name}: a module of no layer; add it to BASE or TOP in this test, or to a folder")


def _layer_of_file(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "qnnflow":
        name = rel.parts[1].removesuffix(".py")
        return "base" if name in BASE else "top" if name in TOP else _layer_of_module(f"qnnflow.{name}")
    return FOLDERS[rel.parts[0]]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``qnnflow`` module a file imports, with the line; ``from qnnflow import x`` names x."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "qnnflow":
                found += [(node.lineno, f"qnnflow.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "qnnflow"]


def _sources() -> list[Path]:
    files = sorted((ROOT / "qnnflow").rglob("*.py"))
    for folder in FOLDERS.values():
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _module_layer(name: str) -> str:
    """The layer of an imported name; ``qnnflow.X`` where X is no module or folder (a name the
    package's ``__init__`` exports, such as FlowError) is base."""
    parts = name.split(".")
    is_module = (ROOT / "qnnflow" / f"{parts[-1]}.py").exists() or (ROOT / "qnnflow" / parts[-1]).is_dir()
    if len(parts) == 2 and parts[1] not in FOLDERS and not is_module:
        return "base"
    return _layer_of_module(name)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_only_down(layer):
    bad = []
    for path in _sources():
        if _layer_of_file(path) != layer:
            continue
        for line, name in _imports(path):
            target = _module_layer(name)
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({layer}) imports {name} ({target})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


# inside flows/: the IR at the bottom; passes and code generation on it; the compile stage over
# both (it checks every layer against its RTL backend); implementation over code generation
FLOWS_ALLOWED = {
    "ir": {"ir"},
    "passes": {"ir", "passes"},
    "codegen": {"ir", "codegen"},
    "compile": {"ir", "passes", "codegen", "compile"},
    "implement": {"ir", "codegen", "implement"},
}


def test_flows_subpackages_import_only_down():
    folders = sorted(p.name for p in (ROOT / "flows").iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(FLOWS_ALLOWED), "a flows/ sub-package without a place in FLOWS_ALLOWED"
    loose = sorted(p.name for p in (ROOT / "flows").glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules of flows/ outside its sub-packages: {loose}"
    bad = []
    for sub, allowed in FLOWS_ALLOWED.items():
        for path in sorted((ROOT / "flows" / sub).rglob("*.py")):
            for line, name in _imports(path):
                parts = name.split(".")
                if parts[:2] == ["qnnflow", "flows"] and len(parts) > 2 and parts[2] not in allowed:
                    bad.append(f"{path.relative_to(ROOT)}:{line} ({sub}) imports {name}")
    assert not bad, "imports against the layering inside flows/:\n" + "\n".join(bad)


def test_every_source_file_has_a_layer():
    layers = {path.relative_to(ROOT).as_posix(): _layer_of_file(path) for path in _sources()}
    assert layers["qnnflow/link.py"] == "base" and layers["qnnflow/bench/fuzz.py"] == "top"
    assert layers["flows/compile/driver.py"] == "flows" and layers["sim/stitch.py"] == "sim"


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an import of sim/ from flows/ is caught (guards against a checker that
    passes everything, e.g. by reading no file)."""
    assert len(_sources()) > 80
    assert _module_layer("qnnflow.sim.stitch") not in ALLOWED["flows"]
    assert _module_layer("qnnflow.models.export") not in ALLOWED["sim"]
    assert _module_layer("qnnflow.host") not in ALLOWED["flows"]
    assert _module_layer("qnnflow.FlowError") == "base"
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from qnnflow.sim import stitch\n    import qnnflow.models.zoo\n")
    assert [name for _, name in _imports(probe)] == ["qnnflow.sim", "qnnflow.models.zoo"]


def test_compiling_does_not_load_torch():
    code = (
        "import sys, qnnflow.flows.compile.driver, qnnflow.flows.codegen, qnnflow.flows.compile.verify, "
        "qnnflow.flows.ir.execute, qnnflow.flows.implement; "
        "print(sorted(m for m in ('torch', 'brevitas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
