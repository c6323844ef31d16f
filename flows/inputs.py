"""Arrays a user gives the flow (test inputs, labels): loaded with clear errors, checked against the model.

:func:`load_npy` reads one ``.npy`` file and says which file is wrong and why; :func:`input_grid`
finds the grid the model quantizes its input to (the first ``Quant`` / ``BipolarQuant`` on the graph
input, or an integer datatype annotation); :func:`range_warning` says when inputs lie outside it,
which usually means they are scaled differently from what the model was trained on (raw 0..16
pixels where it expects 0..1): the quantizer would clip them silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper


def load_npy(path: Path | str, what: str) -> np.ndarray:
    """One array from a ``.npy`` file; FileNotFoundError / ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} not found")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and magic[:2] != b"PK":
        raise ValueError(f"{what} file {path} is not a .npy array: it does not start as numpy.save writes one")
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{what} file {path} is not a .npy array (numpy.save format): {err}") from None
    if not isinstance(value, np.ndarray):  # an .npz archive
        raise ValueError(f"{what} file {path} holds several arrays (.npz); give one array saved with numpy.save")
    return value


@dataclass(frozen=True)
class InputGrid:
    """Inputs are quantized to ``scale * (k - zero_point)`` for integer ``k`` in ``lo..hi``."""

    lo: int
    hi: int
    scale: float
    zero_point: float
    what: str  # how the model says so, for messages
    exact: bool = False  # a datatype annotation: inputs must lie on the grid (a quantizer would round them)

    def snap(self, x: np.ndarray) -> np.ndarray:
        """``x`` rounded to the nearest grid point and clipped to the range."""
        k = np.clip(np.round(np.asarray(x, dtype=np.float64) / self.scale + self.zero_point), self.lo, self.hi)
        return (self.scale * (k - self.zero_point)).astype(np.float32)

    @property
    def value_range(self) -> tuple[float, float]:
        return self.scale * (self.lo - self.zero_point), self.scale * (self.hi - self.zero_point)


def input_grid(model: ModelWrapper) -> InputGrid | None:
    """The grid of the graph input, when the model states one with a per-tensor quantizer or datatype."""
    from qonnx.custom_op.general.quant import max_int, min_int

    name = model.graph.input[0].name
    for node in model.find_consumers(name) or []:
        if node.op_type == "BipolarQuant":
            scale = model.get_initializer(node.input[1])
            if scale is not None and np.size(scale) == 1:
                return InputGrid(-1, 1, float(scale), 0.0, f"{node.name} (BipolarQuant)")
        if node.op_type == "Quant" and node.input[0] == name:
            consts = [model.get_initializer(t) for t in node.input[1:4]]
            if any(c is None or np.size(c) != 1 for c in consts):
                continue
            scale, zero_point, bits = (float(np.asarray(c).reshape(())) for c in consts)
            attrs = {a.name: a.i for a in node.attribute}
            signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
            lo, hi = int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits))
            kind = f"{int(bits)}-bit {'signed' if signed else 'unsigned'}, scale {scale:g}"
            return InputGrid(lo, hi, scale, zero_point, f"{node.name} (Quant: {kind})")
    dt = model.get_tensor_datatype(name)
    if dt is not None and dt.is_integer():
        return InputGrid(int(dt.min()), int(dt.max()), 1.0, 0.0, f"its {dt.name} annotation", exact=True)
    return None


def range_warning(x: np.ndarray, model: ModelWrapper, source: str) -> str | None:
    """A one-line warning when ``x`` lies outside the model's input grid by more than half a step."""
    grid = input_grid(model)
    if grid is None or x.size == 0:
        return None
    lo, hi = grid.value_range
    lo, hi = min(lo, hi), max(lo, hi)
    half = abs(grid.scale) / 2
    found_lo, found_hi = float(np.min(x)), float(np.max(x))
    if found_lo >= lo - half and found_hi <= hi + half:
        return None
    return (
        f"{source}: values span [{found_lo:g}, {found_hi:g}], but the model quantizes its input to "
        f"[{lo:g}, {hi:g}] ({grid.what}); values outside are clipped: are the inputs scaled as the model expects?"
    )


def check_on_grid(x: np.ndarray, model: ModelWrapper, source: str) -> None:
    """ValueError naming the first value off the grid, for a model whose input takes only grid values."""
    grid = input_grid(model)
    if grid is None or not grid.exact or x.size == 0:
        return
    off = np.flatnonzero(grid.snap(x).ravel() != np.asarray(x, dtype=np.float32).ravel())
    if len(off):
        index = np.unravel_index(off[0], x.shape)
        lo, hi = grid.value_range
        raise ValueError(
            f"{source}: value {x[index]:g} at index {tuple(int(i) for i in index)} is not on the model's input grid "
            f"(integers {lo:g}..{hi:g}, {grid.what}); {len(off)} of {x.size} values are off it"
        )
