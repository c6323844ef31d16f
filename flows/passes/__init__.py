"""Graph passes, in the order the build steps (:mod:`qnnflow.flows.compile.steps`) run them:
tidy-up (:mod:`.tidy`, :mod:`.conv1d`, :mod:`.pool`), streamlining to integer MatMul / Conv plus
thresholds (:mod:`.streamline` with :mod:`.streamline_linear`, :mod:`.streamline_residual`,
:mod:`.tail`, :mod:`.weights`, :mod:`.label_map`, then :mod:`.integer`), channels-last layout
(:mod:`.layout`), hardware layers (:mod:`.hw`, :mod:`.vvau`) and streams between them
(:mod:`.streams`). Each pass is ``apply(model) -> (model, changed)``; no file or tool I/O."""
