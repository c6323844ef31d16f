"""The compile stage: a QONNX model -> a folded, verified dataflow graph in a build folder.

:mod:`.driver` (``compile_model``, what ``qnnflow compile`` runs), :mod:`.importer` (loading and
the op check), :mod:`.steps` (the ordered build steps over :mod:`qnnflow.flows.passes`),
:mod:`.verify` (every step against QONNX execution of the original), :mod:`.folding`,
:mod:`.estimates` and :mod:`.resources` / :mod:`.resources_dw` (cycles and resources per layer), and
the fuzz generator with its checker (:mod:`.fuzz`, :mod:`.fuzz_check`)."""
