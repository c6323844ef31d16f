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
from qnnflow.config import Board, BuildConfig, Calibration, SimMode
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
        "xilinx_estimate": args.xilinx_estimate,
        "hw_map_grid": args.hw_map,
        "hw_map_stalls": args.hw_map_stalls,
        "calibrate": Calibration(args.calibrate) if args.calibrate else None,
        "cal_jaccard_tol": args.cal_jaccard_tol,
        "cal_flip_tol": args.cal_flip_tol,
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
    from qnnflow.flows.implement.report import summary

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
        jaccard_tol=args.jaccard_tol,
        flip_tol=args.flip_tol,
        wa_sweep=not args.no_wa,
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

    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.finn_folding import resolve_folding
    from qnnflow.flows.compile.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.compile.steps import CompileOptions, OutputMode

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
        minimize_luts=args.minimize_luts,
        folding=resolve_folding(args.folding) if args.folding else None,
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
        "tv_iters": args.tv_iters,
        "tv_gamma": args.tv_gamma,
        "layer_bits": args.layer_bits,
    }
    return {k: v for k, v in given.items() if v is not None}


def cmd_analyze(args: argparse.Namespace) -> int:
    """``qnnflow analyze quasi``: the quasi-network / NTK analysis of binary-weight networks;
    ``qnnflow analyze tv-outliers``: feature-map outliers of builds with and without TV smoothing;
    ``qnnflow analyze pde``: standard vs symmetric residual CNNs (the PDE paper's measurements)."""
    if args.analysis == "pde":
        return _analyze_pde(args)
    if args.analysis == "tv-outliers":
        from qnnflow.models.tv_measure import measure_builds, table

        results = measure_builds(args.builds, args.out)
        for line in table(results):
            print(f"  {line}")
        print(f"results: {args.out}")
        return 0
    from qnnflow.models.quasi import run_analysis

    result = run_analysis(
        args.out, widths=args.widths, seeds=args.seeds, samples=args.samples, epochs=args.epochs, data_dir=args.data_dir
    )
    for line in result["summary"]:
        print(f"  {line}")
    print(f"results: {Path(args.out) / 'quasi.json'} (plots beside it)")
    return 0


def cmd_gcn(args: argparse.Namespace) -> int:
    """``qnnflow gcn``: the symmetric and non-symmetric quantized PDE-GCNs on a graph, trained and measured."""
    from qnnflow.models.gcn_study import parse_bits, run_study

    bits = [parse_bits(b) for b in args.bits]
    out = Path(args.out) if args.out else Path("build") / f"gcn-{args.data}"
    result = run_study(
        args.data, out, bits=bits, width=args.width, layers=args.layers, h=args.h, epochs=args.epochs,
        seed=args.seed, labels_per_class=args.labels_per_class,
    )  # fmt: skip
    for line in result["summary"]:
        print(f"  {line}")
    print(f"results: {out / 'gcn.json'} (gcn_rmse.png, gcn_accuracy.png beside it)")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    """``qnnflow explore``: a design-space sweep (or search) on Ray; the table, fronts and report."""
    from qnnflow.explore import explore, load_space

    space = load_space(args.space)
    if args.list:
        for p in space.points:
            print(p.name)
        for why in space.skipped:
            print(f"left out: {why}")
        return 0
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, not {args.workers}")
    res = explore(space, args.out, address=args.address, workers=args.workers, search=args.search,
                  trials=args.trials, population=args.population)  # fmt: skip
    return 0 if all(r["status"] != "failed" for r in res["rows"]) else errors.EXIT_TOOL


def _analyze_pde(args: argparse.Namespace) -> int:
    from qnnflow.models.pde_study import run_study

    for name in ("digits_bits", "mnist_bits"):
        bad = [b for b in getattr(args, name) if not 2 <= b <= 8]
        if bad:
            raise ValueError(f"--{name.replace('_', '-')}: bit widths 2..8 (the residual stream's), not {bad}")
    record = run_study(
        args.out,
        datasets=tuple(args.datasets),
        bits={"digits": tuple(args.digits_bits), "mnist": tuple(args.mnist_bits)},
        epochs={"digits": args.digits_epochs, "mnist": args.mnist_epochs},
        seed=args.seed,
        data_dir=args.data_dir,
        floats=not args.no_float,
        train_limit={"mnist": args.mnist_train} if args.mnist_train else None,
        tv_iters=args.tv_iters,
    )
    for row in record["tables"]["accuracy"]:
        width = ("float" if row["bits"] is None else f"W{row['bits']}A{row['bits']}") + (" + TV" if row["tv"] else "")
        print(
            f"  {row['dataset']:<7} {width:<6} "
            f"accuracy standard {row['standard_accuracy']:.4f}  symmetric {row['symmetric_accuracy']:.4f}"
        )
    print(f"results: {Path(args.out) / 'pde_study.json'} (plots beside it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from qnnflow.cli_args import build_parser as parser_of

    return parser_of(
        {
            "doctor": cmd_doctor,
            "train": cmd_train,
            "compile": cmd_compile,
            "sim": cmd_sim,
            "bitstream": cmd_bitstream,
            "boundary": cmd_boundary,
            "build": cmd_build,
            "run": cmd_run,
            "lint-rtl": cmd_lint_rtl,
            "analyze": cmd_analyze,
            "gcn": cmd_gcn,
            "explore": cmd_explore,
        },
        description=__doc__.splitlines()[0],
    )


_PACKAGE_ROOT = errors.PACKAGE_ROOT
_OWN = errors.OWN_SOURCES
_raised_here = errors.raised_by_qnnflow


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
