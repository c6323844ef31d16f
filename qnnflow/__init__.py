"""qnnflow: quantized neural networks to streaming dataflow accelerators on FPGAs, with open tools only.

Subpackages (each mapped onto a top-level folder of the repository):
``qnnflow.models`` (data, zoo, training, export), ``qnnflow.flows`` (compiler, codegen,
implementation), ``qnnflow.sim`` (Verilator/cocotb simulation), ``qnnflow.hw`` (RTL library).
"""

from qnnflow.errors import FlowError, ToolError

__version__ = "0.1.0"

__all__ = ["FlowError", "ToolError", "__version__"]
