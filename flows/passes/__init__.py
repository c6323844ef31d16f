"""Graph passes, in the order the build steps (:mod:`qnnflow.flows.compile.steps`) run them:
tidy-up (:mod:`.tidy`, :mod:`.conv1d`, :mod:`.pool`), streamlining to integer MatMul / Conv plus
thresholds, then clean-up of the integer graph (:mod:`.integer`), channels-last layout
(:mod:`.layout`), hardware layers (:mod:`.hw`, :mod:`.vvau`, label selection :mod:`.hw_labels`) and streams between them
(:mod:`.streams`). Each pass is ``apply(model) -> (model, changed)``; no file or tool I/O.

The streamlining is one pass, :class:`.streamline.Streamline` (the walk over the graph), whose
handlers live in modules by the ops they handle:

- :mod:`.streamline_thresholds`: quantizers become MultiThresholds -- the scales, offsets and
  float ops before an activation turned into per-channel thresholds on the accumulator;
- :mod:`.streamline_quantizers`: a quantizer's output as ``A * q + B`` with integer ``q``;
- :mod:`.streamline_linear`: MatMul / Gemm / Conv on integer weights, and collapsing pending
  float ops into a scale before them;
- :mod:`.streamline_residual`: residual Adds of two quantized branches;
- :mod:`.streamline_moves`: elementwise ops, data movement and MaxPool;
- :mod:`.streamline_select`: TopK / ArgMax (label selection), with :mod:`.label_map`;
- :mod:`.streamline_host`: the float input path and the float output ops kept on the host;
- :mod:`.streamline_emit`: helpers that write nodes of the new graph;
- analyses they use: :mod:`.tail` (exact evaluation of pending float ops, threshold search) and
  :mod:`.weights` (integer weights of quantized constants)."""
