"""TEST ONLY: a cocotb bench that reports which of the modules it imported cocotb's assertion
rewriting hook loaded (tests/sim/test_build_cache.py)."""

from __future__ import annotations

import sys

import cocotb
import numpy
from qnnflow.flows.ir import kernels
from qnnflow.sim import streams


@cocotb.test()
async def loaders(dut) -> None:
    modules = {"bench": sys.modules[__name__], "streams": streams, "numpy": numpy, "kernels": kernels}
    for name, module in modules.items():
        streams.write_report(name, type(module.__spec__.loader).__name__)
