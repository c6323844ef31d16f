"""Build and run the cocotb bench of one RTL module on Verilator, with a build cache.

Each parameter set gets its own build folder, ``<cache_dir>/<module>/<id>/``, where ``<id>`` is a
hash of the HDL parameters (and of the waves option). A stamp in the folder records a hash of the
sources, parameters and Verilator flags; when it matches, the Verilator build is skipped, so a
rerun costs only the simulation. Concurrent runs on the same folder (pytest-xdist) take turns
through a file lock.

Waves: ``waves=True`` builds with tracing (a separate cache folder) and leaves ``dump.fst`` in the
run folder (``dump.vcd`` when the lz4 headers that Verilator's FST writer needs are missing, see
:func:`fst_available`); from a shell, ``python -m qnnflow.sim.runner CASE --waves`` reruns one
bench case (see :mod:`qnnflow.sim.cases`) with waves and prints where they are.

The bench (``qnnflow.sim.tb_<module>``) gets its settings (parameters, seed, case data) from a
JSON file that this runner writes into the run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qnnflow.hw import library as rtl
from qnnflow.sim import build_cache

from qnnflow import toolchain
from qnnflow.errors import FlowError

# the environment variable through which a bench finds its JSON settings (runner -> bench only)
CONFIG_ENV = "QNNFLOW_TB_CONFIG"
# cocotb rewrites the asserts of every module imported after its hook (pattern "*.py"): numpy, qonnx
# and qnnflow were compiled from source in every simulation (with PYTHONDONTWRITEBYTECODE: a skid
# buffer's bench run 2.3 s, 1.2 s without; tests/sim/test_build_cache.py). The benches and their
# stream helpers keep it; a user's own setting of the variable wins.
REWRITE_ENV = "COCOTB_REWRITE_ASSERTION_FILES"
REWRITE_FILES = "tb_*.py streams.py"
# X and uninitialised state become seeded random values at run time, so a missing reset shows up
BUILD_FLAGS = ("--x-assign", "unique", "--x-initial", "unique", "-O2")


def default_cache_dir() -> Path:
    """``build/sim_cache`` under the current directory (pass ``cache_dir`` to choose another)."""
    return Path.cwd() / "build" / "sim_cache"


def sv_literal(value: object) -> str:
    """A Python value as a Verilator ``-G`` value: ints as they are, strings quoted."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    raise TypeError(f"HDL parameter values must be int, bool or str, not {type(value).__name__}")


def build_dir_for(module: str, params: Mapping[str, object], *, waves: bool, cache_dir: Path) -> Path:
    key = build_cache.digest({"module": module, "params": dict(params), "waves": waves})[:16]
    return cache_dir / module / key


@contextlib.contextmanager
def _tool_environ(level: str = "-O0") -> Iterator[None]:
    """os.environ with Verilator's PATH / VERILATOR_ROOT / CXXFLAGS, for cocotb's runner, restored
    after. ``level``: the C++ optimization of the model (see :func:`build`)."""
    env = toolchain.tool_env(toolchain.require("verilator")["verilator"])
    # cocotb's Verilator main loop keeps time in sc_time_stamp(); a model built with
    # VL_TIME_CONTEXT reads the context's time instead, which then never advances (the
    # simulation hangs at 0 ns). The model and its runtime are compiled here, so leave it out.
    env["CXXFLAGS"] = " ".join(f for f in env.get("CXXFLAGS", "").split() if f != "-DVL_TIME_CONTEXT")
    env["CXXFLAGS"] += f" {level}"
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sources_digest(module: str, extra_sources: Sequence[Path] = ()) -> tuple[list[Path], str]:
    # extra_sources: files outside the library (hw/*.sv) to compile as well; a top module that is
    # not a library module (the board top with its accelerator) comes with all its files there
    library = rtl.sources(module) if module in rtl.modules() else []
    files = [Path(f) for f in extra_sources] + library
    return files, build_cache.digest([(f.name, f.read_text()) for f in files])


