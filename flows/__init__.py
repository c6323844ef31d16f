"""The compiler: QONNX import, graph passes, dataflow layers, folding, estimates, codegen, implementation."""
