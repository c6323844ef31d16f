"""Provenance of a build folder: which inputs each stage's outputs were made from.

Every stage that completes writes ``.stamps/<stage>.json``: a digest of each input it read (files,
option values, the source code of the package layers it ran, tool versions). With it

- a stage whose stamp matches its current inputs can be skipped (``qnnflow build`` reruns nothing
  that is up to date);
- a reader (the report) can tell whether a result still belongs to the files now in the folder;
- a stage that starts removes its own outputs and those of every later stage first
  (:func:`invalidate`), so a failed or interrupted run never leaves an older result looking like
  the outcome of the new command.

Outputs are written into a staging folder and moved into place only on success (:func:`staged`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

STAMPS = ".stamps"
RTL_STAMP = "stamp.json"  # rtl/stamp.json: the digest rtl/ was generated for (sim/stitch.py)

# Each stage's outputs, relative to the build folder, and the stages whose outputs it reads.
# ``invalidate(stage)`` removes the outputs of that stage and of every stage that depends on it,
# transitively (caches such as sim/verilator stay: they are keyed by their own digests).
OUTPUTS: dict[str, tuple[str, ...]] = {
    "train": ("model.pt", "float_model.pt", "model.onnx", "metrics.json", "test_inputs.npy", "test_labels.npy"),
    "calibrate": ("calibration",),  # boundary-aware calibration (models/calibrate.py): what compile reads
    "compile": ("steps", "dataflow.onnx", "folding.json", "estimates.json", "estimates.txt", "verification.json",
                "finn_folding.json"),
    "codegen": ("rtl", "sim/runs"),  # the sim stage's code generation; reused while rtl/stamp.json matches
    "sim": ("sim/results.json", "sim/outputs.npy", "sim/batch"),
    "boundary": ("sim/boundary",),
    "bitstream": ("impl",),
    "report": ("report.json", "report.md"),
}
DEPENDS: dict[str, tuple[str, ...]] = {
    "train": (),
    "calibrate": ("train",),
    "compile": ("train", "calibrate"),
    "codegen": ("compile",),
    "sim": ("codegen",),
    "boundary": ("codegen",),
    "bitstream": ("codegen",),
    "report": ("sim", "bitstream"),
}


def dependents(stage: str) -> list[str]:
    """``stage`` and every stage that reads its outputs, directly or not, in stage order."""
    if stage not in OUTPUTS:
        raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(OUTPUTS)}")
    found = {stage}
    for name in OUTPUTS:  # OUTPUTS is in stage order, so one pass sees every dependency first
        if any(d in found for d in DEPENDS[name]):
            found.add(name)
    return [name for name in OUTPUTS if name in found]


# Source folders of the package, by layer: a stage's stamp covers the layers whose code it runs.
_PACKAGE = Path(__file__).resolve().parent.parent
_SOURCE_SUFFIXES = {".py", ".sv", ".cpp", ".h", ".toml", ".lpf", ".pcf"}


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def digest_array(x: np.ndarray) -> str:
    x = np.ascontiguousarray(x)
    return digest_bytes(f"{x.dtype.str}{x.shape}".encode() + x.tobytes())


def digest_path(path: Path | str) -> str:
    """Digest of a file, or of every file under a folder (names and contents); "missing" if absent."""
    path = Path(path)
    if path.is_file():
        return digest_bytes(path.read_bytes())
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()[:16]
    return "missing"


def source_digest(*layers: str) -> str:
    """Digest of the package's own source in the given layer folders (``"flows"``, ``"sim"``, ``"hw"``,
    ``"models"``, ``"qnnflow"``): code generation, the harness and the RTL library change it, so
    outputs made by older code are never reused."""
    h = hashlib.sha256()
    for layer in layers:
        root = _PACKAGE / layer
        if not root.is_dir():
            raise ValueError(f"unknown package layer {layer!r}: no folder {root}")
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(_PACKAGE)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _stamp_path(build: Path, stage: str, key: str | None = None) -> Path:
    """``.stamps/<stage>.json``; ``key`` tells apart runs of one stage with other targets (a board)."""
    if stage not in OUTPUTS:
        raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(OUTPUTS)}")
    return Path(build) / STAMPS / (f"{stage}.{key}.json" if key else f"{stage}.json")


def _normal(inputs: Mapping[str, object]) -> dict:
    """Inputs as JSON values (paths and enums as strings), so that a stamp read back compares equal."""
    return json.loads(json.dumps(dict(inputs), sort_keys=True, default=str))


def write_stamp(build: Path | str, stage: str, inputs: Mapping[str, object], key: str | None = None) -> None:
    path = _stamp_path(Path(build), stage, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": stage, "inputs": _normal(inputs)}, indent=1, sort_keys=True) + "\n")


def read_stamp(build: Path | str, stage: str, key: str | None = None) -> dict | None:
    path = _stamp_path(Path(build), stage, key)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["inputs"]
    except (ValueError, KeyError):
        return None


def remove_stamp(build: Path | str, stage: str, key: str | None = None) -> None:
    _stamp_path(Path(build), stage, key).unlink(missing_ok=True)


def is_current(build: Path | str, stage: str, inputs: Mapping[str, object], key: str | None = None) -> bool:
    """True when ``stage`` completed on exactly these inputs (its stamp matches them)."""
    stamp = read_stamp(build, stage, key)
    return stamp is not None and stamp == _normal(inputs)


def invalidate(build: Path | str, stage: str) -> None:
    """Remove the outputs and stamps of ``stage`` and of every stage that depends on it."""
    build = Path(build)
    stamp_dir = build / STAMPS
    for name in dependents(stage):
        if stamp_dir.is_dir():
            for p in stamp_dir.glob(f"{name}.*json"):
                p.unlink()
        for rel in OUTPUTS[name]:
            _remove(build / rel)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def staged(build: Path | str, stage: str) -> Iterator[Path]:
    """A fresh staging folder for ``stage``'s outputs. On success the caller's files in it are moved
    into the build folder by :func:`commit`; on any exception the staging folder is removed."""
    tmp = Path(build) / f".{stage}.partial"
    _remove(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        _remove(tmp)


def commit(staging: Path, build: Path | str) -> None:
    """Move everything in ``staging`` into ``build`` (replacing what is there)."""
    build = Path(build)
    for item in sorted(staging.iterdir()):
        dest = build / item.name
        _remove(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        item.rename(dest)


def rtl_digest(build: Path | str) -> str | None:
    """The digest that ``<build>/rtl/`` was generated for, or None when rtl/ is missing or incomplete."""
    stamp = Path(build) / "rtl" / RTL_STAMP
    return json.loads(stamp.read_text()).get("digest") if stamp.is_file() else None


def sim_inputs(build: Path | str) -> dict:
    """The inputs of the build's simulation record, ``sim/results.json`` (compared by the sim stage
    to reuse it and by the report to trust it)."""
    build = Path(build)
    return {
        "dataflow": digest_path(build / "dataflow.onnx"),
        "rtl": rtl_digest(build),
        "inputs": digest_path(build / "test_inputs.npy"),
        "labels": digest_path(build / "test_labels.npy"),
        "source": source_digest("qnnflow", "flows", "sim", "hw"),
        "verilator": _tool_version("verilator"),
    }


def _tool_version(name: str) -> str:
    from qnnflow import toolchain
    from qnnflow.errors import ToolError

    try:
        tool = toolchain.find(name)
    except ToolError:
        return "missing"
    return f"{tool.version} ({tool.origin})"
