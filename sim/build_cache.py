"""The one Verilator build cache of the simulators: folder locks, content digests, and Verilator's
runtime library shared between builds.

Both Verilator builds of the project use it: the cocotb benches of single modules
(:func:`qnnflow.sim.runner.build`, one folder per module and parameter set) and the C++ batch
harness of a stitched accelerator (:func:`qnnflow.sim.accel.build_batch`, one folder per design).

Verilator's runtime (``verilated*.o``) takes most of a small build's compile time and is the same
for every design built with one toolchain and one set of compiler flags. It is compiled once per
``_runtime/<key>/`` and copied into each new build folder with an mtime ahead of the
Makefiles the verilator run writes again, so that make takes the objects as up to date. The
folder is in the user's cache (:func:`user_cache`), so the stitched simulations, whose builds live
in each build folder, compile it once and not once per folder. Beside it, Verilator's headers
precompiled (:func:`precompiled_header`): parsing them was most of a small model's compile time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def digest(obj: object) -> str:
    """A hex SHA-256 of a JSON-able value (keys sorted; anything else by its str)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing): concurrent builds take turns."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def runtime_dir(cache: Path, **key: object) -> Path:
    """The runtime folder for one toolchain and flag set (``key``: tool path, version, compiler
    flags, tracing...) and the C++ compiler found now (:func:`compiler_id`): in the user's cache
    (:func:`user_cache`), or under ``cache`` (the build's own) when that cannot be written."""
    root = user_cache()
    try:
        root.mkdir(parents=True, exist_ok=True)
        writable = os.access(root, os.W_OK)
    except OSError:
        writable = False
    return (root if writable else Path(cache)) / "_runtime" / digest({**key, "c++": compiler_id()})[:16]


def user_cache() -> Path:
    """The folder shared by every build folder of this user: ``$QNNFLOW_CACHE``, else
    ``$XDG_CACHE_HOME/qnnflow``, else ``~/.cache/qnnflow``. The stitched simulations keep
    Verilator's runtime there (each build folder compiled it again: about 10 CPU seconds)."""
    if os.environ.get("QNNFLOW_CACHE"):
        return Path(os.environ["QNNFLOW_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qnnflow"


@functools.cache
def compiler_id() -> str:
    """The C++ compiler Verilator's makefiles call (``c++`` on PATH): its path and version line,
    so that objects kept for one compiler are never linked by another."""
    cxx = shutil.which("c++")
    if cxx is None:
        return "none"
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False, timeout=60)
    return f"{os.path.realpath(cxx)} {out.stdout.splitlines()[0] if out.stdout else out.returncode}"


# What Verilator's makefiles define for a model without tracing, coverage, SystemC or timing: a
# precompiled header is used only where the macros it saw are defined the same way.
PCH_DEFINES = (
    "-DVERILATOR=1", "-DVM_COVERAGE=0", "-DVM_SC=0", "-DVM_TIMING=0",
    "-DVM_TRACE=0", "-DVM_TRACE_FST=0", "-DVM_TRACE_VCD=0", "-DVM_TRACE_SAIF=0",
)  # fmt: skip
# the optimization levels the builds compile at (the models' OPT_FAST / OPT_SLOW, the mains'
# OPT_GLOBAL): -O and -Os define __OPTIMIZE__ / __OPTIMIZE_SIZE__, so each needs its own header
PCH_LEVELS = ("-O0", "-Os")
# With the header, the model is compiled as one file (``V<top>__ALL.cpp``): a model Verilator
# splits into several files is compiled with its own precompiled header (``V<top>__pch.h``, given
# with -include), and GCC reads one precompiled header per file, so ours would hide that one.
PCH_MAKE = "VM_PARALLEL_BUILDS=0"


def precompiled_header(runtime: Path, cxxflags: str, include: Path, headers: Sequence[str]) -> Path | None:
    """A header that includes Verilator's runtime ``headers``, precompiled for ``cxxflags`` at
    each of :data:`PCH_LEVELS`, kept in the ``runtime`` folder (made once, under its lock).

    Returns the header to pass as ``-include`` (GCC then reads the precompiled form of the matching
    level from the ``.gch`` folder beside it), or None when GCC cannot precompile it (the build then
    parses the headers itself; the failure is kept, so later builds do not try again). Parsing
    ``verilated.h`` is about 2 of the 2.5 CPU seconds a small model's C++ takes, and each build
    compiles two files (the model and its main)."""
    folder = runtime / "pch"
    header = folder / "qnnflow_verilated.h"
    gch = folder / f"{header.name}.gch"
    text = "".join(f'#include "{h}"\n' for h in headers)
    flags = [*cxxflags.split(), f"-I{include}", f"-I{include / 'vltstd'}", *PCH_DEFINES]
    key, done = digest([text, flags]), folder / "done"

    def kept() -> Path | None | bool:  # the header, None after a failure, False when not made yet
        state = done.read_text() if done.is_file() else ""
        return header if state == key else None if state == f"failed {key}" else False

    if (made := kept()) is not False:
        return made
    with locked(folder):
        if (made := kept()) is not False:
            return made
        header.write_text(text)
        gch.mkdir(exist_ok=True)
        for level in PCH_LEVELS:
            tmp = gch / f"{level[1:]}.{os.getpid()}.tmp"  # GCC skips files not named *.gch
            cmd = ["c++", *flags, level, "-x", "c++-header", str(header), "-o", str(tmp)]
            if subprocess.run(cmd, capture_output=True, check=False, timeout=600).returncode != 0:
                tmp.unlink(missing_ok=True)
                done.write_text(f"failed {key}")
                return None
            os.replace(tmp, gch / f"{level[1:]}.gch")
        done.write_text(key)
    return header


def reuse_runtime(runtime: Path, build: Path, names: Sequence[str]) -> None:
    """Copy the kept runtime objects ``names`` into a new ``build`` folder, dated ahead."""
    if not (runtime / names[0]).is_file():  # nothing kept yet: this build makes them
        return
    with locked(runtime):
        for name in names:
            if (runtime / name).is_file() and not (build / name).is_file():
                shutil.copy(runtime / name, build / name)
                ahead = time.time() + 3600
                os.utime(build / name, (ahead, ahead))


def keep_runtime(runtime: Path, build: Path, names: Sequence[str]) -> None:
    """After a successful build: keep its runtime objects for the next builds (first one wins)."""
    with locked(runtime):
        for name in names:
            if (build / name).is_file() and not (runtime / name).is_file():
                tmp = runtime / f"{name}.{os.getpid()}"
                shutil.copy(build / name, tmp)
                os.replace(tmp, runtime / name)
