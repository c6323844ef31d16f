"""cocotb bench of ``hw/crc.sv``: one byte step of the CRC against the catalogue and the host.

- Chained over ``b"123456789"`` from the standard initial value, the register ends at the
  catalogue's check value (CRC-8/SMBUS, CRC-16/CCITT-FALSE, CRC-32/MPEG-2; settings ``check``).
- At WIDTH 16 / POLY 0x1021, random (register, byte) pairs give what the host link's own
  :func:`qnnflow.link.crc16` gives, so both sides of the link compute the same frame check.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import Timer
from qnnflow.sim.streams import load_config, write_report

from qnnflow.link import crc16

CFG = load_config()
P = CFG["params"]
MASK = (1 << P["WIDTH"]) - 1


async def step(dut, crc: int, byte: int) -> int:
    dut.crc_in.value = crc
    dut.data.value = byte
    await Timer(1, unit="ns")
    return int(dut.crc_out.value)


@cocotb.test()
async def check_value(dut):
    crc = CFG["init"]
    for byte in b"123456789":
        crc = await step(dut, crc, byte)
    assert crc == CFG["check"], f"CRC of '123456789': {crc:#x}, catalogue {CFG['check']:#x}"
    write_report("check", crc)


@cocotb.test()
async def agrees_with_the_host(dut):
    if (P["WIDTH"], P["POLY"]) != (16, 0x1021):
        return
    rng = random.Random(CFG["seed"])
    pairs = [(0xFFFF, 0x00), (0x0000, 0xFF), (0x8000, 0x80)] + [
        (rng.getrandbits(16), rng.getrandbits(8)) for _ in range(500)
    ]
    for crc, byte in pairs:
        got, want = await step(dut, crc, byte), crc16([byte], crc)
        assert got == want, f"crc_in {crc:#06x}, data {byte:#04x}: {got:#06x}, host {want:#06x}"
    write_report("host_pairs", len(pairs))
