"""Verilator / cocotb simulation: per-module benches, the stitched accelerator, HW-vs-SW checks."""
