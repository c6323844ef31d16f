"""``qnnflow build``: every stage in order on one build folder (what ``make bitstream`` runs).

Each stage reads and writes files in ``build/<name>/`` and can be re-run alone with its own
subcommand. A stage whose inputs, settings, tool versions and code are unchanged since it last
completed is skipped (its stamp in ``.stamps/`` matches; see :mod:`qnnflow.stamps`). The build stops
at the first stage that fails, saying why; the stages before it stay complete and reusable, and
nothing of the failed stage or after it is left looking valid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qnnflow import toolchain
from qnnflow.config import BuildConfig


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BuildConfig, Path], str]  # returns a one-line summary


def stage_train(cfg: BuildConfig, out: Path) -> str:
    from qnnflow.models.train import train_and_export

    m = train_and_export(cfg, out)
    return f"test accuracy {m['test_accuracy']:.4f} (float baseline {m.get('float_test_accuracy', float('nan')):.4f})"


def stage_calibrate(cfg: BuildConfig, out: Path) -> str:
    """Boundary-aware calibration (``--calibrate boundary``): choose the deployed model."""
    from qnnflow.config import Calibration

    if cfg.calibrate is Calibration.NONE:
        raise ValueError("the calibrate stage runs with --calibrate boundary (config calibrate = \"boundary\")")
    from qnnflow import stamps
    from qnnflow.models.calibrate import calibrate

    prov = {
        "float_model": stamps.digest_path(out / "float_model.pt"),
        "model": stamps.digest_path(out / "model.pt"),
        "settings": {k: str(v) for k, v in vars(cfg).items() if k.startswith("cal") or k in ("board", "seed",
                     "target_cycles", "target_fps", "clock_mhz", "data_dir", "dataset")},
        # the candidates' code (models/), the compiler that prices them (flows/) and the settings' type
        "source": stamps.source_digest("flows", "models") + stamps.digest_path(Path(__file__).parent / "config.py"),
    }  # fmt: skip
    record_path = out / "calibration" / "calibration.json"
    if stamps.is_current(out, "calibrate", prov) and record_path.is_file():
        print(f"  {out}: calibration is up to date; reusing it", flush=True)
        rec = json.loads(record_path.read_text())
    else:
        rec = calibrate(cfg, out)
        stamps.write_stamp(out, "calibrate", prov)
    ch, acc = rec["choice"], rec["accuracy_choice"]
    return (
        f"deploying {ch['name']} ({'within' if ch['passed'] else 'NOT within'} the tolerances; held-out accuracy "
        f"{ch['test']['accuracy']:.4f}, flips {ch['test']['flips']}, Jaccard "
        f"{ch['test']['slice_jaccard_distance']:.3f}); accuracy rule: {acc['name']}; "
        f"{len(rec['candidates'])} candidates"
    )


def deployed_model(cfg: BuildConfig, out: Path) -> Path:
    """The QONNX model the build compiles: the calibrated choice, or the trained preset."""
    from qnnflow.config import Calibration

    return out / "calibration" / "model.onnx" if cfg.calibrate is Calibration.BOUNDARY else out / "model.onnx"


def stage_compile(cfg: BuildConfig, out: Path) -> str:
    import numpy as np

    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.flows.implement.autoclock import AUTO, NOMINAL_MHZ
    from qnnflow.flows.implement.boards import board_spec

    # Default folding when the config sets no target: DEFAULT_TARGET_CYCLES of the board's family.
    target_cycles = cfg.target_cycles
    default = target_cycles is None and cfg.target_fps is None
    if default:
        target_cycles = DEFAULT_TARGET_CYCLES[board_spec(cfg.board).family]
    clock = cfg.clock_mhz  # auto: the estimates assume the family's usual clock until implement measures it
    if clock == AUTO:
        clock = NOMINAL_MHZ[board_spec(cfg.board).family]
    opts = CompileOptions(
        target_cycles=target_cycles, target_fps=cfg.target_fps, clock_mhz=clock, default_target=default
    )
    labels = np.load(out / "test_labels.npy")
    res = compile_model(
        deployed_model(cfg, out), out, inputs=out / "test_inputs.npy", opts=opts, labels=labels, reuse=True
    )
    est = json.loads((out / "estimates.json").read_text())
    ii = est.get("ii_cycles", est.get("network", {}).get("ii_cycles", "?"))
    from qnnflow.flows.compile.verify import summary

    ver = summary(json.loads((out / "verification.json").read_text()))
    return f"{ver}; accuracy {res.accuracy:.4f}, II {ii} cycles"


def stage_sim(cfg: BuildConfig, out: Path) -> str:
    from qnnflow.config import SimMode
    from qnnflow.errors import MismatchError
    from qnnflow.sim.stitch import check_boundary, simulate

    r = simulate(out, mode=cfg.sim_mode, reuse=True)
    if r["mismatches"]:
        raise MismatchError(
            f"{r['mismatches']} of {r['frames']} frames differ between the hardware and the dataflow graph "
            f"(first: {r['first_mismatches']}); see {out / 'sim' / 'results.json'}"
        )
    acc = f", hw accuracy {r['hw_accuracy']:.4f}" if r["hw_accuracy"] is not None else ""
    cyc = r["cycles_per_frame_measured"]
    ii = f", {cyc:.0f} cycles/frame (estimate {r['cycles_per_frame_estimated']})" if cyc else ""
    probes = ""
    if cfg.sim_mode is SimMode.BATCH:
        b = check_boundary(out, reuse=True)
        if b["mismatches"]:
            raise MismatchError(
                f"{b['hw_vs_source_decision_mismatches']} of {b['probes']} boundary probes decided differently "
                f"by the hardware; see {out / 'sim' / 'boundary' / 'boundary.json'}"
            )
        probes = (
            f"; boundary probes skipped ({b['skipped']})" if "skipped" in b
            else f"; {b['probes']} boundary probes, 0 mismatches"
        )
        if cfg.hw_map_grid:
            from qnnflow.hwmap import hardware_map
            from qnnflow.hwmap import summary as map_summary

            m = hardware_map(out, cfg.hw_map_grid, stall_sample=cfg.hw_map_stalls, reuse=True)
            probes += "; " + map_summary(m)
    return f"{r['frames']} frames, 0 mismatches{acc}{ii}{probes}"


def stage_bitstream(cfg: BuildConfig, out: Path) -> str:
    from qnnflow.flows.implement import bitstream_stage
    from qnnflow.flows.implement.report import summary

    report = bitstream_stage(out, cfg.board, cfg.clock_mhz, xilinx=cfg.xilinx_estimate, baud=cfg.uart_baud, reuse=True)
    lines = summary(report).splitlines()
    lines[0] = lines[0].removeprefix("bitstream: ")  # printed after "bitstream:" already
    return "\n      ".join(line for line in lines if line)


STAGES: list[Stage] = [
    Stage("train", stage_train),
    Stage("calibrate", stage_calibrate),
    Stage("compile", stage_compile),
    Stage("sim", stage_sim),
    Stage("bitstream", stage_bitstream),
]


def run_build(cfg: BuildConfig, out: Path | str, until: str | None = None) -> list[tuple[str, str, float]]:
    """Run the stages in order on ``out`` (up to and including ``until``, default all); return
    (stage, summary, seconds) for each."""
    names = [s.name for s in STAGES]
    if until is not None and until not in names:
        raise ValueError(f"unknown stage {until!r}; the stages are {', '.join(names)}")
    stages = STAGES[: names.index(until) + 1] if until else STAGES
    from qnnflow.config import Calibration

    if cfg.calibrate is Calibration.NONE:  # the stage runs only when asked for
        stages = [s for s in stages if s.name != "calibrate"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.write(out)
    toolchain.use_system_tools(cfg.system_tools)  # the pinned wheels unless the config opts in
    done = []
    for i, stage in enumerate(stages, start=1):
        print(f"[{i}/{len(stages)}] {stage.name} -> {out}", flush=True)
        start = time.perf_counter()
        summary = stage.run(cfg, out)
        secs = time.perf_counter() - start
        print(f"[{i}/{len(stages)}] {stage.name}: {summary} ({secs:.1f} s)", flush=True)
        done.append((stage.name, summary, secs))
    return done
