"""Malformed model files: each gets one clear error naming what is wrong (the node or tensor, what
must hold and what was found) from the importer, and ``qnnflow compile`` exits 2 with that one line,
never a traceback. A well-formed control compiles, so the checks do not refuse valid graphs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qnnflow.flows.compile.importer import load_model

Q = "qonnx.custom_op.general"


def _t(name: str, arr) -> onnx.TensorProto:
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel())


def _quant(x: str, out: str, scale: str, bits: str, name: str, signed: int) -> onnx.NodeProto:
    return helper.make_node(
        "Quant", [x, scale, "zero", bits], [out], domain=Q, name=name, signed=signed, narrow=0, rounding_mode="ROUND"
    )


def valid_model() -> onnx.ModelProto:
    """x (1, 8) -> Quant(u4) -> MatMul(Quant(W, s4)) -> Relu -> Quant(u3) -> MatMul(BipolarQuant(W2)): logits.
    Power-of-two scales, so QONNX's float32 execution is exact and the control compiles."""
    rng = np.random.default_rng(0)
    nodes = [
        _quant("x", "xq", "s_in", "b4", "Quant_in", 0),
        _quant("W1", "W1q", "s_w1", "b4", "Quant_w1", 1),
        helper.make_node("MatMul", ["xq", "W1q"], ["mm1"], name="MatMul_1"),
        helper.make_node("Relu", ["mm1"], ["r1"], name="Relu_1"),
        _quant("r1", "a1", "s_a1", "b3", "Quant_a1", 0),
        helper.make_node("BipolarQuant", ["W2", "s_w2"], ["W2q"], domain=Q, name="BipolarQuant_w2"),
        helper.make_node("MatMul", ["a1", "W2q"], ["y"], name="MatMul_2"),
    ]
    inits = [
        _t("s_in", 1 / 16), _t("zero", 0.0), _t("b4", 4.0), _t("b3", 3.0), _t("s_w1", 0.25), _t("s_a1", 0.5),
        _t("s_w2", 1.0), _t("W1", rng.normal(size=(8, 6))), _t("W2", rng.normal(size=(6, 4))),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)])


def _set(name: str, value):
    def mutate(m: onnx.ModelProto) -> None:
        init = next(i for i in m.graph.initializer if i.name == name)
        init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))

    return mutate


def _opset(version: int):
    def mutate(m: onnx.ModelProto) -> None:
        next(o for o in m.opset_import if o.domain == "").version = version

    return mutate


def _drop_init(name: str):
    def mutate(m: onnx.ModelProto) -> None:
        m.graph.initializer.remove(next(i for i in m.graph.initializer if i.name == name))

    return mutate


def _node(name: str):
    return lambda m: next(n for n in m.graph.node if n.name == name)


def _rename_input(node: str, index: int, to: str):
    def mutate(m: onnx.ModelProto) -> None:
        _node(node)(m).input[index] = to

    return mutate


def _attr(node: str, attr: str, value: bytes):
    def mutate(m: onnx.ModelProto) -> None:
        next(a for a in _node(node)(m).attribute if a.name == attr).s = value

    return mutate


def _int_attr(node: str, attr: str, value: int):
    def mutate(m: onnx.ModelProto) -> None:
        next(a for a in _node(node)(m).attribute if a.name == attr).i = value

    return mutate


def _domain(node: str, domain: str):
    def mutate(m: onnx.ModelProto) -> None:
        _node(node)(m).domain = domain

    return mutate


def _input_dim(index: int, value: int | str):
    def mutate(m: onnx.ModelProto) -> None:
        dim = m.graph.input[0].type.tensor_type.shape.dim[index]
        if isinstance(value, str):
            dim.dim_param = value
        else:
            dim.dim_value = value

    return mutate


def _ir(version: int):
    def mutate(m: onnx.ModelProto) -> None:
        m.ir_version = version

    return mutate


def _cycle(m: onnx.ModelProto) -> None:
    _node("MatMul_1")(m).input[0] = "a1"  # MatMul_1 -> Relu_1 -> Quant_a1 -> MatMul_1


def _twice(m: onnx.ModelProto) -> None:
    _node("Relu_1")(m).output[0] = "mm1"


