"""Running a sweep's points on Ray.

Each point is a chain of Ray tasks -- train -> compile -> sim -> implement -- and points that share
a unit share its task (one training for the foldings and boards of a model, one simulation for the
boards of a compiled design). Tasks ask Ray for what they use: one CPU for compilation, simulation
and place and route, ``train_cpus`` for training. A worker that dies (killed, out of memory) has its
task retried by Ray (``max_retries``); what a retried unit finds on disk from the killed attempt is
discarded (:func:`qnnflow.explore.units.run_unit`).

Finished points are appended to ``points.jsonl`` as they finish, so an interrupted sweep (Ctrl-C, a
killed driver) resumes where it stopped: points already recorded are not run again, and units
finished before the interruption are reused from disk.

By default a local Ray instance sized to the machine is started and stopped with the sweep;
``address`` joins a running cluster instead (``ray start --head`` on one machine, ``ray start
--address`` on the others, all seeing the sweep folder at the same path).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from qnnflow.explore import report, results, units
from qnnflow.explore.space import Point, Settings, Space

MAX_RETRIES = 3  # per task, for workers that die; an exception in the task is not retried


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One sweep at a time in a folder: a second one is refused instead of racing on its files."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "explore.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"{out} is in use by another qnnflow explore; wait for it or choose another --out"
            ) from None
        yield


def _check_settings(out: Path, settings: Settings) -> None:
    """Rows of a folder belong to one set of shared settings: refuse to mix two."""
    path = out / "sweep.json"
    mine = {"settings": asdict(settings), "digest": settings.digest()}
    if path.is_file():
        theirs = json.loads(path.read_text())
        if theirs.get("digest") != mine["digest"] and (out / results.POINTS).is_file():
            changed = sorted(k for k, v in mine["settings"].items() if theirs.get("settings", {}).get(k) != v)
            raise ValueError(
                f"{out} holds a sweep with other [explore] settings (changed: {', '.join(changed)}); its rows would "
                "not be comparable: choose another --out, or delete its points.jsonl to start over (its units stay "
                "cached)"
            )
    path.write_text(json.dumps(mine, indent=1))


def _start_ray(address: str | None, workers: int | None) -> bool:
    """Connect to ``address`` or start a local instance; True when this call started it."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        ray.init(address=address, **common)
    else:
        # "local": always a new instance of our own, never a cluster some other process left running
        ray.init(address="local", num_cpus=workers or os.cpu_count(), object_store_memory=256 * 2**20, **common)
    return True


