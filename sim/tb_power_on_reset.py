"""cocotb bench of ``hw/boards/power_on_reset.sv``: the reset's timing as its header states it.

From configuration rst is high; `locked` rising makes it fall 19 cycles later; `locked` dropping
makes it rise again 5 cycles later (the synchronizer's 2, the counter's clear, the two registers)
and the count starts over; a lock shorter than the count never releases it.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


async def _cycles_until(dut, value: int, limit: int = 100) -> int:
    """Clock edges until rst reads ``value`` (sampled after each edge)."""
    for n in range(1, limit + 1):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(dut.rst.value) == value:
            return n
    raise AssertionError(f"rst did not become {value} within {limit} cycles")


async def _held(dut, cycles: int, why: str) -> None:
    """rst stays high for ``cycles`` clock edges."""
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.rst.value) == 1, why


@cocotb.test()
async def reset_timing(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.locked.value = 0
    await _held(dut, 30, "rst fell without a lock")
    await RisingEdge(dut.clk)
    dut.locked.value = 1
    assert await _cycles_until(dut, 0) == 19
    await RisingEdge(dut.clk)
    dut.locked.value = 0
    assert await _cycles_until(dut, 1) == 5
    # a lock of 10 cycles is shorter than the count: rst stays high
    await RisingEdge(dut.clk)
    dut.locked.value = 1
    await _held(dut, 10, "rst fell before the count ended")
    await RisingEdge(dut.clk)
    dut.locked.value = 0
    await _held(dut, 25, "rst fell after the lock dropped")
    await RisingEdge(dut.clk)
    dut.locked.value = 1
    assert await _cycles_until(dut, 0) == 19
