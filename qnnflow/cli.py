"""The ``qnnflow`` command line: one subcommand per stage, each a thin wrapper over a library function.

Errors the user can act on are printed as one message, without a traceback, and each kind has its
own exit status (:mod:`qnnflow.errors`): 1 a hardware/software mismatch, 2 bad input, 3 a tool or
flow failure (a tool missing or failing, timing not met, a design that does not fit). A bug in
qnnflow itself exits with 4 and says so, naming the line it came from; its traceback goes to a log.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from qnnflow import errors
from qnnflow.build import STAGES
from qnnflow.config import Board, BuildConfig, SimMode
from qnnflow.errors import FlowError, MismatchError


def cmd_doctor(_args: argparse.Namespace) -> int:
    from qnnflow import toolchain

    missing = 0
    print(toolchain.mode())
    for name, tool, note in toolchain.doctor():
        if tool is None:
            missing += 1
            print(f"  {name:<14} MISSING  {note}")
        else:
            print(f"  {name:<14} {tool.version:<22} {tool.path}  ({note})")
    import platform

    print(f"  {'python':<14} {platform.python_version():<22} {sys.executable}")
    for dist in ("torch", "brevitas", "qonnx", "onnx", "cocotb"):
        try:
            from importlib.metadata import version

            print(f"  {dist:<14} {version(dist)}")
        except Exception:  # noqa: BLE001 - any failure here just means "not installed"
            missing += 1
            print(f"  {dist:<14} MISSING  pip install -c constraints.txt {dist}")
    from qnnflow import sysdeps

    print("what Verilator's builds and the yowasp tools need from this machine:")
    for check in sysdeps.checks():
        missing += not check.ok
        print(f"  {check.name:<14} {'ok' if check.ok else 'MISSING':<22} {check.detail}")
    print("all tools found" if missing == 0 else f"{missing} missing")
    return 0 if missing == 0 else 1


def cmd_train(args: argparse.Namespace) -> int:
    from qnnflow.models import zoo

    if args.list:
        for name in zoo.list_presets():
            print(name)
        return 0
    if args.preset is None:
        raise ValueError("train needs --preset NAME (see `qnnflow train --list`)")
    from qnnflow.models.train import train_and_export

    out = Path(args.out) if args.out else Path("build") / args.preset
    cfg = BuildConfig(
        name=out.name,
        preset=args.preset,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        dataset=args.dataset,
        seed=args.seed,
        epochs=args.epochs,
    ).replace(**_method_options(args))
    metrics = train_and_export(cfg, out, force=args.force)
    print(
        f"{cfg.preset}: test accuracy {metrics['test_accuracy']:.4f} "
        f"(float baseline {metrics.get('float_test_accuracy', float('nan')):.4f}) -> {out}"
    )
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """All stages in order; stops at the first stage that fails.

    Settings: the built-in defaults, then ``--config FILE.toml``, then the options given."""
    from qnnflow.build import run_build

    cfg = BuildConfig.load(args.config) if args.config else BuildConfig()
    given = {
        "preset": args.preset,
        "data_dir": Path(args.data_dir) if args.data_dir else None,
        "dataset": args.dataset,
        "board": Board(args.board) if args.board else None,
        "clock_mhz": args.clock_mhz,
        "seed": args.seed,
        "epochs": args.epochs,
        "target_cycles": args.target_cycles,
        "target_fps": args.target_fps,
        "sim_mode": SimMode(args.sim_mode) if args.sim_mode else None,
        "uart_baud": args.baud,
        "system_tools": True if args.system_tools else None,
        **_method_options(args),
    }
    cfg = cfg.replace(**{k: v for k, v in given.items() if v is not None})
    out = Path(args.out) if args.out else Path("build") / cfg.name
    cfg = cfg.replace(name=out.name)
    done = run_build(cfg, out, until=args.until)
    times = ", ".join(f"{name} {secs:.1f} s" for name, _summary, secs in done)
    report = out / "report.md"
    print(f"build complete ({times})" + (f"; report: {report}" if report.is_file() else ""))
    return 0


def cmd_bitstream(args: argparse.Namespace) -> int:
    from qnnflow.flows.implement import bitstream_stage
    from qnnflow.flows.report import summary

    report = bitstream_stage(
        args.build_dir, Board(args.board), args.clock_mhz, xilinx=not args.no_xilinx, baud=args.baud
    )
    print(summary(report))
    print(f"report: {Path(args.build_dir) / 'report.md'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from qnnflow.host import run_board

    result = run_board(
        args.build_dir, args.port, inputs=args.inputs, labels=args.labels, baud=args.baud, limit=args.limit
    )
    for key, value in result.items():
        print(f"  {key:<20} {value}")
    return 0 if result["answered"] == result["frames"] else 1


def cmd_boundary(args: argparse.Namespace) -> int:
    from qnnflow.models.boundary_report import run_from_args

    result = run_from_args(
        args.build_dir,
        out=args.out,
        reference=args.reference,
        bits=args.bits,
        granularities=args.granularity,
        grid=args.grid,
        rounding_bits=args.rounding_bits,
        rounding_steps=args.rounding_steps,
        compare=args.compare,
        data_dir=args.data_dir,
    )
    from qnnflow.models.boundary_report import PAPER_CITATION

    print(f"against the figures of {PAPER_CITATION}:")
    for row in result["paper_comparison"]:
        paper, measured = _fmt(row["paper"]), _fmt(row["measured"])
        print(f"  {row['figure']}: paper {paper}, measured {measured} {row['note']}")
    return 0


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def cmd_compile(args: argparse.Namespace) -> int:
    import numpy as np

    from qnnflow.flows.compile import compile_model
    from qnnflow.flows.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.steps import CompileOptions, OutputMode

    target_cycles = args.target_cycles
    given = (args.target_cycles, args.target_fps, args.lut_budget, args.bram_budget, args.folding)
    default = all(v is None for v in given)
    if default:  # the build's default for the family, so that `compile` alone gives what `build` gives
        target_cycles = DEFAULT_TARGET_CYCLES[args.family]
        print(
            f"no folding target given: folding for {target_cycles:,} cycles per frame (the {args.family} default; "
            "--target-cycles N, --target-fps F, --lut-budget N or --folding FILE to choose)"
        )
    opts = CompileOptions(
        default_target=default,
        target_cycles=target_cycles,
        target_fps=args.target_fps,
        clock_mhz=args.clock_mhz,
        lut_budget=args.lut_budget,
        bram_budget=args.bram_budget,
        family=args.family,
        folding=Path(args.folding) if args.folding else None,
        output=OutputMode.LOGITS if args.logits else OutputMode.LABELS,
        input_grid=args.input_grid,
    )
    out = Path(args.out) if args.out else Path("build") / Path(args.model).stem
    labels = None
    if args.labels:
        if not Path(args.labels).is_file():
            raise FileNotFoundError(f"labels not found: {args.labels}")
        labels = np.load(args.labels)
    result = compile_model(args.model, out, inputs=args.inputs, opts=opts, labels=labels)
    if result.accuracy is not None:
        print(f"accuracy of the dataflow graph: {result.accuracy:.4f} on {len(labels)} labelled inputs")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """Exit status 1 when any hardware output differs from the dataflow graph's execution, or any
    hardware decision on a boundary probe from the source model's."""
    from qnnflow.sim.stitch import check_boundary, simulate

    if args.boundary_probes < 0:
        raise ValueError(f"--boundary-probes must not be negative, not {args.boundary_probes}")
    mode = SimMode(args.mode)
    if args.stalls and mode is not SimMode.BATCH:
        raise ValueError("--stalls is for batch mode (cocotb mode always applies random stalls)")
    results = simulate(
        args.build_dir, inputs=args.inputs, labels=args.labels, mode=mode, frames=args.frames, seed=args.seed,
        stalls=args.stalls,
    )  # fmt: skip
    print(f"results: {Path(results['results_dir']) / 'results.json'}")
    bad = results["mismatches"]
    if args.boundary_probes and mode is SimMode.BATCH:
        b = check_boundary(args.build_dir, inputs=args.inputs, pairs=args.boundary_probes)
        print(f"boundary check: {Path(b['results_dir']) / 'boundary.json'}")
        bad += b["mismatches"]
    return errors.EXIT_OK if bad == 0 else errors.EXIT_MISMATCH


