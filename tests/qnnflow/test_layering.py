"""The import rule of the layers (the layering issue): ``hw/`` and ``flows/`` (the compiler and code
generation) import neither ``sim/`` nor ``models/``, and compiling a QONNX model does not load PyTorch.
Read from the sources' import statements (every one, also those inside functions), so a new upward
import fails here, naming the file and line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# layer folder -> the qnnflow sub-packages it must not import (they sit above it)
FORBIDDEN = {
    "hw": ("qnnflow.flows", "qnnflow.sim", "qnnflow.models"),
    "flows": ("qnnflow.sim", "qnnflow.models"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_upward_imports(layer):
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for line, name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_compiling_does_not_load_torch():
    code = (
        "import sys, qnnflow.flows.compile, qnnflow.flows.codegen, qnnflow.flows.verify, qnnflow.flows.execute; "
        "print(sorted(m for m in ('torch', 'brevitas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
