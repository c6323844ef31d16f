"""Implementation: the accelerator inside the UART board top -> Yosys -> nextpnr -> bitstream.

:func:`implement` (:mod:`.pnr`) runs, in ``build/<name>/impl/<board>/``:

1. Yosys ``synth_ecp5`` / ``synth_ice40`` / ``synth_gowin`` of the family wrapper
   (``hw/boards/<family>_top.sv``: PLL, power-on reset, pins) around ``hw/boards/board_top.sv``
   and the accelerator,
2. nextpnr-ecp5 / nextpnr-ice40 / nextpnr-himbaechel (Gowin) with the board's constraint file
   and the clock constraint,
3. ecppack / icepack / gowin_pack -> ``<name>.bit`` (ECP5), ``<name>.bin`` (iCE40) or
   ``<name>.fs`` (Gowin),

and writes ``impl.json`` (utilization against the device's totals, Fmax per clock domain, the
clock, wall time of each step). Every tool writes its own log file there. A tool error, a design
that does not fit, or a clock that misses its constraint raises :class:`FlowError` with the log
and the figures that failed; ``impl.json`` is written first, so the report can still show them.

:func:`xilinx_estimate` (:mod:`.xilinx`) runs Yosys ``synth_xilinx`` on the accelerator alone for an xc7z020
resource estimate (LUT6, FF, BRAM18, DSP48), for comparison with FINN's published designs.

The accelerator comes from codegen (``rtl/design.json``: top module, files in compile order,
stream widths and beats per frame; memory files in ``rtl/``). Tests pass an
:class:`AcceleratorDesign` of their own instead.

The board files and clocks are :mod:`.boards`; the tool runs with their logs and progress
:mod:`.tools`; the accelerator's sources and the board top's parameters :mod:`.design`; the
build's bitstream stage (implementation, estimate, report, skipped when up to date) :mod:`.stage`;
``report.json`` / ``report.md`` :mod:`.report`.
"""

from qnnflow.flows.implement.design import AcceleratorDesign, accelerator_design, uart_clks_per_bit
from qnnflow.flows.implement.pnr import ImplResult, implement
from qnnflow.flows.implement.stage import bitstream_stage
from qnnflow.flows.implement.tools import tool_phase
from qnnflow.flows.implement.xilinx import xc7_used, xilinx_estimate

__all__ = [
    "AcceleratorDesign",
    "ImplResult",
    "accelerator_design",
    "bitstream_stage",
    "implement",
    "tool_phase",
    "uart_clks_per_bit",
    "xc7_used",
    "xilinx_estimate",
]
