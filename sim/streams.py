"""Stream drivers and the shared bench harness for the cocotb benches of ``hw/`` modules.

Beats are Python ints (the whole ``tdata`` word; pack elements with
:func:`qnnflow.flows.codegen.memfiles.pack`). One clocked loop serves every source and sink of a bench:
right after a rising edge it drives ``tvalid``/``tdata`` and ``tready`` for the coming cycle, then
in the read-only phase it samples which handshakes will happen at the next edge. Several streams
may share one packed bus (``s_axis_tvalid[LANES-1:0]``, lane i's data at ``tdata[i*W +: W]``),
as in ``add_streams`` and ``duplicate_streams``.

Traffic (:class:`Traffic`): no stalls, random input idles (a source holds ``tvalid`` low between
beats), or random output backpressure (a sink holds ``tready`` low). A source never drops
``tvalid`` once raised until the beat is taken, as AXI-Stream requires.

Why not cocotbext-axi's AxiStreamSource / AxiStreamSink (the project used to list it and never
imported it): two things the benches check do not fit it. Several streams share one packed bus
with one ``tvalid`` / ``tready`` bit per lane (``add_streams``, ``duplicate_streams``), where
cocotbext-axi drives one handshake per bus; and the frame period is checked to the cycle against
each module's formula, which needs the cycle of every accepted beat (:class:`Sink` stamps each),
where cocotbext-axi reports whole frames with their start and end times. Both would have to be
rebuilt on top of it, so the benches keep this one small clocked loop instead.
"""

from __future__ import annotations

import enum
import json
import os
import random
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from qnnflow.sim.runner import CONFIG_ENV

CLOCK_NS = 10


class Traffic(enum.Enum):
    NO_STALLS = "no-stalls"
    INPUT_IDLES = "input-idles"
    BACKPRESSURE = "backpressure"


def load_config() -> dict:
    """The settings the runner wrote for this bench (parameters, seed, case data)."""
    return json.loads(Path(os.environ[CONFIG_ENV]).read_text())


def write_report(key: str, value: object) -> None:
    """Add ``key: value`` to ``report.json`` in the run folder (read back by the runner)."""
    path = Path(os.environ[CONFIG_ENV]).parent / "report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report[key] = value
    path.write_text(json.dumps(report, indent=1, sort_keys=True))


class _Bus:
    """``<prefix>_tdata/tvalid/tready`` of ``lanes`` streams of ``width`` data bits each."""

    def __init__(self, dut, prefix: str, lanes: int, width: int):
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.lanes = lanes
        self.width = width
        self.mask = (1 << width) - 1

    def bits(self, handle) -> int:
        return int(handle.value)

    def lane_bit(self, word: int, lane: int) -> bool:
        return bool((word >> lane) & 1)


@dataclass
class _SourceLane:
    queue: deque = field(default_factory=deque)
    current: int | None = None
    sent: int = 0


class Source:
    """Drives an input bus: beats queued per lane, sent in order, idles between beats on request."""

    def __init__(self, dut, prefix: str = "s_axis", *, width: int, lanes: int = 1):
        self.bus = _Bus(dut, prefix, lanes, width)
        self.lanes = [_SourceLane() for _ in range(lanes)]
        self.idle_prob = 0.0
        self.rng = random.Random(0)
        self.bus.valid.value = 0
        self.bus.data.value = 0

    def send(self, beats: list[int], lane: int = 0) -> None:
        words = [int(b) for b in beats]
        wide = [w for w in words if not 0 <= w <= self.bus.mask]
        if wide:
            raise ValueError(f"beat {wide[0]:#x} does not fit the {self.bus.width}-bit lane {lane} of the input bus")
        self.lanes[lane].queue.extend(words)

    @property
    def idle(self) -> bool:
        return all(ln.current is None and not ln.queue for ln in self.lanes)

    def drive(self) -> None:
        valid = data = 0
        for i, ln in enumerate(self.lanes):
            if ln.current is None and ln.queue and self.rng.random() >= self.idle_prob:
                ln.current = ln.queue.popleft()
            if ln.current is not None:
                valid |= 1 << i
                data |= ln.current << (i * self.bus.width)
        self.bus.valid.value = valid
        self.bus.data.value = data

    def sample(self, cycle: int) -> None:
        ready = self.bus.bits(self.bus.ready)
        for i, ln in enumerate(self.lanes):
            if ln.current is not None and (ready >> i) & 1:
                ln.current = None
                ln.sent += 1


