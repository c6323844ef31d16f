"""Static checks of the RTL library and its ECP5 resource figures.

* :func:`verilator_lint` — ``verilator --lint-only -Wall`` of one module at given parameters.
* :func:`yosys_check` — Yosys reads the module, elaborates it at the parameters (``hierarchy
  -check``) and, unless ``synth=False``, runs ``synth_ecp5``; returns the cell counts.
* :func:`ecp5_cells` — the ECP5 cells of a module (LUT4, TRELLIS_FF, DP16KD, MULT18X18D, ...).
* :func:`lint_rtl` — all of that for every module at its default and representative parameters
  (and the further :data:`VARIANTS`); what ``qnnflow lint-rtl`` (and ``make lint``) runs.

Yosys (the WebAssembly build) sees only its working folder, so the sources and memory files are
copied into a fresh folder for each run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qnnflow.flows.codegen import memfiles
from qnnflow.flows.ir import kernels
from qnnflow.flows.ir.kernels_tv import TVParams
from qnnflow.hw import library as rtl

from qnnflow import toolchain
from qnnflow.errors import FlowError

# the cell types the closing figures report
ECP5_KEY_CELLS = ("LUT4", "TRELLIS_FF", "DP16KD", "MULT18X18D")


def _mvau_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    mh, mw, pe, simd, w_w = p["MH"], p["MW"], p["PE"], p["SIMD"], p["W_W"]
    if p.get("W_BIPOLAR"):
        w = rng.choice(np.array([-1, 1]), size=(mh, mw))
    else:
        lo, hi = (-(1 << (w_w - 1)), (1 << (w_w - 1)) - 1) if p.get("W_SIGNED") else (0, (1 << w_w) - 1)
        w = rng.integers(lo, hi + 1, size=(mh, mw))
    words = memfiles.mvau_weight_words(
        w, pe, simd, w_w, signed=bool(p.get("W_SIGNED")), bipolar=bool(p.get("W_BIPOLAR"))
    )
    if p.get("W_BANK_D"):  # one file per bank, WEIGHT_FILE a format with the bank's number
        banks = memfiles.weight_bank_files(p["WEIGHT_FILE"], words, p["W_BANK_D"])
        files = {name: _text(b, pe * simd * w_w) for name, b in banks.items()}
    else:
        files = {p["WEIGHT_FILE"]: _text(words, pe * simd * w_w)}
    if p.get("NUM_T"):
        acc_w, num_t = p["ACC_W"], p["NUM_T"]
        thr = np.sort(rng.integers(-(1 << (acc_w - 2)), 1 << (acc_w - 2), size=(mh, num_t)), axis=1)
        files.update(_threshold_texts(p, thr, acc_w))
    return files


def _vvau_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    ch, kk, pe, simd, w_w = p["CH"], p["KK"], p["PE"], p["SIMD"], p["W_W"]
    lo, hi = (-(1 << (w_w - 1)), (1 << (w_w - 1)) - 1) if p.get("W_SIGNED") else (0, (1 << w_w) - 1)
    w = rng.integers(lo, hi + 1, size=(ch, kk))
    words = memfiles.vvau_weight_words(w, pe, simd, w_w, signed=bool(p.get("W_SIGNED")))
    files = {p["WEIGHT_FILE"]: _text(words, pe * simd * w_w)}
    if p.get("NUM_T"):
        acc_w, num_t = p["ACC_W"], p["NUM_T"]
        thr = np.sort(rng.integers(-(1 << (acc_w - 2)), 1 << (acc_w - 2), size=(ch, num_t)), axis=1)
        files.update(_threshold_texts(p, thr, acc_w))
    return files


def _thresholding_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    thr_w, num_t = p["THR_W"], p["NUM_T"]
    thr = np.sort(rng.integers(-(1 << (thr_w - 2)), 1 << (thr_w - 2), size=(p["CH"], num_t)), axis=1)
    return _threshold_texts(p, thr, thr_w)


def _threshold_search_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    thr_w = p["THR_W"]
    thr = np.sort(rng.integers(-(1 << (thr_w - 2)), 1 << (thr_w - 2), size=(p["NF"] * p["LANES"], p["NUM_T"])), axis=1)
    return _search_texts(p["PREFIX"], thr, p["LANES"], thr_w)


def _threshold_texts(p: Mapping[str, int], thr: np.ndarray, width: int) -> dict[str, str]:
    """The threshold memory files of mvau / vvau / thresholding at ``p``: THRESH_FILE, or with
    THR_SEARCH hw/threshold_search.sv's, one per stage and lane."""
    if p.get("THR_SEARCH"):
        return _search_texts(p["THRESH_PREFIX"], thr, p["PE"], width)
    return {p["THRESH_FILE"]: _text(memfiles.threshold_words(thr, p["PE"], width), p["PE"] * p["NUM_T"] * width)}


