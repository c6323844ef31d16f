"""cocotb bench of a whole generated accelerator (``rtl/probe.sv``), driven by :mod:`qnnflow.sim.accel`.

The source sends every frame's input beats with random idles, the sink takes the output with
random backpressure, and every output beat is compared with the dataflow graph's execution as it
arrives. A stream that stops (no handshake on any stream for ``max_idle`` cycles), or a run past
``max_cycles``, ends the bench with a message naming each stream's valid / ready and the layer
where data stopped (:func:`qnnflow.sim.stalls.stall_message`).
"""

from __future__ import annotations

import time

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge
from qnnflow.flows.codegen import load_design
from qnnflow.sim.stalls import stall_message
from qnnflow.sim.streams import Bench, Sink, Source, Traffic, load_config, write_report

CFG = load_config()


@cocotb.test()
async def accelerator_random_stalls(dut):
    design = load_design(CFG["rtl_dir"])
    seed = CFG["seed"]
    dut.s_axis_tlast.value = 0
    src = Source(dut, width=design.input.width)
    snk = Sink(dut, width=design.output.width)
    bench = Bench(dut, [src], [snk], seed=seed)
    await bench.start(Traffic.NO_STALLS)
    src.idle_prob = CFG["idle_prob"]
    snk.ready_prob = CFG["ready_prob"]
    expect = CFG["expect"]
    src.send(CFG["in_beats"])
    n = len(design.streams)
    beats = [0] * n
    last_move = bench.cycle
    checked = bad = 0
    first_bad = None
    loop_start, loop_cycle = time.perf_counter(), bench.cycle  # the simulation rate without start-up
    while checked < len(expect):
        await RisingEdge(dut.clk)
        await ReadOnly()
        valid, ready = int(dut.probe_valid.value), int(dut.probe_ready.value)
        moved = valid & ready
        if moved:
            last_move = bench.cycle
            for i in range(n):
                if (moved >> i) & 1:
                    beats[i] += 1
        received = snk.received[0]
        while checked < len(received):
            got = received[checked][1]
            if checked < len(expect) and got != expect[checked]:
                bad += 1
                if first_bad is None:
                    first_bad = f"output beat {checked}: got {got:#x}, want {expect[checked]:#x}"
            checked += 1
        stopped = bench.cycle - last_move > CFG["max_idle"]
        if stopped or bench.cycle >= CFG["max_cycles"]:
            v = [(valid >> i) & 1 for i in range(n)]
            r = [(ready >> i) & 1 for i in range(n)]
            status = "deadlock" if stopped else "timeout"
            msg = stall_message(design, v, r, beats, status, bench.cycle, last_move)
            per_frame = design.output.beats
            msg += f"\n  ({checked // per_frame} of {len(expect) // per_frame} frames came out; seed {seed})"
            write_report("stall", msg)
            raise AssertionError(msg)
    write_report("loop_seconds", time.perf_counter() - loop_start)
    write_report("loop_cycles", bench.cycle - loop_cycle)
    for _ in range(16):  # a duplicated beat would show up here
        await RisingEdge(dut.clk)
    write_report("outputs", [b for _, b in snk.received[0]][: len(expect)])
    write_report("cycles", bench.cycle)
    write_report("mismatching_beats", bad)
    assert snk.count() == len(expect), f"{snk.count()} output beats, expected {len(expect)} (seed {seed})"
    assert bad == 0, f"{bad} of {len(expect)} output beats differ; first: {first_bad} (seed {seed})"
