"""Code generation: the folded dataflow graph -> ``rtl/`` of a build folder.

Writes
- ``top.sv``: module ``accelerator`` (the ports ``hw/boards/board_top.sv`` expects: clk, rst,
  ``s_axis_*`` and ``m_axis_*`` with ``tlast``), assembled from instances of the ``hw/`` modules
  by a small structural netlist writer (:class:`~.netlist.Netlist`): one wire bundle per stream, one
  instance per hardware layer, FIFOs as they are in the graph (depths from FIFO sizing, see
  :mod:`qnnflow.sim.accel`);
- ``probe.sv``: module ``accelerator_probe``, for simulation only: the accelerator plus the
  valid / ready bits of every internal stream as two output vectors (hierarchical references),
  which the testbenches use to measure FIFO occupancy and to say where a stalled stream stopped;
- the weight / threshold memory files (layouts from :mod:`qnnflow.flows.codegen.memfiles`; a layer
  whose thresholds are searched, ``THR_SEARCH``, has one per search stage and lane, or bank);
- the library sources it uses (copied, so the folder is self-contained) and ``files.f`` listing
  them in compile order, paths relative to ``rtl/``;
- ``design.json``: the streams (name, width, element type, beats per frame, which layers they
  join), the FIFOs and their depths, the boundary tensors; read back with :func:`load_design`.

Memory files are named without a folder, so tools read them with ``rtl/`` as working directory.
The graph parts outside the hardware (the input quantizer before it, a logits rescale after it)
stay on the host; :func:`split` says where the hardware starts and ends.

Modules: :mod:`.design` (what ``design.json`` holds, and where the hardware part of the graph
starts and ends), :mod:`.netlist` (the writer and the two modules it writes), :mod:`.generate`
(the stage itself).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qnnflow.flows.codegen.design import Design, load_design
    from qnnflow.flows.codegen.generate import generate

__all__ = ["Design", "generate", "load_design"]

# Loaded on first use: :mod:`.memfiles` alone (imported by the cocotb benches inside every simulator
# process) must not pull in onnx and qonnx through the design's graph code (0.8 s per simulation).
_LAZY = {"Design": "design", "load_design": "design", "generate": "generate"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    # importing the submodule .generate bound its name here to the module: the function replaces it
    globals()[name] = value
    return value