def _search_texts(prefix: str, thr: np.ndarray, lanes: int, width: int) -> dict[str, str]:
    memories = memfiles.threshold_search_words(thr, lanes, width)
    files = memfiles.threshold_search_files(prefix, memories, width)
    return {name: _text(words, width) for name, words in files.items()}


def _label_map_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    files = {}
    for flag, key, width in (("HAS_MUL", "MUL_FILE", "MUL_W"), ("HAS_OFFSET", "OFFSET_FILE", "OFF_W")):
        if p.get(flag):
            lo, hi = kernels.value_range(p[width], True)
            words = memfiles.label_map_words(rng.integers(lo, hi + 1, size=p["NUM"]), p["PE"], p[width])
            files[p[key]] = _text(words, p["PE"] * p[width])
    return files


def _tv_smooth_files(p: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    tv = TVParams(p["GAMMA_Q"], frac_bits=p["FRAC_BITS"], gamma_frac_bits=p["GAMMA_FRAC_BITS"])
    words, width = memfiles.tv_table_words(p["HI"] - p["LO"], tv)
    return {p["TABLE_FILE"]: _text(words, width)}


def _text(words: list[int], width: int) -> str:
    digits = max(1, -(-width // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


@dataclass(frozen=True)
class Config:
    """A module at one set of parameters, with the memory files it reads."""

    module: str
    params: dict = field(default_factory=dict)
    files: Callable[[Mapping[str, int]], dict[str, str]] | None = None
    note: str = ""
    # False for the building blocks of other modules (threshold_count, threshold_search):
    # no bench of their own, their users' benches run them (qnnflow.sim.cases.representative_cases)
    bench: bool = True

    def file_texts(self) -> dict[str, str]:
        return self.files(self.params) if self.files else {}


# A representative configuration per module: the closing figures and `qnnflow lint-rtl` use these.
REPRESENTATIVE: dict[str, Config] = {
    c.module: c
    for c in (
        Config(
            "mvau",
            dict(
                MW=64,
                MH=32,
                PE=4,
                SIMD=8,
                IN_W=2,
                IN_SIGNED=0,
                IN_BIPOLAR=0,
                W_W=2,
                W_SIGNED=1,
                W_BIPOLAR=0,
                ACC_W=kernels.accumulator_width(64, (0, 3), (-2, 1)),  # 10
                NUM_T=3,
                OUT_W=2,
                OUT_OFFSET=0,
                WEIGHT_FILE="weights.mem",
                THRESH_FILE="thresholds.mem",
            ),
            _mvau_files,
            "64x32 W2A2, PE4 SIMD8, 3 thresholds",
        ),
        Config(
            "vvau",
            dict(
                CH=32, KK=9, PE=4, SIMD=1, IN_W=2, IN_SIGNED=0, IN_BIPOLAR=0, W_W=2, W_SIGNED=1, W_BIPOLAR=0,
                ACC_W=kernels.accumulator_width(9, (0, 3), (-2, 1)), NUM_T=3, OUT_W=2, OUT_OFFSET=0,
                WEIGHT_FILE="weights.mem", THRESH_FILE="thresholds.mem",
            ),  # fmt: skip
            _vvau_files,
            "depthwise 3x3 x 32 channels W2A2, PE4, 3 thresholds",
        ),
        Config(
            "thresholding",
            dict(
                CH=32, PE=4, IN_W=8, IN_SIGNED=1, NUM_T=3, THR_W=9, OUT_W=2, OUT_OFFSET=0, THRESH_FILE="thresholds.mem"
            ),
            _thresholding_files,
            "32 channels, PE4, 8-bit in, 3 thresholds",
        ),
        Config(
            "threshold_count",
            dict(NUM_T=3, IN_W=8, IN_SIGNED=1, IN_BIPOLAR=0, THR_W=9, OUT_W=2, OUT_OFFSET=0),
            note="one 8-bit element, 3 thresholds (of the representative thresholding)",
            bench=False,
        ),
        Config(
            "threshold_search",
            dict(
                LANES=1, NUM_T=255, NF=8, IN_W=20, IN_SIGNED=1, IN_BIPOLAR=0, THR_W=20, OUT_W=8, OUT_OFFSET=0,
                TAG_W=1, PREFIX="thresholds",
            ),  # fmt: skip
            _threshold_search_files,
            "one lane, 255 thresholds (an 8-bit activation) of 20-bit accumulators, 8 folds",
            bench=False,
        ),
        Config(
            "sliding_window",
            dict(IFM_H=16, IFM_W=16, CH=16, SIMD=4, ELEM_W=2, K=3, STRIDE=1, PAD=1),
            note="16x16x16 2-bit, K3 S1 P1, SIMD4",
        ),
        Config(
            "maxpool", dict(IFM_H=16, IFM_W=16, CH=16, PE=4, ELEM_W=2, SIGNED=0, K=2), note="16x16x16 2-bit, K2, PE4"
        ),
        Config(
            "tv_smooth",
            {
                **dict(IFM_H=16, IFM_W=16, CH=16, PE=4, ELEM_W=2, SIGNED=0, LO=0, HI=3),
                **dict(FRAC_BITS=6, GAMMA_Q=4, GAMMA_FRAC_BITS=4, TABLE_FILE="tv_table.mem"),
            },
            _tv_smooth_files,
            "16x16x16 2-bit, PE4, gamma^2 = 0.25",
        ),
        Config("label_select", dict(NUM=10, PE=1, ELEM_W=16, SIGNED=1, OUT_W=4), note="10 x 16-bit, PE1"),
        Config("add_streams", dict(PE=4, IN_W=4, IN_SIGNED=1, OUT_W=5), note="PE4 4-bit signed"),
        Config("duplicate_streams", dict(DATA_W=16, NUM_OUT=2), note="16-bit, 2 outputs"),
        Config("fifo", dict(DATA_W=16, DEPTH=512, USE_RAM=1), note="512 x 16-bit, RAM"),
        Config("width_converter", dict(IN_W=8, OUT_W=32), note="8 -> 32 bits"),
        Config("skid_buffer", dict(DATA_W=32), note="32-bit"),
    )
}


# further configurations of a module that `qnnflow lint-rtl` checks like the representative one
# (Verilator, synth_ecp5), reported as "<module>:<tag>": options the representative one leaves off
VARIANTS: dict[str, dict[str, Config]] = {
    # 8-bit activations: the thresholds' count by binary search (hw/threshold_search.sv)
    "thresholding": {
        "search": Config(
            "thresholding",
            dict(
                CH=32, PE=4, IN_W=12, IN_SIGNED=1, NUM_T=255, THR_W=13, OUT_W=8, OUT_OFFSET=0, THRESH_FILE="",
                THR_SEARCH=1, THRESH_PREFIX="thresholds",
            ),  # fmt: skip
            _thresholding_files,
            "32 channels, PE4, 12-bit in, 255 thresholds by binary search",
        ),
    },
    "mvau": {
        "search": Config(
            "mvau",
            dict(
                MW=64, MH=32, PE=4, SIMD=8, IN_W=8, IN_SIGNED=0, IN_BIPOLAR=0, W_W=2, W_SIGNED=1, W_BIPOLAR=0,
                ACC_W=kernels.accumulator_width(64, (0, 255), (-2, 1)), NUM_T=255, OUT_W=8, OUT_OFFSET=0,
                WEIGHT_FILE="weights.mem", THRESH_FILE="", THR_SEARCH=1, THRESH_PREFIX="thresholds",
            ),  # fmt: skip
            _mvau_files,
            "64x32 W2A8, PE4 SIMD8, 255 thresholds by binary search",
        ),
        # weights in block RAM, read through banks (W_BANK_D): 2304 words of 32 bits in 9 banks
        "banks": Config(
            "mvau",
            dict(
                MW=2304, MH=32, PE=1, SIMD=32, IN_W=1, IN_SIGNED=0, IN_BIPOLAR=1, W_W=1, W_SIGNED=0, W_BIPOLAR=1,
                ACC_W=kernels.accumulator_width(2304, (0, 1), (0, 1)), NUM_T=1, OUT_W=1, OUT_OFFSET=0,
                WEIGHT_FILE="weights_b%0d.mem", THRESH_FILE="thresholds.mem", W_BANK_D=256,
            ),  # fmt: skip
            _mvau_files,
            "2304x32 W1A1 (CNV's conv 5 at PE1 SIMD32), weights in 9 banks of 256 words",
        ),
    },
    "label_select": {
        "map": Config(
            "label_select",
            dict(
                NUM=10, PE=1, ELEM_W=16, SIGNED=1, OUT_W=4, HAS_MUL=1, HAS_OFFSET=1, MUL_W=18, OFF_W=24, SHIFT=0,
                VAL_W=35, MUL_FILE="class_mul.mem", OFFSET_FILE="class_offset.mem",
            ),  # fmt: skip
            _label_map_files,
            "10 x 16-bit, PE1, per-class 18-bit multipliers and 24-bit offsets",
        ),
        "offsets": Config(
            "label_select",
            dict(
                NUM=10, PE=1, ELEM_W=16, SIGNED=1, OUT_W=4, HAS_MUL=0, HAS_OFFSET=1, MUL_W=2, OFF_W=12, SHIFT=4,
                VAL_W=21, MUL_FILE="", OFFSET_FILE="class_offset.mem",
            ),  # fmt: skip
            _label_map_files,
            "10 x 16-bit, PE1, per-class 12-bit offsets after a 4-bit shift (one scale for all classes)",
        ),
    },
}


def _workdir(module: str, params: Mapping[str, object], files: Mapping[str, str], base: Path | None) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"{module}-", dir=base))
    for src in rtl.sources(module):
        shutil.copy(src, work / src.name)
    for name, text in files.items():
        (work / name).write_text(text)
    return work


def _sv_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(int(value))


def verilator_lint(module: str, params: Mapping[str, object] | None = None) -> str:
    """``verilator --lint-only -Wall`` of ``module`` at ``params``; FlowError with the messages if
    it is not clean. Returns Verilator's output."""
    tool = toolchain.find("verilator")
    args = ["--lint-only", "-Wall", "--top-module", module]
    args += [f"-G{k}={_sv_value(v)}" for k, v in (params or {}).items()]
    args += [str(p) for p in rtl.sources(module)]
    out = subprocess.run(
        tool.argv(*args), capture_output=True, text=True, env=toolchain.tool_env(tool), check=False, timeout=300
    )
    text = out.stdout + out.stderr
    if out.returncode != 0:
        shown = "\n".join(ln for ln in text.splitlines() if ln.startswith("%"))
        raise FlowError(f"verilator --lint-only -Wall: {module} {dict(params or {})} is not clean:\n{shown}")
    return text


def yosys_check(
    module: str,
    params: Mapping[str, object] | None = None,
    *,
    files: Mapping[str, str] | None = None,
    synth: bool = True,
    workdir: Path | None = None,
    keep: bool = False,
) -> dict[str, int]:
    """Yosys: read the module (``read_verilog -sv``), elaborate at ``params`` (``hierarchy
    -check``), and with ``synth`` run ``synth_ecp5``. Returns the cell counts by type; FlowError
    naming the log if Yosys fails. ``files`` are memory files the module reads."""
    tool = toolchain.find("yosys")
    params = dict(params or {})
    work = _workdir(module, params, files or {}, workdir)
    sets = " ".join(f"-set {k} {_sv_value(v)}" for k, v in params.items())
    script = [f"read_verilog -defer -sv {' '.join(p.name for p in rtl.sources(module))}"]
    if sets:
        script.append(f"chparam {sets} {module}")
    script.append(f"hierarchy -check -top {module}")
    script.append(f"synth_ecp5 -top {module}" if synth else "proc; opt_clean")
    script.append("tee -q -o stat.json stat -json")
    (work / "check.ys").write_text("\n".join(script) + "\n")
    log = work / "yosys.log"
    with open(log, "w") as fh:
        out = subprocess.run(
            tool.argv("-q", "-s", "check.ys"), cwd=work, stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=1800
        )
    if out.returncode != 0 or not (work / "stat.json").is_file():
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
        raise FlowError(f"Yosys rejects {module} {params}: {' '.join(errors[-3:]) or 'see log'}", log)
    stat = json.loads((work / "stat.json").read_text())
    cells = {k: int(v) for k, v in stat["design"].get("num_cells_by_type", {}).items() if not k.startswith("$scope")}
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return cells


def ecp5_cells(
    module: str,
    params: Mapping[str, object] | None = None,
    *,
    files: Mapping[str, str] | None = None,
    workdir: Path | None = None,
) -> dict[str, int]:
    """ECP5 cells of ``module`` after ``synth_ecp5``: every type, and the four key types
    (LUT4, TRELLIS_FF, DP16KD, MULT18X18D) always present (0 when absent). Without ``params``,
    the representative configuration (:data:`REPRESENTATIVE`) with its memory files."""
    if params is None:
        cfg = REPRESENTATIVE[module]
        params, files = cfg.params, cfg.file_texts()
    cells = yosys_check(module, params, files=files, synth=True, workdir=workdir)
    return {**{k: 0 for k in ECP5_KEY_CELLS}, **cells}


@dataclass
class LintReport:
    module: str
    verilator: str = "not run"
    yosys: str = "not run"
    cells: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        skipped = self.verilator.startswith("skipped")
        return skipped or (self.verilator == "clean" and self.yosys == "ok")


def lint_rtl(
    modules: list[str] | None = None,
    *,
    synth: bool = True,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> list[LintReport]:
    """Verilator lint (default and representative parameters) and Yosys elaboration + synth_ecp5
    (representative parameters) of every module, and of its :data:`VARIANTS`. Returns one report per
    module and variant; never raises for
    a module that fails (its report says why), so every problem is listed at once."""
    reports = []
    for module in modules or rtl.modules():
        rep = LintReport(module)
        external = rtl.external_dependencies(module)
        if external:
            # e.g. a board top around a design's generated accelerator: checked with the design
            rep.verilator = rep.yosys = f"skipped: needs {', '.join(external)} (not in the library)"
            if progress:
                progress(f"{module:<18} skip   {rep.verilator}")
            reports.append(rep)
            continue
        cfg = REPRESENTATIVE.get(module, Config(module))
        reports.append(_lint_config(module, cfg, synth, workdir, progress, default=True))
        for tag, variant in VARIANTS.get(module, {}).items():
            reports.append(_lint_config(f"{module}:{tag}", variant, synth, workdir, progress, default=False))
    return reports


def _lint_config(name: str, cfg: Config, synth: bool, workdir, progress, *, default: bool) -> LintReport:
    """Verilator lint (also at the default parameters if ``default``) and Yosys of one configuration."""
    rep = LintReport(name)
    try:
        if default:
            verilator_lint(cfg.module)
        verilator_lint(cfg.module, cfg.params)
        rep.verilator = "clean"
    except FlowError as err:
        rep.verilator = str(err)
    try:
        rep.cells = yosys_check(cfg.module, cfg.params, files=cfg.file_texts(), synth=synth, workdir=workdir)
        rep.yosys = "ok"
    except FlowError as err:
        rep.yosys = str(err)
    if progress:
        key = ", ".join(f"{k} {rep.cells.get(k, 0)}" for k in ECP5_KEY_CELLS) if synth else ""
        status = "ok" if rep.ok else "FAILED"
        progress(
            f"{name:<18} {status:<6} verilator: {rep.verilator.splitlines()[0]}; yosys: "
            f"{rep.yosys.splitlines()[0]}{'; ' + key if key and rep.ok else ''}"
        )
    return rep