class Sink:
    """Takes beats from an output bus; records (cycle, beat) per lane; backpressure on request."""

    def __init__(self, dut, prefix: str = "m_axis", *, width: int, lanes: int = 1):
        self.bus = _Bus(dut, prefix, lanes, width)
        self.received: list[list[tuple[int, int]]] = [[] for _ in range(lanes)]
        self.ready_prob = 1.0
        self.rng = random.Random(1)
        self._ready = 0
        self.bus.ready.value = 0

    def drive(self) -> None:
        ready = 0
        for i in range(self.bus.lanes):
            if self.rng.random() < self.ready_prob:
                ready |= 1 << i
        self._ready = ready
        self.bus.ready.value = ready

    def sample(self, cycle: int) -> None:
        valid = self.bus.bits(self.bus.valid) & self._ready
        if not valid:
            return
        data = self.bus.bits(self.bus.data)
        for i in range(self.bus.lanes):
            if (valid >> i) & 1:
                self.received[i].append((cycle, (data >> (i * self.bus.width)) & self.bus.mask))

    def count(self, lane: int = 0) -> int:
        return len(self.received[lane])

    def clear(self) -> None:
        for lane in self.received:
            lane.clear()


class Bench:
    """Clock, reset, sources and sinks of one DUT, and one loop that serves them every cycle."""

    def __init__(self, dut, sources: list[Source], sinks: list[Sink], *, seed: int):
        self.dut = dut
        self.sources = sources
        self.sinks = sinks
        self.seed = seed
        self.cycle = 0
        self._loop = None

    async def start(self, traffic: Traffic, *, idle_prob: float = 0.3, ready_prob: float = 0.6) -> None:
        """Start the clock, reset the DUT for a few cycles, and set the traffic mode."""
        rng = random.Random(f"{self.seed}-{traffic.value}")
        for src in self.sources:
            src.rng = random.Random(rng.getrandbits(64))
            src.idle_prob = idle_prob if traffic is Traffic.INPUT_IDLES else 0.0
        for snk in self.sinks:
            snk.rng = random.Random(rng.getrandbits(64))
            snk.ready_prob = ready_prob if traffic is Traffic.BACKPRESSURE else 1.0
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        self.dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self._loop = cocotb.start_soon(self._serve())

    async def _serve(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1
            for src in self.sources:
                src.drive()
            for snk in self.sinks:
                snk.drive()
            await ReadOnly()
            # the handshakes sampled here complete at the next rising edge
            for src in self.sources:
                src.sample(self.cycle)
            for snk in self.sinks:
                snk.sample(self.cycle)

    async def wait_for(self, counts: list[list[int]], *, timeout: int) -> None:
        """Run until sink k lane i has ``counts[k][i]`` beats and every source is empty.

        Fails after ``timeout`` cycles, and also if a sink got more beats than expected
        (a duplicated beat) within a few cycles after that."""
        start = self.cycle
        while True:
            await RisingEdge(self.dut.clk)
            done = all(
                snk.count(i) >= n
                for snk, lane_counts in zip(self.sinks, counts, strict=True)
                for i, n in enumerate(lane_counts)
            )
            if done and all(src.idle for src in self.sources):
                break
            if self.cycle - start >= timeout:
                have = [[snk.count(i) for i in range(len(c))] for snk, c in zip(self.sinks, counts, strict=True)]
                raise AssertionError(
                    f"timeout after {timeout} cycles: sinks have {have} of {counts} beats, "
                    f"sources idle: {[src.idle for src in self.sources]} (seed {self.seed})"
                )
        for _ in range(8):
            await RisingEdge(self.dut.clk)
        for snk, lane_counts in zip(self.sinks, counts, strict=True):
            for i, n in enumerate(lane_counts):
                assert snk.count(i) == n, f"sink lane {i} got {snk.count(i)} beats, expected {n} (seed {self.seed})"


def beats(values, width: int, per_beat: int, *, signed: bool, bipolar: bool = False, port: str = "stream") -> list[int]:
    """Values (any shape, stream order) -> beats of ``per_beat`` elements of ``width`` bits.

    Every value must fit the port's element type (``width``-bit two's complement if ``signed``,
    else unsigned; -1 / +1 if ``bipolar``): nothing is wrapped, so an expected value that a too
    narrow port or accumulator could not carry is reported (ValueError naming ``port``, the
    element and the range) instead of being compared modulo 2^width. That is a bench or
    configuration error, not a hardware mismatch. See :func:`qnnflow.flows.codegen.memfiles.pack`."""
    import numpy as np
    from qnnflow.flows.codegen import memfiles
    from qnnflow.flows.ir import kernels

    v = np.asarray(values, dtype=np.int64).reshape(-1, per_beat)
    if bipolar:
        bad = np.flatnonzero(np.abs(v.reshape(-1)) != 1)
        kind = "bipolar (-1 or +1)"
    else:
        lo, hi = kernels.value_range(width, signed)
        bad = np.flatnonzero((v.reshape(-1) < lo) | (v.reshape(-1) > hi))
        kind = f"{width}-bit {'signed' if signed else 'unsigned'} [{lo}, {hi}]"
    if len(bad):
        flat = v.reshape(-1)
        first = int(bad[0])
        raise ValueError(
            f"{port}: {len(bad)} of {flat.size} values do not fit {kind}, the first element {first} "
            f"(beat {first // per_beat}) = {int(flat[first])}, all in [{int(flat.min())}, {int(flat.max())}]: "
            f"the port (or the accumulator behind it) is too narrow for this case -- a bench or configuration error"
        )
    return memfiles.pack(v, width, signed=signed, bipolar=bipolar)


def frame_interval(cycles: list[int], beats_per_frame: int) -> float:
    """Mean cycles between the last beats of consecutive frames (the steady-state frame period)."""
    ends = cycles[beats_per_frame - 1 :: beats_per_frame]
    if len(ends) < 2:
        raise ValueError("need at least two frames to measure a frame period")
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def check_beats(got: list[int], want: list[int], *, what: str, seed: int, limit: int = 5) -> None:
    """Assert that ``got`` equals ``want`` beat for beat; the message lists the first mismatches."""
    assert len(got) == len(want), f"{what}: {len(got)} beats, expected {len(want)} (seed {seed})"
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    if bad:
        shown = ", ".join(f"beat {i}: got {got[i]:#x} want {want[i]:#x}" for i in bad[:limit])
        raise AssertionError(f"{what}: {len(bad)} mismatching beats of {len(want)}: {shown} (seed {seed})")


@dataclass
class Stimulus:
    """One bench run's data: input beats per source and lane, expected output beats per sink and
    lane, and the frame period expected without stalls (``formula`` cycles, ``slack`` allowed)."""

    inputs: list[list[list[int]]]
    expect: list[list[list[int]]]
    beats_per_frame: int  # of sink 0 lane 0
    formula: float
    slack: float = 0.0


async def run_case(dut, traffic: Traffic, ports, stimulus, *, timeout: int = 200) -> dict:
    """The common scenario of every bench: ``ports(dut)`` gives (sources, sinks);
    ``stimulus(rng)`` gives a :class:`Stimulus` from a numpy generator seeded by the bench seed.
    Every frame is queued at once, so frames follow each other with no draining in between; the
    outputs must match bit for bit and, without stalls, the frame period must match the formula.
    """
    import numpy as np

    seed = load_config()["seed"]
    stim = stimulus(np.random.default_rng(seed))
    sources, sinks = ports(dut)
    bench = Bench(dut, sources, sinks, seed=seed)
    await bench.start(traffic)
    for src, lanes in zip(sources, stim.inputs, strict=True):
        for i, beats in enumerate(lanes):
            src.send(beats, lane=i)
    total = sum(len(lane) for sink in stim.expect for lane in sink)
    await bench.wait_for([[len(lane) for lane in sink] for sink in stim.expect], timeout=timeout + 50 * total)
    for k, (snk, sink_expect) in enumerate(zip(sinks, stim.expect, strict=True)):
        for i, want in enumerate(sink_expect):
            got = [beat for _, beat in snk.received[i]]
            check_beats(got, want, what=f"{traffic.value} sink {k} lane {i}", seed=seed)
    result: dict = {"traffic": traffic.value, "beats": total}
    if traffic is Traffic.NO_STALLS:
        cycles = [c for c, _ in sinks[0].received[0]]
        measured = frame_interval(cycles, stim.beats_per_frame)
        result.update(cycles_per_frame=measured, formula=stim.formula, slack=stim.slack)
        write_report("cycles_per_frame", measured)
        write_report("formula", stim.formula)
        write_report("slack", stim.slack)
        assert abs(measured - stim.formula) <= stim.slack, (
            f"{measured:.2f} cycles per frame without stalls, formula {stim.formula} "
            f"(+-{stim.slack} allowed) (seed {seed})"
        )
    return result


def traffic_tests(ports, stimulus, *, timeout: int = 200):
    """The cocotb test of a bench: :func:`run_case` once in each traffic mode, as one parametrized
    test reported as ``traffic/traffic=no_stalls``, ``=input_idles`` and ``=backpressure`` under the
    bench's module. A bench module assigns the result to a module-level name, where cocotb's
    discovery finds it::

        traffic = traffic_tests(ports, stimulus)
    """

    async def traffic(dut, traffic: Traffic) -> None:
        await run_case(dut, traffic, ports, stimulus, timeout=timeout)

    traffic.__qualname__ = traffic.__name__
    traffic.__module__ = sys._getframe(1).f_globals["__name__"]  # the bench's module, in the report
    modes = [cocotb.Param(value=t, name=t.name.lower()) for t in Traffic]
    return cocotb.test()(cocotb.parametrize(traffic=modes)(traffic))
