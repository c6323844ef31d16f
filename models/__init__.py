"""Data sets, the Brevitas model zoo, quantization-aware training, QONNX export."""