def build(
    module: str,
    params: Mapping[str, object],
    *,
    cache_dir: Path | None = None,
    waves: bool = False,
    extra_sources: Sequence[Path] = (),
    optimize: bool = False,
) -> Path:
    """Verilate ``module`` with ``params`` unless an up-to-date build exists; return its folder.

    The model's C++ is compiled unoptimized (a module bench's build takes longer than its
    simulation, which Python paces) unless ``optimize`` (-Os: a whole accelerator, whose simulated
    cycles cost more than the build).

    Raises FlowError (with the build log) when Verilator rejects the module, for instance when a
    configuration check fires.
    """
    cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()).resolve()
    bdir = build_dir_for(module, params, waves=waves, cache_dir=cache_dir)
    files, src_digest = _sources_digest(module, extra_sources)
    flags = list(BUILD_FLAGS) + (_trace_flags() if waves else [])
    level = "-Os" if optimize else "-O0"
    stamp = build_cache.digest(
        {"sources": src_digest, "params": dict(params), "flags": flags, "c++": level, "vpi": _public_config(module)}
    )
    stamp_file = bdir / "build.stamp"
    with build_cache.locked(bdir):
        if stamp_file.is_file() and stamp_file.read_text() == stamp and (bdir / module).is_file():
            return bdir
        stamp_file.unlink(missing_ok=True)
        (bdir / "params.json").write_text(json.dumps(dict(params), indent=1, sort_keys=True))
        log = bdir / "build.log"
        runner = _verilator_runner(module)
        runtime = _runtime_dir(cache_dir, waves, level)
        build_cache.reuse_runtime(runtime, bdir, _RUNTIME_OBJECTS)
        try:
            with _tool_environ(level):
                root = os.environ.get("VERILATOR_ROOT")
                if root and not waves:  # a traced model's makefile defines VM_TRACE=1, not the header's
                    cxx = os.environ.get("CXXFLAGS", "")
                    pch = build_cache.precompiled_header(runtime, cxx, Path(root) / "include", _PCH_HEADERS)
                    if pch is not None:  # one file for the model: see build_cache.PCH_MAKE
                        os.environ["CXXFLAGS"] = f"{cxx} -include {pch}"
                        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {build_cache.PCH_MAKE}".strip()
                runner.build(
                    sources=files,
                    hdl_toplevel=module,
                    parameters={k: sv_literal(v) for k, v in params.items()},
                    build_args=flags,
                    build_dir=bdir,
                    waves=waves,
                    timescale=("1ns", "1ps"),
                    log_file=log,
                )
        except (RuntimeError, SystemExit) as err:
            raise FlowError(f"Verilator build of {module} with {dict(params)} failed: {_tail(log)}", log) from err
        stamp_file.write_text(stamp)
        build_cache.keep_runtime(runtime, bdir, _RUNTIME_OBJECTS)
    return bdir


def _public_config(module: str) -> str:
    """A Verilator configuration line: VPI read and write access to the signals of the top module
    ``module``, where cocotb's runner gives it to every signal (``--public-flat-rw``). The benches
    drive and read the top's ports only, and a model whose every signal may change through VPI
    evaluates all its combinational logic after each write: the digits CNN's MACs on every clock
    edge (its board top simulated 69 s against 12.6 s with this line, both unoptimized)."""
    return f'public_flat_rw -module "{module}" -var "*"'


def _verilator_runner(module: str):
    """cocotb's Verilator runner, building with :func:`_public_config` (a ``.vlt`` file in the build
    folder) in place of ``--public-flat-rw``."""
    from cocotb_tools.runner import Verilator

    class TopPublicVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate = cmds[0]
            if "--public-flat-rw" not in verilate:  # the pinned cocotb's runner has it
                raise AssertionError(f"cocotb's Verilator build no longer passes --public-flat-rw: {verilate}")
            vlt = Path(self.build_dir) / "public.vlt"
            vlt.write_text(f"`verilator_config\n{_public_config(module)}\n")
            verilate[verilate.index("--public-flat-rw")] = str(vlt)
            return cmds

    return TopPublicVerilator()