def _check_reachable(address: str) -> None:
    """A ``host:port`` that nothing answers on is bad input: say so at once (Ray itself would retry
    for minutes). Other forms (``auto``, ``ray://...``) are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ValueError(
            f"no Ray cluster answers at {address} ({err.strerror or err}); start one with `ray start --head` "
            "and pass the address it prints, or leave out --address for a local instance"
        ) from None


# -- the tasks (module level, so that Ray can ship them by reference) ------------------------------
def _task(fn: Callable) -> Callable:
    import ray

    return ray.remote(max_retries=MAX_RETRIES)(fn)


def _train(root: str, point: dict, settings: dict, threads: int) -> dict:
    return units.train(Path(root), point, settings, threads)


def _compile(root: str, trained: dict, settings: dict, fold: dict) -> dict:
    return units.compile_(Path(root), trained, settings, fold)


def _sim(root: str, compiled: dict, frames: int) -> dict:
    return units.sim(Path(root), compiled, frames)


def _implement(root: str, simulated: dict, compiled: dict, board: str, clock: float, seed: int) -> dict:
    return units.implement(Path(root), simulated, compiled, board, clock, seed)


def _collect(**records: dict) -> dict:
    return records


class Sweep:
    """A sweep folder with Ray running: :meth:`run` computes points and records them."""

    def __init__(self, space: Space, out: Path, address: str | None = None, workers: int | None = None,
                 progress: Callable[[str], None] = print):  # fmt: skip
        self.space, self.out, self.address, self.workers, self.say = space, Path(out), address, workers, progress
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Sweep:
        if self.address:
            _check_reachable(self.address)  # before anything is written
        self._stack.enter_context(_locked(self.out))
        _check_settings(self.out, self.space.settings)
        if _start_ray(self.address, self.workers):
            import ray

            self._stack.callback(ray.shutdown)
        import ray

        self.remote = {f.__name__: _task(f) for f in (_train, _compile, _sim, _implement)}
        self.remote["_collect"] = ray.remote(num_cpus=0)(_collect)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(self, points: Sequence[Point], order: Sequence[str] | None = None) -> list[dict]:
        """Compute the points not yet recorded; write the tables (rows in ``order``, default the
        space's); return every recorded row of ``points``."""
        order = list(order or [p.name for p in self.space.points])
        done = results.finished(self.out)
        todo = [p for p in points if p.name not in done or done[p.name]["row"]["status"] == "failed"]
        if len(todo) < len(points):
            self.say(f"[explore] {len(points) - len(todo)} of {len(points)} points already done in {self.out}")
        try:
            if todo:
                self._compute(todo)
        finally:
            rows = results.write_tables(self.out, order)
        names = {p.name for p in points}
        return [r for r in rows if r["name"] in names]

    def _submit(self, points: Sequence[Point]) -> dict:
        """One chain of tasks per point, sharing the units points have in common."""
        s = self.space.settings
        sdict, root = asdict(s), str(self.out.resolve())
        trains, compiles, sims, impls, finals = {}, {}, {}, {}, {}
        for p in points:
            pdict = asdict(p)
            tkey = units.content_key("train", units.train_inputs(pdict, sdict))
            if tkey not in trains:
                trains[tkey] = (
                    self.remote["_train"].options(num_cpus=s.train_cpus).remote(root, pdict, sdict, s.train_cpus)
                )
            ckey = (tkey, json.dumps(p.fold(), sort_keys=True))
            if ckey not in compiles:
                compiles[ckey] = self.remote["_compile"].remote(root, trains[tkey], sdict, p.fold())
            refs = {"train": trains[tkey], "compile": compiles[ckey]}
            if s.fidelity in ("sim", "implement"):
                if ckey not in sims:
                    sims[ckey] = self.remote["_sim"].remote(root, compiles[ckey], s.sim_frames)
                refs["sim"] = sims[ckey]
            if s.fidelity == "implement":
                ikey = (ckey, p.board, p.clock_mhz)
                if ikey not in impls:
                    impls[ikey] = self.remote["_implement"].remote(
                        root, sims[ckey], compiles[ckey], p.board, p.clock_mhz, s.pnr_seed
                    )
                refs["implement"] = impls[ikey]
            finals[self.remote["_collect"].remote(**refs)] = p
        return finals

    def _compute(self, points: Sequence[Point]) -> None:
        import ray

        from qnnflow.flows.implement.boards import board_spec

        finals = self._submit(points)
        pending, start, n, ok, failed = list(finals), time.monotonic(), len(finals), 0, 0
        self.say(f"[explore] {n} points to compute on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs); "
                 f"results: {self.out / results.POINTS}")  # fmt: skip
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # a process started with SIGINT ignored (in the background of a script or of a CI job) keeps
            # ignoring it: Ctrl-C and kill -INT do nothing. Say so, since the sweep cannot honour them
            self.say(f"[explore] Ctrl-C (SIGINT) is ignored by this process (it was started so); stop the sweep "
                     f"with kill {os.getpid()} (SIGTERM): the points finished are kept either way")  # fmt: skip
        said = time.monotonic()
        while pending:
            # short waits: Ctrl-C is handled between them, not after a long blocking call
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                p = finals[ref]
                try:
                    recs = ray.get(ref)
                    row, timing = results.make_row(p, board_spec(p.board).family, recs, self.space.settings.fidelity)
                    report.write_point_report(self.out, row, recs)
                    ok += 1
                except (ray.exceptions.RayTaskError, ray.exceptions.RayError) as err:
                    row, timing = _failed_row(p, err), {"name": p.name}
                    failed += 1
                results.append(self.out, row, timing)
                self.say(self._progress(ok + failed, n, failed, start) + "  " + _point_line(row))
                said = time.monotonic()
            if not ready and time.monotonic() - said >= 30:  # a sign of life every 30 s
                self.say(self._progress(ok + failed, n, failed, start) + "  (waiting)")
                said = time.monotonic()

    def _progress(self, done: int, n: int, failed: int, start: float) -> str:
        """Points done / failed / to go, units running now (their markers, this run's), elapsed, ETA."""
        wall = time.time() - (time.monotonic() - start)
        running = sum(1 for m in (self.out / "units").glob("*/*/running.json") if _mtime(m) >= wall)
        elapsed = time.monotonic() - start
        eta = f", ETA {_minutes(elapsed / done * (n - done))}" if done and done < n else ""
        return (f"[explore] {done}/{n} points done, {failed} failed, {running} units running; "
                f"{_minutes(elapsed)} elapsed{eta}")  # fmt: skip


def _failed_row(p: Point, err: Exception) -> dict:
    cause = getattr(err, "cause", None) or err
    msg = str(cause).strip().splitlines()
    error = f"{type(cause).__name__}: {msg[-1] if msg else ''}"
    return {"name": p.name, "topology": p.topology, "precision": p.precision, "method": p.method,
            "folding": p.folding, "target_cycles": p.target_cycles(), "lut_budget": p.lut_budget, "board": p.board,
            "clock_mhz": p.clock_mhz,
            "seed": p.seed, "status": "failed", "error": error}  # fmt: skip


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # the unit finished meanwhile
        return 0.0


def _minutes(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def _point_line(row: dict) -> str:
    if row["status"] == "failed":
        return f"{row['name']}: FAILED: {row['error']}"
    parts = [f"accuracy {row['accuracy']:.4f}"] if row.get("accuracy") is not None else []
    if row.get("luts") is not None:
        parts.append(
            f"{row['luts']:,} LUTs, Fmax {row['fmax_mhz']:.1f} MHz" if row.get("fmax_mhz") else f"{row['luts']:,} LUTs"
        )
    elif row.get("luts_est") is not None:
        parts.append(f"~{row['luts_est']:,} LUT4 (estimate)")
    if row["status"] != "ok":
        parts.append(f"{row['status']}: {row['error']}")
    return f"{row['name']}: {', '.join(parts)}"
