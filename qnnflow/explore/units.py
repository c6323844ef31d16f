"""The work of a sweep, in cached units: train, compile, sim (stitched simulation), implement.

A unit lives in ``<sweep>/units/<kind>/<key>/`` and is done when its ``record.json`` exists (written
last, atomically). ``key`` is a content hash of everything the unit's result depends on: its
settings, the digests of the files it reads (the trained model, the generated RTL), the package
version and the digest of the package code it runs. Points that share a unit share its work, a
rerun of a sweep finds finished units on disk, and a unit that was killed half-way (no record) is
started again from an empty folder.

Errors that are results -- a folding target the model cannot reach, a design that does not fit the
part -- are recorded like any result (``record["error"]``) and not retried. A hardware decision that
differs from the software's, or a bug, is not a result: it raises, and the point is reported failed
(and retried on the next run).

Each unit's output (the stages' progress, tool logs) goes to its ``log.txt``, not to the sweep's
terminal.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from qnnflow import __version__, stamps
from qnnflow.config import Board, BuildConfig, Calibration, TrainMethod
from qnnflow.errors import FlowError, MismatchError, raised_by_qnnflow
from qnnflow.explore.space import Point

KINDS = ("train", "compile", "sim", "implement")
COMPUTED_LOG = "computed.log"  # one line per unit computed (not reused): "<kind> <key> <node>"
_TRAIN_FILES = ("model.onnx", "model.pt", "float_model.pt", "test_inputs.npy", "test_labels.npy", "metrics.json")


def content_key(kind: str, inputs: dict) -> str:
    """The unit's key: the hash of its inputs (canonical JSON) with the package version and this
    module's code (what each unit computes besides the stages it calls, e.g. the boundary metrics)."""
    own = stamps.digest_path(Path(__file__))
    blob = json.dumps({"kind": kind, "version": __version__, "units": own, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@functools.cache
def _source(*layers: str) -> str:
    """The package code's digest (stamps.source_digest), read once per process: a sweep keys every
    unit with it, and the code does not change under a running process."""
    return stamps.source_digest(*layers)


def node_id() -> str:
    """The Ray node this process runs on ("local" outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:  # pragma: no cover - ray is a dependency
        pass
    return "local"


@contextlib.contextmanager
def _captured(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (also those of child processes) to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_unit(root: Path, kind: str, inputs: dict, work: Callable[[Path], dict], folder: Path | None = None) -> dict:
    """The record of unit ``kind`` with ``inputs``: read from disk when it was done before, else made by
    ``work(folder)`` (which returns the metrics). ``folder``: where ``work`` runs when that is another
    unit's folder (sim runs in its compile unit's folder, on the RTL there)."""
    key = content_key(kind, inputs)
    own = Path(root) / "units" / kind / key
    rec_path = own / "record.json"
    if rec_path.is_file():
        return {**json.loads(rec_path.read_text()), "cached": True}
    if own.exists():  # a killed run's leftovers
        shutil.rmtree(own)
    own.mkdir(parents=True)
    (own / "running.json").write_text(json.dumps({"pid": os.getpid(), "node": node_id()}))
    start = time.perf_counter()
    error = None
    with _captured(own / "log.txt"):
        try:
            metrics = work(folder or own)
        except MismatchError:
            raise  # hardware != software: never a result to keep
        except (FlowError, ValueError) as err:  # a result: the design cannot be made as asked
            if not isinstance(err, FlowError) and not raised_by_qnnflow(err):
                raise  # a ValueError from deep inside a library or Python is a bug, not a result to keep
            metrics, error = {}, f"{type(err).__name__}: {err}"
    rec = {
        "kind": kind, "key": key, "inputs": inputs, "metrics": metrics, "error": error,
        "folder": str(folder or own), "seconds": round(time.perf_counter() - start, 2),
        "node": node_id(), "host": socket.gethostname(),
    }  # fmt: skip
    tmp = own / "record.tmp"
    tmp.write_text(json.dumps(rec, indent=1, default=str))
    os.replace(tmp, rec_path)
    with open(Path(root) / "units" / COMPUTED_LOG, "a") as f:
        f.write(f"{kind} {key} {rec['node']}\n")
    (own / "running.json").unlink()
    return {**rec, "cached": False}


def _not_run(kind: str, upstream: dict) -> dict:
    """The record of a unit that cannot run because the unit it reads ended in an error (not cached)."""
    return {"kind": kind, "key": None, "inputs": {}, "metrics": {}, "cached": False, "seconds": 0.0,
            "error": f"not run: the {upstream['kind']} unit failed ({upstream['error']})", "node": None}  # fmt: skip


# -- the four kinds -------------------------------------------------------------------------------
def build_config(point: dict, settings: dict) -> BuildConfig:
    """The build configuration of a point's training (and the folding it is compiled for)."""
    method = point["method"]
    return BuildConfig(
        name="explore",
        preset=Point(**point).preset,
        layer_bits=Point(**point).layer_bits,
        dataset=settings.get("dataset"),
        seed=point["seed"],
        epochs=settings.get("epochs"),
        board=Board(point["board"]),
        clock_mhz=point["clock_mhz"],
        method=TrainMethod.STE if method == "calibrated" else TrainMethod(method),
        calibrate=Calibration.BOUNDARY if method == "calibrated" else Calibration.NONE,
        hw_map_grid=0,
        cal_max_bits=settings.get("cal_max_bits", 8),
        cal_min_bits=settings.get("cal_min_bits", 2),
        cal_mixed=settings.get("cal_mixed", True),
    )


def train_inputs(point: dict, settings: dict) -> dict:
    """What a trained model depends on (the key of its train unit)."""
    return {
        "preset": Point(**point).preset, "layer_bits": Point(**point).layer_bits, "method": point["method"],
        "seed": point["seed"],
        "dataset": settings.get("dataset"), "epochs": settings.get("epochs"),
        "source": _source("models", "flows") + stamps.digest_path(Path(__file__).parents[1] / "config.py"),
        "libraries": _versions("torch", "brevitas", "scikit-learn", "mlxtend"),  # training, the data sets
        # calibration prices candidates against the board's capacity (models/calibrate.py)
        "board": point["board"] if point["method"] == "calibrated" else None,
        "calibration": [settings.get(k) for k in ("cal_max_bits", "cal_min_bits", "cal_mixed")]
        if point["method"] == "calibrated" else None,
    }  # fmt: skip


def _versions(*dists: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            out[d] = None
    return out


def train(root: Path, point: dict, settings: dict, threads: int = 1) -> dict:
    def work(folder: Path) -> dict:
        import torch

        from qnnflow.build import stage_calibrate, stage_train

        torch.set_num_threads(threads)  # the CPUs Ray gave this task; also what makes training repeatable
        cfg = build_config(point, settings)
        cfg.write(folder)
        stage_train(cfg, folder)
        metrics = json.loads((folder / "metrics.json").read_text())
        out = {
            "test_accuracy": metrics["test_accuracy"],
            "float_test_accuracy": metrics.get("float_test_accuracy"),
            "train_seconds": metrics.get("train_seconds"),
        }
        deployed = folder / "model.onnx"
        if cfg.calibrate is Calibration.BOUNDARY:
            stage_calibrate(cfg, folder)
            rec = json.loads((folder / "calibration" / "calibration.json").read_text())
            out["test_accuracy"] = rec["choice"]["test"]["accuracy"]
            out["deployed"] = rec["choice"]["name"]
            deployed = folder / "calibration" / "model.onnx"
        out.update(boundary_metrics(folder, cfg))
        out["onnx"] = str(deployed)
        out["onnx_digest"] = stamps.digest_path(deployed)
        out["test_digest"] = stamps.digest_path(folder / "test_inputs.npy")
        return out

    return run_unit(root, "train", train_inputs(point, settings), work)


def boundary_metrics(folder: Path, cfg: BuildConfig, grid: int = 64) -> dict:
    """The deployed model against its float twin: test-set label flips (the deployed model's decisions
    as QONNX executes its export -- what the hardware must equal -- against the twin's) and the PCA
    slice's boundary Jaccard distance (qnnflow.models.boundary_metrics, both in PyTorch)."""
    import numpy as np

    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
    from qnnflow.models.boundary_metrics import pca_slice, predict_logits, slice_comparison, slice_labels
    from qnnflow.models.train import load_checkpoint

    calibrated = cfg.calibrate is Calibration.BOUNDARY
    deployed = folder / "calibration" if calibrated else folder
    fpath = folder / "float_model.pt"
    if not fpath.is_file():
        return {}
    ref = load_checkpoint(fpath)
    x = np.load(folder / "test_inputs.npy")
    quantized = decisions(run_qonnx(load_qonnx(deployed / "model.onnx"), x))
    flips = int((quantized != predict_logits(ref, x).argmax(1)).sum())
    s = pca_slice(x, grid)
    cmp = slice_comparison(slice_labels(ref, s), slice_labels(load_checkpoint(deployed / "model.pt"), s), radius=1)
    return {"flips": flips, "flip_rate": flips / len(x), "jaccard": cmp["slice_jaccard_distance"]}


def compile_(root: Path, trained: dict, settings: dict, fold: dict) -> dict:
    """Compile the trained model for ``fold`` ({"cycles": N} or {"lut_budget": N}, see
    :meth:`Point.fold`) by the space's folding rule: the dataflow graph, folding, estimates."""
    if trained.get("error"):
        return _not_run("compile", trained)
    tm = trained["metrics"]
    rule = settings.get("folding_rule", "balanced")
    inputs = {
        "onnx": tm["onnx_digest"], "test": tm["test_digest"], "fold": fold,
        "rule": rule if "cycles" in fold else "budget", "source": _source("flows", "hw"),
    }  # fmt: skip

    def work(folder: Path) -> dict:
        import numpy as np

        from qnnflow.flows.compile.driver import compile_model
        from qnnflow.flows.compile.steps import CompileOptions

        src = Path(trained["folder"])
        for name in _TRAIN_FILES:
            _link(src / name, folder / name)
        _link(Path(tm["onnx"]), folder / "model.onnx", replace=True)  # the deployed model (calibrated or not)
        opts = CompileOptions(
            target_cycles=fold.get("cycles"), lut_budget=fold.get("lut_budget"), clock_mhz=100.0, family="ecp5",
            minimize_luts=rule == "search" and "cycles" in fold,
        )  # fmt: skip
        res = compile_model(folder / "model.onnx", folder, inputs=folder / "test_inputs.npy", opts=opts,
                            labels=np.load(folder / "test_labels.npy"), reuse=True)  # fmt: skip
        est = json.loads((folder / "estimates.json").read_text())
        return {"estimates": _estimate_totals(est), "ii_estimated": _ii(est), "compiled_accuracy": res.accuracy}

    return run_unit(root, "compile", inputs, work)


def _link(src: Path, dst: Path, replace: bool = False) -> None:
    if not src.exists():
        return
    if replace and dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _ii(est: dict) -> int | None:
    return est.get("ii_cycles", est.get("network", {}).get("ii_cycles"))


def _estimate_totals(est: dict) -> dict:
    """The network's estimated totals per family, as numbers."""
    totals = est.get("totals") or est.get("network", {}).get("totals") or {}
    return {fam: {k: int(v) for k, v in t.items()} for fam, t in totals.items()} if totals else {}


def sim(root: Path, compiled: dict, frames: int = 0) -> dict:
    """Simulate the compiled design (Verilator, the whole test set or ``frames``): 0 mismatches or raise."""
    if compiled.get("error"):
        return _not_run("sim", compiled)
    inputs = {"compile": compiled["key"], "frames": frames, "source": _source("flows", "sim", "hw")}

    def work(folder: Path) -> dict:
        from qnnflow.config import SimMode
        from qnnflow.sim.stitch import simulate

        r = simulate(folder, mode=SimMode.BATCH, frames=frames or None, reuse=True)
        if r["mismatches"]:
            raise MismatchError(
                f"{r['mismatches']} of {r['frames']} frames differ between the hardware and the dataflow graph "
                f"in {folder}"
            )
        return {
            "frames": r["frames"], "mismatches": r["mismatches"], "hw_accuracy": r["hw_accuracy"],
            "cycles_measured": r["cycles_per_frame_measured"], "cycles_estimated": r["cycles_per_frame_estimated"],
            "rtl_digest": stamps.rtl_digest(folder),
        }  # fmt: skip

    return run_unit(root, "sim", inputs, work, folder=Path(compiled["folder"]))


def implement(root: Path, simulated: dict, compiled: dict, board: str, clock_mhz: float, seed: int) -> dict:
    """Synthesis, place and route (and packing when the clock is met) of the simulated RTL on ``board``."""
    if simulated.get("error"):
        return _not_run("implement", simulated)
    from qnnflow.flows.implement.boards import board_spec

    spec = board_spec(board)
    inputs = {
        "rtl": simulated["metrics"]["rtl_digest"], "board": board, "clock_mhz": clock_mhz, "seed": seed,
        "source": _source("flows", "hw"),
    }  # fmt: skip

    def work(folder: Path) -> dict:
        from qnnflow.flows.implement.design import accelerator_design
        from qnnflow.flows.implement.pnr import implement as place_and_route

        design = accelerator_design(Path(compiled["folder"]))
        r = place_and_route(folder, board, clock_mhz, design=design, name="accelerator", seed=seed,
                            require_timing=False)  # fmt: skip
        fmax = r.fmax.get(min(r.fmax, key=lambda k: r.fmax[k].get("achieved", 0)), {}) if r.fmax else {}
        return {"family": spec.family, "utilization": r.utilization, "fmax_mhz": fmax.get("achieved"),
                "clock_mhz": r.clock_mhz, "timing_met": r.timing_met, "bitstream": r.bitstream,
                "cells": r.yosys_cells}  # fmt: skip

    return run_unit(root, "implement", inputs, work)