# the runtime objects of a cocotb build (kept per cache folder, toolchain and trace setting)
_RUNTIME_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_threads.o", "verilated_dpi.o", "verilated_fst_c.o")


# what cocotb's main for Verilator includes besides the model
_PCH_HEADERS = ("verilated.h", "verilated_dpi.h", "verilated_vpi.h")


def _runtime_dir(cache_dir: Path, waves: bool, level: str) -> Path:
    tool = toolchain.find("verilator")
    with _tool_environ(level):
        cxx = os.environ.get("CXXFLAGS", "")
    return build_cache.runtime_dir(cache_dir, verilator=str(tool.path), version=tool.version, cxx=cxx, waves=waves)


@functools.cache
def fst_available() -> bool:
    """Verilator's FST writer needs the lz4 headers (``liblz4-dev``); without them waves are VCD."""
    probe = subprocess.run(
        ["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n", capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def _trace_flags() -> list[str]:
    return ["--trace-fst", "--trace-structs"] if fst_available() else ["--trace", "--trace-structs"]


def wave_file_name() -> str:
    """``dump.fst``, or ``dump.vcd`` where the FST writer cannot be compiled (see :func:`fst_available`)."""
    return "dump.fst" if fst_available() else "dump.vcd"


def _tail(log: Path, lines: int = 12) -> str:
    if not log.is_file():
        return "(no log)"
    text = log.read_text(errors="replace").splitlines()
    picked = [ln for ln in text if "%Error" in ln or "%Warning-USER" in ln] or text[-lines:]
    return "\n".join(picked[:lines])


@dataclass(frozen=True)
class BenchRun:
    """Where a bench ran and what it reported."""

    run_dir: Path
    log: Path
    results: Path
    seed: int
    tests: int
    failures: int
    report: dict


def run_bench(
    module: str,
    params: Mapping[str, object],
    *,
    seed: int,
    config: Mapping[str, object] | None = None,
    files: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    waves: bool = False,
    bench: str | None = None,
    check: bool = True,
    extra_sources: Sequence[Path] = (),
    optimize: bool = False,
) -> BenchRun:
    """Build (if needed) and simulate the bench of ``module`` with HDL ``params``.

    ``config`` is passed to the bench as JSON (with ``params`` and ``seed`` added); ``files``
    (name -> text) are written into the run folder first (memory files named by relative paths
    in ``params``). The bench writes a JSON report (``report.json``) that is returned. With
    ``check``, a failing bench raises AssertionError naming the seed, the log and how to get
    waves.
    """
    bdir = build(module, params, cache_dir=cache_dir, waves=waves, extra_sources=extra_sources, optimize=optimize)
    run_dir = bdir / "run"
    log = run_dir / "sim.log"
    results = run_dir / "results.xml"
    with build_cache.locked(bdir):
        cfg = {"module": module, "params": dict(params), "seed": seed, **dict(config or {})}
        cfg_path = _prepare_run_dir(run_dir, files or {}, cfg)
        _run_test(
            module, bench or f"qnnflow.sim.tb_{module}", bdir, run_dir,
            seed=seed, cfg_path=cfg_path, waves=waves, log=log, results=results,
        )  # fmt: skip
        tests, failures = _count_results(results)
        report_path = run_dir / "report.json"
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    run = BenchRun(run_dir, log, results, seed, tests, failures, report)
    if check and (tests == 0 or failures):
        hint = "rerun with waves: run_bench(..., waves=True) or `python -m qnnflow.sim.runner CASE --waves`"
        raise AssertionError(
            f"bench {module} failed {failures} of {tests} tests; seed {seed}; params {dict(params)}; "
            f"log {log}\n{_failure_lines(log)}\n{hint}"
        )
    return run


def _prepare_run_dir(run_dir: Path, files: Mapping[str, str], cfg: dict) -> Path:
    """The run folder without a previous run's outputs, with ``files`` and the bench's settings
    (``tb_config.json``, whose path is returned) written into it."""
    run_dir.mkdir(exist_ok=True)
    for name in ("report.json", "results.xml", "dump.fst", "dump.vcd"):
        (run_dir / name).unlink(missing_ok=True)
    for name, text in files.items():
        (run_dir / name).write_text(text)
    cfg_path = run_dir / "tb_config.json"
    cfg_path.write_text(json.dumps(cfg, sort_keys=True))
    return cfg_path


def _run_test(
    module: str,
    test_module: str,
    bdir: Path,
    run_dir: Path,
    *,
    seed: int,
    cfg_path: Path,
    waves: bool,
    log: Path,
    results: Path,
) -> None:
    """cocotb's runner: the bench ``test_module`` on the build in ``bdir``, run in ``run_dir``. A
    crashed simulator is not raised here: the caller reads it from the (missing) results."""
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    with _tool_environ(), _no_pytest_marker():
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=module,
                hdl_toplevel_lang="verilog",
                build_dir=bdir,
                test_dir=run_dir,
                seed=seed,
                extra_env={CONFIG_ENV: str(cfg_path), REWRITE_ENV: os.environ.get(REWRITE_ENV, REWRITE_FILES)},
                waves=waves,
                results_xml=str(results),
                plusargs=["+verilator+rand+reset+2", f"+verilator+seed+{seed % (1 << 31) + 1}"],
                log_file=log,
            )
        except SystemExit:
            pass  # a crashed simulator: reported by the caller from the (missing) results


@contextlib.contextmanager
def _no_pytest_marker() -> Iterator[None]:
    """cocotb's runner exits the process on failures when it sees PYTEST_CURRENT_TEST; we would
    rather read the results ourselves and raise an error with the seed in it."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def _count_results(path: Path) -> tuple[int, int]:
    if not path.is_file():
        return 0, 0
    root = ET.parse(path).getroot()
    tests = failures = 0
    for case in root.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failures += 1
    return tests, failures


def _failure_lines(log: Path, limit: int = 30) -> str:
    if not log.is_file():
        return "(no simulation log)"
    lines = log.read_text(errors="replace").splitlines()
    keep = [ln for ln in lines if "FAIL" in ln or "Error" in ln or "assert" in ln.lower() or "mismatch" in ln]
    return "\n".join(keep[-limit:]) or "\n".join(lines[-limit:])


def main(argv: list[str] | None = None) -> int:
    """``python -m qnnflow.sim.runner CASE [--seed N] [--waves]``: rerun one bench case."""
    from qnnflow.sim import cases

    parser = argparse.ArgumentParser(prog="python -m qnnflow.sim.runner", description=main.__doc__)
    parser.add_argument("case", nargs="?", help="case id such as mvau/pe4-simd2-w2a2 (`--list` shows them)")
    parser.add_argument("--seed", type=int, help="seed (default: the case's own)")
    parser.add_argument("--waves", action="store_true", help="record FST waves (dump.fst in the run folder)")
    parser.add_argument("--cache-dir", type=Path, help="build cache folder (default build/sim_cache)")
    parser.add_argument("--list", action="store_true", help="list the case ids and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case in cases.all_cases():
            print(case.full_id)
        return 0
    if args.case is None:
        parser.error("give a case id (`--list` shows them)")
    case = cases.by_id(args.case)
    run = case.run(seed=args.seed, waves=args.waves, cache_dir=args.cache_dir, check=False)
    print(f"{case.full_id}: {run.tests - run.failures}/{run.tests} passed, seed {run.seed}, log {run.log}")
    if args.waves:
        print(f"waves: {run.run_dir / wave_file_name()}")
    return 0 if run.tests and not run.failures else 1


if __name__ == "__main__":
    sys.exit(main())