def cmd_lint_rtl(args: argparse.Namespace) -> int:
    """Lint and elaborate the RTL library; one line per module, exit status 1 if any fails."""
    from qnnflow.sim.lint import lint_rtl

    reports = lint_rtl(args.modules or None, synth=not args.no_synth)
    failed = [r.module for r in reports if not r.ok]
    print(
        f"{len(reports) - len(failed)}/{len(reports)} modules ok" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def _add_method_args(p: argparse.ArgumentParser) -> None:
    """The training method and its parameters (BuildConfig fields method, ana_*)."""
    from qnnflow.config import ANANoise, ANASchedule, ANAStrategy, TrainMethod

    g = p.add_argument_group("training method")
    g.add_argument(
        "--method",
        choices=[m.value for m in TrainMethod],
        help="ste: Brevitas QAT (default); ana: additive noise annealing (a <topology>-wtat preset); "
        "stochastic-binary: stochastic-rounding bipolar weights (a <topology>-w1a<A> preset)",
    )
    g.add_argument("--ana-noise", choices=[m.value for m in ANANoise], help="ANA noise family (default uniform)")
    g.add_argument("--ana-strategy", choices=[m.value for m in ANAStrategy], help="ANA forward (default expectation)")
    g.add_argument("--ana-schedule", choices=[m.value for m in ANASchedule], help="ANA schedule (default linear)")
    g.add_argument("--ana-s-forward", type=float, help="ANA initial forward noise width (default 0.5)")
    g.add_argument("--ana-s-backward", type=float, help="ANA backward width (default 0.5: the clipped STE window)")
    g.add_argument(
        "--ana-t-decay", type=int, help="ANA epochs per layer group's anneal (default: groups share 3/4 of the epochs)"
    )
    g.add_argument("--ana-alpha", type=float, help="ANA window schedules' exponent (default 1)")
    g.add_argument("--ana-simultaneous", action="store_true", help="ANA: anneal all layer groups together")


def _method_options(args: argparse.Namespace) -> dict:
    """The method options given on the command line, as BuildConfig fields."""
    from qnnflow.config import ANANoise, ANASchedule, ANAStrategy, TrainMethod

    given = {
        "method": TrainMethod(args.method) if args.method else None,
        "ana_noise": ANANoise(args.ana_noise) if args.ana_noise else None,
        "ana_strategy": ANAStrategy(args.ana_strategy) if args.ana_strategy else None,
        "ana_schedule": ANASchedule(args.ana_schedule) if args.ana_schedule else None,
        "ana_s_forward": args.ana_s_forward,
        "ana_s_backward": args.ana_s_backward,
        "ana_t_decay": args.ana_t_decay,
        "ana_alpha": args.ana_alpha,
        "ana_staggered": False if args.ana_simultaneous else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def cmd_analyze(args: argparse.Namespace) -> int:
    """``qnnflow analyze quasi``: the quasi-network / NTK analysis of binary-weight networks."""
    from qnnflow.models.quasi import run_analysis

    result = run_analysis(
        args.out, widths=args.widths, seeds=args.seeds, samples=args.samples, epochs=args.epochs, data_dir=args.data_dir
    )
    for line in result["summary"]:
        print(f"  {line}")
    print(f"results: {Path(args.out) / 'quasi.json'} (plots beside it)")
    return 0


def _add_data_args(p: argparse.ArgumentParser, dataset: bool = True) -> None:
    from qnnflow.config import DATASETS

    if dataset:
        p.add_argument("--dataset", choices=DATASETS, help="data set to train and test on (default: the preset's)")
    p.add_argument("--data-dir", help="folder with the data set's files (MNIST/Fashion IDX, CIFAR batches)")


def build_parser() -> argparse.ArgumentParser:
    from qnnflow import __version__

    parser = argparse.ArgumentParser(prog="qnnflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qnnflow {__version__}")
    parser.add_argument(
        "--system-tools",
        action="store_true",
        help="use Yosys / nextpnr / Verilator from PATH where new enough, not the pinned wheels (build: system_tools)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="which tools were found, their versions, what is missing")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("train", help="quantization-aware training and QONNX export of a zoo preset")
    p.add_argument("--preset", help="zoo preset, e.g. digits-cnn-w2a2, tfc-w1a1, cnv-w2a2")
    p.add_argument("--out", help="build folder (default build/<preset>)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if the folder is up to date")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    _add_data_args(p)
    _add_method_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compile", help="QONNX model -> folded dataflow graph, verified after every step")
    p.add_argument("model", help="QONNX model (.onnx)")
    p.add_argument("--out", help="build folder (default build/<model name>)")
    p.add_argument("--inputs", help="test inputs (.npy) for step-by-step verification (default: 100 random)")
    p.add_argument("--labels", help="labels (.npy) of the test inputs, to print the accuracy")
    p.add_argument("--target-cycles", type=int, help="cycles per frame to fold for")
    p.add_argument("--target-fps", type=float, help="frames per second at --clock-mhz to fold for")
    p.add_argument("--clock-mhz", type=float, default=50.0)
    p.add_argument("--lut-budget", type=int, help="fold for the highest throughput within this many LUTs")
    p.add_argument("--bram-budget", type=int, help="... and this many block RAMs")
    p.add_argument("--family", choices=["ecp5", "xc7"], default="ecp5", help="family the budget is for")
    p.add_argument("--folding", help="apply this folding.json instead of computing one")
    p.add_argument("--logits", action="store_true", help="output integer logits instead of the class index")
    p.add_argument(
        "--input-grid",
        help="for a model whose float input has no quantizer: the grid its inputs lie on, e.g. pixels (k/255), "
        "uint8 (raw 0..255), bits=8,signed=1,scale=1/128",
    )
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("sim", help="codegen (rtl/) and stitched-accelerator simulation -> sim/results.json")
    p.add_argument("build_dir", help="build folder with dataflow.onnx (from qnnflow compile)")
    p.add_argument("--inputs", help="inputs (.npy, N x model input; default BUILD_DIR/test_inputs.npy)")
    p.add_argument("--labels", help="labels (.npy; default BUILD_DIR/test_labels.npy if present)")
    p.add_argument(
        "--mode",
        choices=[m.value for m in SimMode],
        default=SimMode.BATCH.value,
        help="batch: Verilator C++ harness, whole test sets; cocotb: random stalls, a few frames",
    )
    p.add_argument("--frames", type=int, help="simulate only the first N inputs (default: all; cocotb: 8)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random stalls (cocotb mode, --stalls)")
    p.add_argument(
        "--stalls",
        action="store_true",
        help="batch mode with random input idles and output backpressure (results in sim/runs/)",
    )
    p.add_argument(
        "--boundary-probes",
        type=int,
        default=100,
        metavar="PAIRS",
        help="batch mode: also simulate 2 x PAIRS inputs on the software decision boundary (default 100; 0: off)",
    )
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("bitstream", help="Yosys + nextpnr + pack with the UART board top; report.json / report.md")
    p.add_argument("build_dir")
    p.add_argument("--board", choices=[b.value for b in Board], default=Board.ULX3S_85F.value)
    p.add_argument("--clock-mhz", type=float, default=50.0)
    p.add_argument("--no-xilinx", action="store_true", help="skip the Yosys synth_xilinx xc7z020 estimate")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate of the board top (default 115200)")
    p.set_defaults(func=cmd_bitstream)

    p = sub.add_parser("boundary", help="decision-boundary geometry of PTQ-W, learned rounding, QAT models")
    p.add_argument("build_dir", help="build folder written by `qnnflow train` (config.toml, float_model.pt)")
    p.add_argument("--out", help="output folder (default BUILD_DIR/boundary)")
    p.add_argument(
        "--reference",
        choices=["float", "mlp"],
        default="float",
        help="float: the build's float twin; mlp: a D-64-10 float MLP trained here",
    )
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8], help="PTQ-W widths")
    p.add_argument(
        "--granularity", nargs="+", choices=["per-tensor", "per-channel"], default=["per-tensor", "per-channel"]
    )
    p.add_argument("--grid", type=int, default=160, help="PCA-slice cells per side")
    p.add_argument("--rounding-bits", type=int, default=4)
    p.add_argument("--rounding-steps", type=int, default=2000)
    p.add_argument("--compare", nargs="*", default=[], help="more build folders whose model.pt to measure")
    _add_data_args(p, dataset=False)
    p.set_defaults(func=cmd_boundary)

    p = sub.add_parser("build", help="all stages in order (what `make bitstream` runs)")
    p.add_argument("--config", help="build config (TOML, the fields of config.toml); options given override it")
    p.add_argument("--preset", help="zoo preset (default digits-cnn-w2a2)")
    p.add_argument("--out", help="build folder (default build/<config name>, i.e. build/digits)")
    p.add_argument("--board", choices=[b.value for b in Board], help="target board (default ulx3s-85f)")
    p.add_argument("--clock-mhz", type=float, help="accelerator clock (default 50)")
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    p.add_argument("--target-cycles", type=int, help="cycles per frame to fold for (default: per board family)")
    p.add_argument("--target-fps", type=float, help="frames per second at --clock-mhz to fold for")
    p.add_argument("--sim-mode", choices=[m.value for m in SimMode], help="simulation stage mode (default batch)")
    p.add_argument("--until", choices=[s.name for s in STAGES], help="stop after this stage")
    p.add_argument("--baud", type=int, help="UART baud rate of the board top (default 115200)")
    _add_data_args(p)
    _add_method_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="send the test inputs to a programmed board over its UART; accuracy, images/s")
    p.add_argument("build_dir")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1 (iCEBreaker: the second FTDI channel)")
    p.add_argument("--baud", type=int, help="the board top's baud rate (default: the build's report.json, else 115200)")
    p.add_argument("--inputs", help="inputs (.npy; default BUILD_DIR/test_inputs.npy)")
    p.add_argument("--labels", help="labels (.npy; default BUILD_DIR/test_labels.npy)")
    p.add_argument("--limit", type=int, help="send only the first N inputs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("lint-rtl", help="verilator --lint-only -Wall and Yosys elaboration + synth_ecp5 of hw/")
    p.add_argument("modules", nargs="*", help="modules to check (default: every module in hw/)")
    p.add_argument("--no-synth", action="store_true", help="Yosys read and elaborate only, no synth_ecp5")
    p.set_defaults(func=cmd_lint_rtl)

    p = sub.add_parser("analyze", help="analyses of the training methods' papers (quasi: binary-weight NTK)")
    asub = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    q = asub.add_parser("quasi", help="quasi network vs Monte-Carlo binary nets, NTK spectra, generalization gaps")
    q.add_argument("--out", default="build/quasi", help="output folder (quasi.json and PNG plots)")
    q.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64, 256, 1024], help="hidden widths")
    q.add_argument("--seeds", type=int, default=3, help="seeds per width for the generalization gaps")
    q.add_argument("--samples", type=int, default=2000, help="Monte-Carlo binary networks per width")
    q.add_argument("--epochs", type=int, default=40, help="training epochs of the generalization-gap MLPs")
    _add_data_args(q, dataset=False)
    q.set_defaults(func=cmd_analyze)
    return parser


