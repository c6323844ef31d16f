"""``qnnflow compile``: a QONNX model -> a folded, verified dataflow graph in a build folder.

Writes ``steps/NN_<step>.onnx`` (each step's graph), ``dataflow.onnx`` (the last one),
``folding.json``, ``estimates.json`` + ``estimates.txt`` and ``verification.json`` (and, for a FINN
folding config, ``finn_folding.json``: which FINN entry went to which layer).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qnnflow.flows.compile.steps import STEPS, CompileOptions
from qnnflow.flows.ir.graph import declare_domains
from qnnflow.flows.ir.inputs import check_on_grid, load_npy, range_warning
from qonnx.core.modelwrapper import ModelWrapper

from qnnflow.errors import FlowError


@dataclass
class CompileResult:
    out_dir: Path
    dataflow: Path
    estimates: dict
    checks: list[dict]
    seconds: float
    accuracy: float | None = None
    # a FINN folding config: which entry went to which layer (finn_folding.apply_finn_folding)
    finn_folding: dict | None = None


def _test_inputs(model, inputs: Path | str | np.ndarray | None, log) -> np.ndarray:
    shape = model.get_tensor_shape(model.graph.input[0].name)
    if inputs is None:
        dt = model.get_tensor_datatype(model.graph.input[0].name)
        rng = np.random.default_rng(0)
        n = 100
        if dt.is_integer():
            x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n, *shape[1:])).astype(np.float32)
            log(f"no --inputs: verifying on {n} random {dt.name} inputs")
        else:
            from qnnflow.flows.ir.inputs import input_grid

            x = rng.random((n, *shape[1:]), dtype=np.float32)
            grid = input_grid(model)
            if grid is not None and grid.exact:  # a declared grid: inputs must lie on it
                x = grid.snap(x)
            log(f"no --inputs: verifying on {n} random inputs in [0, 1)")
        return x
    if isinstance(inputs, np.ndarray):
        x = inputs
    else:
        x = load_npy(inputs, "test inputs")
    if x.ndim == 0 or tuple(x.shape[1:]) != tuple(shape[1:]):
        raise ValueError(f"test inputs have shape {x.shape}; the model expects (N, {', '.join(map(str, shape[1:]))})")
    x = np.asarray(x, dtype=np.float32)
    source = "test inputs" if isinstance(inputs, np.ndarray) else str(inputs)
    check_on_grid(x, model, source)
    warning = range_warning(x, model, source)
    if warning:
        log(f"warning: {warning}")
    return x


def _what(check) -> str:
    """What a step was verified on, for the progress line."""
    if check.unchanged is not None:
        return f"values unchanged ({check.unchanged.split(';')[0]})"
    parts = [f"decisions identical on {check.samples} inputs"]
    if check.integers:
        parts.append(f"{len({c['tensor'] for c in check.integers})} integer tensors exact")
    if check.logits is not None:
        parts.append("logits exact as integers")
    if check.float_ties:
        parts.append(f"{check.float_ties} float ties in the reference")
    return ", ".join(parts)


def compile_model(
    model_path: Path | str | ModelWrapper,
    out_dir: Path | str,
    inputs: Path | str | np.ndarray | None = None,
    opts: CompileOptions | None = None,
    labels: np.ndarray | None = None,
    verbose: bool = True,
    reuse: bool = False,
) -> CompileResult:
    """Compile ``model_path`` (a file, or a loaded model) into ``out_dir``: every build step, each
    verified against QONNX execution of the original on ``inputs`` (N, ...) as the model's input
    expects them.

    Given ``inputs`` outside a folder made by the train stage, they (and ``labels``) are kept as the
    build's test set, ``test_inputs.npy`` / ``test_labels.npy``, which ``qnnflow sim`` runs by default.
    The outputs are written into a staging folder and moved into ``out_dir`` only when every step
    verified; the previous outputs of this and every later stage (rtl/, sim/, impl/, the report) are
    removed first, so a failed compile leaves none that look like its result. ``reuse``: return
    at once if the folder already holds a compile of exactly these inputs, options and compiler code."""
    from qnnflow import stamps

    opts = opts or CompileOptions()
    out = Path(out_dir)
    provenance = _provenance(model_path, inputs, opts, labels)
    if reuse and stamps.is_current(out, "compile", provenance) and (out / "dataflow.onnx").is_file():
        if verbose:
            print(f"  {out}: compiled dataflow graph is up to date; reusing it", flush=True)
        return _reused(out)
    out.mkdir(parents=True, exist_ok=True)
    stamps.invalidate(out, "compile")
    own_test_set = not (out / "metrics.json").is_file()  # not a folder the train stage made
    if own_test_set:  # the test set an earlier compile kept here is not this compile's
        for name in ("test_inputs.npy", "test_labels.npy"):
            (out / name).unlink(missing_ok=True)
    with stamps.staged(out, "compile") as staging:
        result = _compile(model_path, staging, inputs, opts, labels, verbose, final=out)
        if own_test_set and inputs is not None:
            # the inputs verified on become the build's test set, which `qnnflow sim` runs by default
            x = load_npy(inputs, "test inputs") if isinstance(inputs, str | Path) else np.asarray(inputs)
            np.save(staging / "test_inputs.npy", x.astype(np.float32))
            if labels is not None:
                np.save(staging / "test_labels.npy", np.asarray(labels)[: len(x)].astype(np.int64))
        stamps.commit(staging, out)
    stamps.write_stamp(out, "compile", provenance)
    if verbose:
        print(f"compiled in {result.seconds:.1f} s -> {out}", flush=True)
    return dataclasses.replace(result, out_dir=out, dataflow=out / "dataflow.onnx")


def _provenance(model_path, inputs, opts: CompileOptions, labels) -> dict:
    from qnnflow import stamps

    if isinstance(model_path, str | Path):
        model = stamps.digest_path(model_path)
    else:
        model = stamps.digest_bytes(model_path.model.SerializeToString())

    def data(value) -> str:
        if value is None:
            return "none"
        if isinstance(value, str | Path):
            return stamps.digest_path(value)
        return stamps.digest_array(np.asarray(value))

    return {
        "model": model,
        "inputs": data(inputs),
        "labels": data(labels),
        "options": {k: str(v) for k, v in dataclasses.asdict(opts).items()},
        "folding_file": stamps.digest_path(opts.folding) if opts.folding else "none",
        "source": stamps.source_digest("qnnflow", "flows"),
    }


def _reused(out: Path) -> CompileResult:
    ver = json.loads((out / "verification.json").read_text())
    est = json.loads((out / "estimates.json").read_text())
    finn = out / "finn_folding.json"
    finn_map = json.loads(finn.read_text()) if finn.is_file() else None
    return CompileResult(out, out / "dataflow.onnx", est, ver["steps"], 0.0, ver.get("accuracy"), finn_map)


def _compile(
    model_path, out_dir: Path, inputs, opts: CompileOptions, labels, verbose: bool, final: Path | None = None
) -> CompileResult:
    """Run every build step on ``model_path`` (a file, or a loaded model), verifying each against QONNX execution of the
    original on ``inputs`` (N, ...) as the model's input expects them. ``final``: the folder ``out_dir``
    becomes (paths recorded in verification.json)."""
    from qnnflow.flows.compile.estimates import table
    from qnnflow.flows.compile.importer import head_note, load_model
    from qnnflow.flows.compile.steps import OutputMode
    from qnnflow.flows.compile.verify import Verifier

    out = out_dir
    (out / "steps").mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    model = load_model(model_path)
    note = head_note(model, opts.output is OutputMode.LOGITS)
    if note:
        log(note)
    name = Path(model_path).name if isinstance(model_path, str | Path) else "the model"
    source = str(Path(model_path).resolve()) if isinstance(model_path, str | Path) else None
    if opts.input_grid:
        model, source = _with_input_grid(model, opts.input_grid, out, final, log)
    x = _test_inputs(model, inputs, log)
    log(f"reference: QONNX execution of {name} on {len(x)} inputs")
    ref = _reference(model, x, name)
    model, checks, last_out = _run_steps(model, opts, Verifier(ref, x), out, log)
    finn_map = _finn_folding_note(model, out, log)
    _check_backends(model)
    dataflow = out / "dataflow.onnx"
    model.save(str(dataflow))
    est = _write_folding_and_estimates(model, opts, out)
    result = {"model": source, "samples": len(x), "steps": checks}
    if note:
        result["head"] = note
    if opts.input_grid:
        result["input_grid"] = opts.input_grid
        result["original_model"] = str(Path(model_path).resolve()) if isinstance(model_path, str | Path) else None
    acc = _write_verification(result, out, ref, last_out, labels, len(x))
    log(table(est))
    return CompileResult(out, dataflow, est, checks, time.time() - t0, acc, finn_map)


def _finn_folding_note(model: ModelWrapper, out: Path, log) -> dict | None:
    """The summary a FINN folding config left in the graph: logged and written to finn_folding.json."""
    from qnnflow.flows.compile.finn_folding import pop_note, summary_lines

    summary = pop_note(model)
    if summary is not None:
        for line in summary_lines(summary):
            log(line)
        (out / "finn_folding.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _with_input_grid(model: ModelWrapper, grid: str, out: Path, final: Path | None, log) -> tuple[ModelWrapper, str]:
    """The model with its declared input grid (a quantizer on its float input), kept as
    ``source_with_input_grid.onnx``: the original as compiled, which `qnnflow sim` checks against."""
    from qnnflow.flows.ir.inputs import declare_input_grid, input_grid

    model = declare_input_grid(model, grid)
    model.save(str(out / "source_with_input_grid.onnx"))
    log(f"input grid: {input_grid(model).what}; inputs must lie on it")
    return model, str(((final or out) / "source_with_input_grid.onnx").resolve())


def _reference(model: ModelWrapper, x: np.ndarray, name: str):
    """QONNX execution of the original on the test inputs, which every step is checked against."""
    from qnnflow.flows.compile.verify import reference

    try:
        return reference(model, x)
    except Exception as err:
        # raised inside qonnx / onnx / onnxruntime while executing the user's graph: the graph as given
        # does not execute (an error of ours would be raised from qnnflow's own files and shows as one)
        last = traceback.extract_tb(err.__traceback__)[-1].filename if err.__traceback__ else ""
        if not any(f"{os.sep}{pkg}{os.sep}" in last for pkg in ("qonnx", "onnx", "onnxruntime")):
            raise
        msg = " ".join(str(err).split())[:300]
        raise FlowError(
            f"QONNX cannot execute {name} on its inputs ({type(err).__name__}: {msg}); the reference every "
            f"step is checked against needs a graph that qonnx's execute_onnx runs (check its shapes and "
            f"attributes with onnx.checker and qonnx's InferShapes)"
        ) from err


def _run_steps(model: ModelWrapper, opts: CompileOptions, verifier, out: Path, log) -> tuple:
    """Every build step in order, each graph saved under ``steps/`` and verified; the final graph,
    the checks, and the last step's outputs on the test inputs."""
    checks = []
    last_out = verifier.ref.outputs
    for i, (name, step) in enumerate(STEPS, start=1):
        ts = time.time()
        model = declare_domains(step(model, opts))
        model.save(str(out / "steps" / f"{i:02d}_{name}.onnx"))
        check, last_out = verifier.check(name, model)
        checks.append(check.as_dict())
        log(
            f"[{i}/{len(STEPS)}] {name:<16} {len(model.graph.node):>4} nodes  {_what(check)}"
            f"  ({time.time() - ts:.1f} s)"
        )
    return model, checks, last_out


