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


GRID_NOTE = "qnnflow: the input grid declared with --input-grid"  # doc_string of the inserted Quant
GRID_HELP = (
    "'pixels' (k/255, k = 0..255), 'uint8' (raw integers 0..255; likewise int8, uint4, ...), or "
    "'bits=B,signed=0|1,scale=S' (S a number or a fraction such as 1/128)"
)


def parse_grid_spec(spec: str) -> tuple[int, bool, float]:
    """``--input-grid`` -> (bits, signed, scale); ValueError saying what is accepted otherwise."""
    import re

    text = spec.strip().lower()
    if text == "pixels":
        return 8, False, 1 / 255
    m = re.fullmatch(r"(u?)int(\d+)", text)
    if m:
        bits, signed = int(m.group(2)), not m.group(1)
    else:
        fields = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("bits", "signed", "scale"):
                raise ValueError(f"--input-grid {spec!r}: expected {GRID_HELP}")
            fields[key.strip()] = value.strip()
        if "bits" not in fields:
            raise ValueError(f"--input-grid {spec!r}: bits=B is required; expected {GRID_HELP}")
        try:
            bits = int(fields["bits"])
            signed = {"0": False, "1": True}[fields.get("signed", "0")]
            num, _, den = fields.get("scale", "1").partition("/")
            scale = float(num) / (float(den) if den else 1.0)
        except (KeyError, ValueError, ZeroDivisionError):
            raise ValueError(f"--input-grid {spec!r}: expected {GRID_HELP}") from None
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"--input-grid {spec!r}: the scale must be positive, found {scale:g}")
        if not 1 <= bits <= 16:
            raise ValueError(f"--input-grid {spec!r}: bits must be in 1..16, found {bits}")
        return bits, signed, scale
    if not 1 <= bits <= 16:
        raise ValueError(f"--input-grid {spec!r}: bits must be in 1..16, found {bits}")
    return bits, signed, 1.0


def declare_input_grid(model: ModelWrapper, spec: str) -> ModelWrapper:
    """A model whose float graph input has no quantizer, with the fixed-point grid ``spec``
    (:func:`parse_grid_spec`) declared: an integer datatype annotation for integers (scale 1),
    else a Quant on the input (round to nearest, clipped to the range). Either way inputs must lie
    on the grid (:func:`check_on_grid`), so the model computes on them what the original does."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType

    bits, signed, scale = parse_grid_spec(spec)
    existing = input_grid(model)
    if existing is not None:
        raise ValueError(
            f"--input-grid {spec!r}: the model already quantizes its input ({existing.what}); the option is "
            "for models whose float input has no quantizer"
        )
    name = model.graph.input[0].name
    if scale == 1.0:
        model.set_tensor_datatype(name, DataType[f"{'INT' if signed else 'UINT'}{bits}"])
        return model
    from qnnflow.flows.ir.graph import QONNX_DOMAIN

    new = f"{name}_on_grid"
    for node in model.graph.node:
        for i, inp in enumerate(node.input):
            if inp == name:
                node.input[i] = new
    consts = {"scale": scale, "zero": 0.0, "bits": float(bits)}
    for key, value in consts.items():
        model.graph.initializer.append(helper.make_tensor(f"input_grid_{key}", TensorProto.FLOAT, [], [value]))
    quant = helper.make_node(
        "Quant", [name, *(f"input_grid_{k}" for k in consts)], [new], domain=QONNX_DOMAIN, name="InputGrid",
        signed=int(signed), narrow=0, rounding_mode="ROUND", doc_string=GRID_NOTE,
    )  # fmt: skip
    model.graph.node.insert(0, quant)
    if not any(o.domain == QONNX_DOMAIN for o in model.model.opset_import):
        model.model.opset_import.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    from qonnx.transformation.infer_shapes import InferShapes

    return model.transform(InferShapes())


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
            declared = node.doc_string == GRID_NOTE
            what = f"the grid declared with --input-grid ({kind})" if declared else f"{node.name} (Quant: {kind})"
            return InputGrid(lo, hi, scale, zero_point, what, exact=declared)
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
    if grid.scale == 1.0 and grid.zero_point == 0.0:  # integers: exactly
        off = np.flatnonzero(grid.snap(x).ravel() != np.asarray(x, dtype=np.float32).ravel())
    else:  # a declared scaled grid: k / 255 given in float32 is k to about 1e-7 of a step
        k = np.asarray(x, dtype=np.float64).ravel() / grid.scale + grid.zero_point
        off = np.flatnonzero((np.abs(k - np.round(k)) > 1e-4) | (k < grid.lo - 1e-4) | (k > grid.hi + 1e-4))
    if len(off):
        index = np.unravel_index(off[0], x.shape)
        lo, hi = grid.value_range
        raise ValueError(
            f"{source}: value {x[index]:g} at index {tuple(int(i) for i in index)} is not on the model's input grid "
            f"(integers {lo:g}..{hi:g}, {grid.what}); {len(off)} of {x.size} values are off it"
        )