# the package's own source folders: an error raised from code here is one of its deliberate messages
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_OWN = tuple(str(_PACKAGE_ROOT / layer) for layer in ("qnnflow", "flows", "sim", "models", "hw"))


def _raised_here(err: BaseException) -> bool:
    """True when ``err`` is one of qnnflow's own messages for the user: raised by a ``raise``
    statement in the package's code. The same exception type raised by Python itself (a bug's
    ``float(None)``) or inside a library that qnnflow should have guarded is an internal error."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return last.filename.startswith(_OWN) and (last.line or "").lstrip().startswith("raise")


def _internal_error(command: str, err: BaseException) -> int:
    import tempfile
    import time
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if f.filename.startswith(_OWN)]
    where = own[-1] if own else (frames[-1] if frames else None)
    at = ""
    if where is not None:
        name = Path(where.filename)
        name = name.relative_to(_PACKAGE_ROOT) if where.filename.startswith(_OWN) else name
        at = f" at {name}:{where.lineno} in {where.name}"
    log = Path(tempfile.gettempdir()) / f"qnnflow-{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    log.write_text("".join(traceback.format_exception(err)))
    print(
        f"qnnflow {command}: internal error (a bug in qnnflow, not in your input): "
        f"{type(err).__name__}: {err}{at}\n  traceback: {log}",
        file=sys.stderr,
    )
    return errors.EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.system_tools:
        from qnnflow import toolchain

        toolchain.use_system_tools(True)
    try:
        return args.func(args)
    except MismatchError as err:
        print(f"qnnflow {args.command}: mismatch: {err}", file=sys.stderr)
        return errors.EXIT_MISMATCH
    except FlowError as err:
        print(f"qnnflow {args.command}: error: {err}", file=sys.stderr)
        return errors.EXIT_TOOL
    except (ValueError, TypeError, FileNotFoundError) as err:
        if not _raised_here(err):
            return _internal_error(args.command, err)
        print(f"qnnflow {args.command}: error: {err}", file=sys.stderr)
        return errors.EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"qnnflow {args.command}: interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - anything else is a bug: say so and keep its traceback
        return _internal_error(args.command, err)


if __name__ == "__main__":
    sys.exit(main())