def _two_outputs(m: onnx.ModelProto) -> None:
    m.graph.output.append(helper.make_tensor_value_info("mm1", TensorProto.FLOAT, [1, 6]))


def _output_missing(m: onnx.ModelProto) -> None:
    m.graph.output[0].name = "nothing"


# id -> (change to the valid model, words the message must contain)
GRAPH_CASES = {
    "nan-scale": (_set("s_a1", np.nan), ["initializer s_a1", "Quant_a1 (Quant)", "NaN"]),
    "inf-weight": (_set("W1", np.full((8, 6), np.inf)), ["initializer W1", "Quant_w1 (Quant)", "infinite"]),
    "zero-scale": (_set("s_w1", 0.0), ["Quant_w1 (Quant)", "scale must be finite and positive, found 0"]),
    "negative-scale": (_set("s_a1", -0.5), ["Quant_a1 (Quant)", "positive, found -0.5"]),
    "negative-bipolar-scale": (_set("s_w2", -1.0), ["BipolarQuant_w2 (BipolarQuant)", "positive, found -1"]),
    "bitwidth-0": (_set("b3", 0.0), ["Quant_a1 (Quant)", "bit width must be in 1..32, found 0"]),
    "bitwidth-33": (_set("b3", 33.0), ["Quant_a1 (Quant)", "bit width must be in 1..32, found 33"]),
    "bitwidth-fraction": (_set("b3", 2.5), ["Quant_a1 (Quant)", "bit width must be one integer, found 2.5"]),
    "bitwidth-vector": (_set("b3", [3.0, 3.0]), ["Quant_a1 (Quant)", "one integer"]),
    "rounding-mode": (_attr("Quant_a1", "rounding_mode", b"SIDEWAYS"), ["Quant_a1 (Quant)", "'SIDEWAYS'"]),
    "signed-2": (_int_attr("Quant_a1", "signed", 2), ["Quant_a1 (Quant)", "signed must be 0 or 1, found 2"]),
    "zero-point-fraction": (_set("zero", 0.5), ["Quant_in (Quant)", "zero point must be an integer", "found 0.5"]),
    "zero-point-huge": (_set("zero", 1e30), ["Quant_in (Quant)", "below 2^4", "found 1e+30"]),
    "opset-99": (_opset(99), ["opset 99 is not supported", "expected 7.."]),
    "opset-5": (_opset(5), ["opset 5 is not supported"]),
    "ir-version-99": (_ir(99), ["IR version 99"]),
    "unknown-domain": (_domain("Quant_a1", "com.example.quant"), ["Quant_a1 (Quant)", "'com.example.quant'"]),
    "missing-initializer": (_drop_init("W2"), ["BipolarQuant_w2 (BipolarQuant) reads tensor W2", "initializer"]),
    "dangling-input": (_rename_input("Relu_1", 0, "ghost"), ["Relu_1 (Relu) reads tensor ghost", "dangling"]),
    "scale-not-constant": (_rename_input("Quant_a1", 1, "mm1"), ["Quant_a1 (Quant)", "scale mm1 must be a constant"]),
    "cycle": (_cycle, ["cycle", "MatMul_1 (MatMul)"]),
    "tensor-defined-twice": (_twice, ["tensor mm1 is defined twice", "Relu_1 (Relu)"]),
    "output-not-produced": (_output_missing, ["graph output nothing is produced by no node"]),
    "two-outputs": (_two_outputs, ["exactly one input and one output", "'mm1'"]),
    "symbolic-input-dim": (_input_dim(1, "C"), ["graph input x", "dimension 1", "'C'"]),
    "zero-input-dim": (_input_dim(1, 0), ["graph input x", "dimension 1"]),
}