def _write_folding_and_estimates(model: ModelWrapper, opts: CompileOptions, out: Path) -> dict:
    from qnnflow.flows.compile.estimates import estimates, table
    from qnnflow.flows.compile.folding import folding_dict

    (out / "folding.json").write_text(json.dumps(folding_dict(model), indent=2) + "\n")
    est = estimates(model, opts.clock_mhz)
    (out / "estimates.json").write_text(json.dumps(est, indent=2) + "\n")
    (out / "estimates.txt").write_text(table(est) + "\n")
    return est


def _write_verification(result: dict, out: Path, ref, last_out, labels, n: int) -> float | None:
    """``verification.json``: what was compared after every step, its summary line, and the
    accuracy of the compiled graph and of the original on the labelled inputs."""
    from qnnflow.flows.compile.verify import summary
    from qnnflow.flows.ir.reference import decisions

    result["summary"] = summary(result)
    acc = None
    if labels is not None:
        acc = float((decisions(last_out) == np.asarray(labels)[:n]).mean())
        result["accuracy"] = acc
        result["reference_accuracy"] = float((ref.decisions == np.asarray(labels)[:n]).mean())
    (out / "verification.json").write_text(json.dumps(result, indent=2) + "\n")
    return acc


def _check_backends(model: ModelWrapper) -> None:
    """Every hardware layer's parameters are ones its module in the RTL library takes (the checks
    code generation makes), so that a compiled graph never fails later in ``qnnflow sim``."""
    from qnnflow.flows.codegen.backends import backend
    from qnnflow.flows.ir.layers import get_layer, hw_nodes

    for node in hw_nodes(model):
        try:
            backend(get_layer(node), model, "check")
        except ValueError as err:
            raise ValueError(f"the compiled graph cannot be built from the RTL library: {err}") from None
