"""cocotb bench of ``hw/fifo_chain.sv``: the bench of ``hw/fifo.sv`` (beats unchanged, in order,
one per cycle, under the three traffic modes) on the chain."""

from __future__ import annotations

from qnnflow.sim.tb_fifo import traffic  # noqa: F401  (cocotb collects the test from this module)