def _bytes_cases(valid: bytes) -> dict[str, tuple[bytes, list[str]]]:
    return {
        "truncated-half": (valid[: len(valid) // 2], ["not a readable ONNX model"]),
        "truncated-8-bytes": (valid[:8], ["not a readable ONNX model"]),
        "text-file": (b"model = 'not onnx'\n", ["not a readable ONNX model"]),
        "random-bytes": (np.random.default_rng(1).bytes(2048), ["not a readable ONNX model"]),
        "empty-file": (b"", ["the file is empty"]),
    }


def _write_all(folder: Path) -> dict[str, tuple[Path, list[str]]]:
    base = valid_model()
    files = {}
    for key, (mutate, words) in GRAPH_CASES.items():
        m = copy.deepcopy(base)
        mutate(m)
        path = folder / f"{key}.onnx"
        path.write_bytes(m.SerializeToString())
        files[key] = (path, words)
    for key, (data, words) in _bytes_cases(base.SerializeToString()).items():
        path = folder / f"{key}.onnx"
        path.write_bytes(data)
        files[key] = (path, words)
    return files


@pytest.fixture(scope="module")
def malformed(tmp_path_factory) -> dict[str, tuple[Path, list[str]]]:
    return _write_all(tmp_path_factory.mktemp("malformed"))


def test_the_control_model_is_valid_and_loads():
    model = load_model(valid_model())
    assert [n.op_type for n in model.graph.node].count("Quant") == 3


@pytest.mark.parametrize("key", [*GRAPH_CASES, *_bytes_cases(b"x" * 10)])
def test_malformed_model_gets_a_clear_error(malformed, key):
    path, words = malformed[key]
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for w in words:
        assert w in message, f"{w!r} not in: {message}"


_CLI_LOOP = """
import contextlib, io, json, sys
from qnnflow.cli import main
out, results = sys.argv[1], {}
for path in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["compile", path, "--out", out, "--target-cycles", "1000"])
    results[path] = [rc, err.getvalue()]
print(json.dumps(results))
"""


def test_cli_exits_2_with_one_line_for_every_malformed_file(malformed, tmp_path):
    """The real command line (in a fresh interpreter, as a user runs it) on every file, and on the
    valid control, which compiles."""
    control = tmp_path / "control.onnx"
    control.write_bytes(valid_model().SerializeToString())
    paths = [str(p) for p, _ in malformed.values()]
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_LOOP, str(tmp_path / "build"), str(control), *paths],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results.pop(str(control))[0] == 0, "the valid control model did not compile"
    for path, (rc, err) in results.items():
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2, f"{path}: exit {rc}: {err}"
        assert len(lines) == 1 and lines[0].startswith("qnnflow compile: error: "), f"{path}: {err}"
        assert "traceback" not in err.lower(), f"{path}: {err}"


@pytest.mark.parametrize(
    "k",
    range(40),
)
def test_mutated_random_graph_compiles_or_gets_a_clear_error(k, tmp_path):
    """One random change (qnnflow.flows.compile.fuzz.mutate: an initializer or node dropped, a dangling input, a
    constant set to NaN / 0 / -1 / 1e30 / 33, two inputs swapped, an integer attribute changed) to a
    random fuzz graph: the compiler either compiles the result, verified, or refuses it with a
    ValueError / FlowError -- never another exception."""
    from qnnflow.flows.compile.fuzz import random_case
    from qnnflow.flows.compile.fuzz_check import run_case
    from qnnflow.flows.compile.fuzz_mutate import mutate

    rng = np.random.default_rng(1000 + k)
    case, what = mutate(random_case(int(rng.integers(0, 1000)), n_inputs=5), rng)
    outcome = run_case(case, tmp_path, malformed=True)
    assert outcome.kind in ("exact", "error"), f"{case.summary}\n{outcome.detail}"


def test_a_graph_qonnx_cannot_execute_gets_a_clear_error(tmp_path):
    """The benchmark's mutation 143 (Flatten axis set to 0 before a Gemm): qonnx's execution of the
    original raises inside qonnx ("Found unspecified tensor shapes"); the compile says that QONNX
    cannot execute the graph, as a FlowError, instead of letting qonnx's exception through."""
    from qnnflow.flows.compile.fuzz import random_case
    from qnnflow.flows.compile.fuzz_check import run_case
    from qnnflow.flows.compile.fuzz_mutate import mutate

    rng = np.random.default_rng(1000 + 143)
    case, what = mutate(random_case(int(rng.integers(0, 1000)), n_inputs=5), rng)
    assert what == "poke-attribute Flatten_0.axis=0"
    outcome = run_case(case, tmp_path, malformed=True)
    assert outcome.kind == "error" and outcome.detail.startswith("QONNX cannot execute"), outcome.detail
