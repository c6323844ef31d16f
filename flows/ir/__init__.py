"""The compiler's intermediate representation and its meaning: QONNX graph helpers (:mod:`.graph`),
the hardware layers (:mod:`.layers`) with their golden integer kernels (:mod:`.kernels`,
:mod:`.kernels_dw`), exact execution of any graph of the flow (:mod:`.execute`), the QONNX
reference and the one class decision (:mod:`.reference`), and user input arrays (:mod:`.inputs`)."""
