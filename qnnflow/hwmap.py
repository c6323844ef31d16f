"""The hardware's decision map: the boundary study's PCA slice through the stitched accelerator.

The slice is the study's (:func:`qnnflow.models.boundary_metrics.pca_slice` of the build's test
inputs, ``grid`` x ``grid`` cells); every cell's point is snapped to the model's input grid (the
values the accelerator can receive) and goes through the stitched RTL in batch mode. The result:

- against the software model (QONNX execution of the source model on the same snapped points, in
  float64, which is exact for the model's integers; float32 execution rounds a value within its
  noise of a rounding boundary either way, and the cells where it would decide otherwise are
  counted in ``software_float32_differs``): label flips and boundary Jaccard distance, both of
  which must be 0 — any other value is a :class:`~qnnflow.errors.MismatchError` naming the first
  differing cell;
- against the float reference (the build's ``float_model.pt`` on the unsnapped slice, the study's
  reference map): the study's slice metrics (Jaccard distance, flips, junctions) measured on the
  hardware itself;
- ``sim/boundary/map.json``, ``map_labels.npz`` (the three label maps) and ``map.png`` (float
  boundary, hardware boundary, their difference, junctions, the test points).

Optionally a random subsample of the cells also goes through cocotb with random stalls, bit-exact.
This joins ``models/`` (the slice, the float reference) and ``sim/`` (the accelerator), so it lives
at the top of the package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qnnflow.errors import MismatchError

DEFAULT_GRID = 128
RADIUS = 1  # the study's neighbourhood for boundary and junction cells (3x3)


def _labels_of(results: dict, n: int) -> np.ndarray:
    from qnnflow.flows.ir.reference import decisions

    out = np.load(Path(results["results_dir"]) / "outputs.npy")
    if len(out) != n:
        raise MismatchError(f"the accelerator answered {len(out)} of {n} slice points ({results['results_dir']})")
    return decisions(out)


def _first_difference(a: np.ndarray, b: np.ndarray, s, what: str) -> str:
    r, c = (int(v) for v in np.argwhere(a != b)[0])
    return (
        f"{int((a != b).sum())} of {a.size} slice cells decided differently by the hardware and {what}; first at "
        f"cell (row {r}, column {c}) = (PC1 {s.u[c]:.4g}, PC2 {s.v[r]:.4g}): {what} {int(a[r, c])}, "
        f"hardware {int(b[r, c])}"
    )


def hardware_map(
    build: Path | str,
    grid: int = DEFAULT_GRID,
    *,
    stall_sample: int = 0,
    seed: int = 0,
    reuse: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """The hardware decision map of ``build`` on the ``grid`` x ``grid`` PCA slice of its test inputs
    (see the module docstring). ``stall_sample``: that many random cells also through cocotb with
    random stalls. Raises :class:`MismatchError` when a cell differs from the software model.
    ``reuse``: return the recorded map at once when nothing it depends on changed."""
    from qnnflow import stamps
    from qnnflow.flows.compile.importer import load_model as load_source
    from qnnflow.flows.ir.inputs import input_grid
    from qnnflow.flows.ir.reference import decisions, run_qonnx, run_qonnx_double
    from qnnflow.models.boundary_metrics import pca_slice, slice_comparison, slice_labels
    from qnnflow.models.boundary_plots import plot_slice_comparison
    from qnnflow.sim.stitch import simulate, source_model

    build = Path(build)
    if grid < 3:
        raise ValueError(f"the decision map needs at least 3 cells per side, not {grid}")
    out = build / "sim" / "boundary"
    float_path = build / "float_model.pt"
    provenance = {
        **stamps.sim_inputs(build), "grid": grid, "stall_sample": stall_sample, "seed": seed,
        "float_model": stamps.digest_path(float_path) if float_path.is_file() else None,
        "code": stamps.source_digest("models"),  # sim_inputs covers the rest
    }  # fmt: skip
    if reuse and stamps.is_current(build, "boundary", provenance, key="map") and (out / "map.json").is_file():
        log(f"[map] {build}: the hardware decision map is up to date; reusing it")
        return json.loads((out / "map.json").read_text())
    stamps.remove_stamp(build, "boundary", key="map")
    for name in ("map.json", "map_labels.npz", "map.png"):  # no earlier map may look like this run's
        (out / name).unlink(missing_ok=True)
    x_test = np.load(build / "test_inputs.npy")
    s = pca_slice(x_test, grid)
    src_path = source_model(build)
    src = load_source(src_path)
    points = s.points()
    g = input_grid(src)
    snapped = g.snap(points) if g is not None else points
    n = len(snapped)
    start = time.perf_counter()
    log(f"[map] {grid} x {grid} slice cells: software ({src_path.name}, QONNX in float64) ...")
    # float64: exact for every integer the model computes (float32 execution rounds a value that lies
    # within its noise of a rounding boundary either way; such cells are counted, not trusted)
    sw = decisions(run_qonnx_double(src, snapped, batch_size=512)).reshape(grid, grid)
    sw32 = decisions(run_qonnx(src, snapped, batch_size=512)).reshape(grid, grid)
    log(f"[map] {n} slice cells through the stitched accelerator (batch mode) ...")
    hw_run = simulate(build, inputs=snapped, log=log)
    hw = _labels_of(hw_run, n).reshape(grid, grid)
    vs_sw = slice_comparison(sw, hw, RADIUS)
    if vs_sw["slice_flip_cells"] or vs_sw["slice_jaccard_distance"]:
        raise MismatchError(_first_difference(sw, hw, s, "the software model"))
    result: dict = {
        "grid": grid,
        "cells": n,
        "slice": s.params(),
        "snapped_to": g.what if g is not None else None,
        "software_model": str(src_path),
        "software_float32_differs": int((sw32 != sw).sum()),  # cells where float32 QONNX rounds otherwise
        "hw_vs_software": vs_sw,
        "hw_run": hw_run["results_dir"],
        "sim_cycles_per_frame": hw_run.get("cycles_per_frame_measured"),
    }
    ref = None
    if float_path.is_file():
        from qnnflow.models.train import load_checkpoint

        ref = slice_labels(load_checkpoint(float_path), s)
        result["hw_vs_float"] = slice_comparison(ref, hw, RADIUS)
        result["software_vs_float"] = slice_comparison(ref, sw, RADIUS)
    else:
        result["hw_vs_float"] = None
        result["float_reference"] = f"no {float_path.name} in the build (a model from another tool): no float map"
    if stall_sample:
        result["stalled_subsample"] = _stalled_subsample(build, snapped, sw.ravel(), stall_sample, seed, log)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "map_labels.npz", hardware=hw, software=sw, **({"float": ref} if ref is not None else {}))
    if ref is not None:
        h = result["hw_vs_float"]
        plot_slice_comparison(
            s, ref, hw, RADIUS, out / "map.png",
            f"hardware (stitched RTL, {n} cells): Jaccard {h['slice_jaccard_distance']:.3f}, "
            f"{h['slice_flip_cells']} cells flipped against the float reference",
            points=x_test, n_classes=int(max(ref.max(), hw.max())) + 1,
        )  # fmt: skip
        result["plot"] = str(out / "map.png")
    result["seconds"] = round(time.perf_counter() - start, 1)
    (out / "map.json").write_text(json.dumps(result, indent=1) + "\n")
    stamps.write_stamp(build, "boundary", provenance, key="map")
    log(f"[map] {summary(result)}")
    return result


def _stalled_subsample(build: Path, points: np.ndarray, sw: np.ndarray, k: int, seed: int, log) -> dict:
    """``k`` random cells through cocotb with random input idles and output backpressure."""
    from qnnflow.config import SimMode
    from qnnflow.sim.stitch import simulate

    idx = np.sort(np.random.default_rng(seed).choice(len(points), size=min(k, len(points)), replace=False))
    log(f"[map] {len(idx)} random cells through cocotb with random stalls ...")
    r = simulate(build, inputs=points[idx], mode=SimMode.COCOTB, seed=seed + 1, log=log)
    hw = _labels_of(r, len(idx))
    bad = np.flatnonzero(hw != sw[idx])
    if len(bad):
        raise MismatchError(
            f"{len(bad)} of {len(idx)} slice cells decided differently under random stalls (cocotb); first: cell "
            f"{int(idx[bad[0]])}, software {int(sw[idx[bad[0]]])}, hardware {int(hw[bad[0]])}"
        )
    return {"cells": len(idx), "mismatches": 0, "traffic": r.get("traffic"), "seed": seed + 1}


def summary(result: dict) -> str:
    """One line: the map's size, its agreement with software (computed), and the float comparison."""
    sw = result["hw_vs_software"]
    line = (
        f"hardware decision map {result['grid']} x {result['grid']}: {sw['slice_flip_cells']} flips and boundary "
        f"Jaccard distance {sw['slice_jaccard_distance']:g} against the software model"
    )
    fl = result.get("hw_vs_float")
    if fl:
        line += (
            f"; against the float reference: Jaccard {fl['slice_jaccard_distance']:.3f}, "
            f"{fl['slice_flip_cells']} flipped cells, junction cells {fl['junction_cells']} "
            f"(float {fl['junction_cells_ref']})"
        )
    st = result.get("stalled_subsample")
    if st:
        line += f"; {st['cells']} cells under random stalls, {st['mismatches']} mismatches"
    return line
