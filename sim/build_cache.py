"""The one Verilator build cache of the simulators: folder locks, content digests, and Verilator's
runtime library shared between builds.

Both Verilator builds of the project use it: the cocotb benches of single modules
(:func:`qnnflow.sim.runner.build`, one folder per module and parameter set) and the C++ batch
harness of a stitched accelerator (:func:`qnnflow.sim.accel.build_batch`, one folder per design).

Verilator's runtime (``verilated*.o``) takes most of a small build's compile time and is the same
for every design built with one toolchain and one set of compiler flags. It is compiled once per
``<cache>/_runtime/<key>/`` and copied into each new build folder with an mtime ahead of the
Makefiles the verilator run writes again, so that make takes the objects as up to date.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
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
    """The runtime folder under ``cache`` for one toolchain and flag set (``key``: tool path,
    version, compiler flags, tracing...)."""
    return Path(cache) / "_runtime" / digest(key)[:16]


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
