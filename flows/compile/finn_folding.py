"""FINN's folding-config JSON (``{node name: {attribute: value}}``) applied to qnnflow's hardware layers.

FINN names a node ``<op type>_<i>``, ``i`` counting the nodes of that op type in stream order, the
op type with or without an implementation suffix (``MatrixVectorActivation_3``, ``MVAU_hls_3``,
``Thresholding_Batch_0``, ``ConvolutionInputGenerator_rtl_2``). A FINN node is matched to the
``i``-th qnnflow layer of the same kind in the dataflow graph's order:

===================================================  =================  ======================
FINN op type (any of ``_Batch``, ``_hls``, ``_rtl``)  qnnflow layer      parameters applied
===================================================  =================  ======================
MatrixVectorActivation, MVAU, StreamingFCLayer       MVAU               PE, SIMD
VectorVectorActivation, VVAU                         VVAU               PE, SIMD
ConvolutionInputGenerator, ...1D                     SlidingWindow      SIMD
Thresholding                                         Thresholding       PE
StreamingMaxPool                                     MaxPool            PE
LabelSelect, AddStreams, DuplicateStreams            the same           PE
===================================================  =================  ======================

Per kind, where the two flows differ:

- Thresholding: qnnflow absorbs thresholds into the MVAU / VVAU before them, and the input
  quantizer into the first layer's input type (FINN's TFC has a standalone Thresholding at its input,
  qnnflow's TFC none: its first MVAU takes the 8-bit pixels). A Thresholding node beyond the graph's
  standalone Thresholding layers is reported as having no counterpart, not refused.
- FMPadding (qnnflow's SlidingWindow pads inside its window buffer), StreamingDataWidthConverter
  (qnnflow inserts width converters from the neighbours' foldings) and StreamingFIFO (qnnflow sizes
  FIFOs by simulation): no counterpart, reported.
- Any other kind beyond the graph's layers of that kind (a tenth MVAU in a graph of nine) is an
  error naming the node and the graph's layers of the kind; so is an op type qnnflow does not know,
  and a config that mixes two namings of one kind (``MVAU_hls_*`` and ``MVAU_rtl_*`` count apart in
  FINN, so their order in the stream is not in the names).
- In an entry, PE / SIMD missing take FINN's default 1; a layer with no entry that sets PE or SIMD
  (e.g. qnnflow's MaxPool, whose PE FINN's 2-D StreamingMaxPool does not have) is folded by
  qnnflow to the cheapest folding that does not slow the pipeline below the II the config's
  layers give; reported as such.
- Every other key (``ram_style``, ``mem_mode``, ``resType``, ``runtime_writeable_weights``,
  ``depth``, ...) is implementation-only here: ignored, and listed in the summary. ``Defaults``
  (``{attribute: [value, "all" | [op types]]}``) applies PE / SIMD to every layer of those kinds.

:func:`apply_finn_folding` returns the summary: which FINN entries went to which layer, which had no
counterpart, which layers qnnflow folded itself, which keys were ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from qnnflow.flows.ir.layers import Layer, get_layer, hw_nodes
from qonnx.core.modelwrapper import ModelWrapper

FOLD_KEYS = ("PE", "SIMD")
KINDS = {
    "MatrixVectorActivation": "MVAU", "MVAU": "MVAU", "StreamingFCLayer": "MVAU",
    "VectorVectorActivation": "VVAU", "VVAU": "VVAU",
    "ConvolutionInputGenerator": "SlidingWindow", "ConvolutionInputGenerator1D": "SlidingWindow",
    "Thresholding": "Thresholding", "StreamingMaxPool": "MaxPool", "LabelSelect": "LabelSelect",
    "AddStreams": "AddStreams", "DuplicateStreams": "DuplicateStreams",
}  # fmt: skip
NO_COUNTERPART = {
    "FMPadding": "qnnflow's SlidingWindow pads inside its window buffer",
    "StreamingDataWidthConverter": "qnnflow inserts width converters from the neighbouring layers' foldings",
    "StreamingFIFO": "qnnflow sizes its FIFOs by simulation (qnnflow sim)",
}
ABSORBED = {"Thresholding": "qnnflow absorbs thresholds into the layer before them or into the input type"}
_NAME = re.compile(r"^(?P<stem>[A-Za-z][A-Za-z0-9]*?)(?P<suffix>_Batch|_hls|_rtl)?_(?P<index>\d+)$")
NOTE_KEY = "qnnflow.finn_folding"  # metadata of the folded graph: the summary, for the compile log

# FINN's published foldings (finn-examples, build/bnn-pynq/folding_config/), as shipped here
FINN_FOLDINGS = {
    "tfc": ("tfc.json", "TFC (all precisions), II 64 cycles"),
    "cnv-w1a1": ("cnv-w1a1.json", "CNV-W1A1, II 32,768 cycles"),
    "cnv-w2a2": ("cnv-w2a2.json", "CNV-W2A2"),
}
FOLDINGS_DIR = Path(__file__).resolve().parent / "finn_foldings"


def resolve_folding(spec: str) -> Path:
    """``finn:NAME`` -> the shipped FINN folding file; anything else -> the path as given."""
    if not spec.startswith("finn:"):
        return Path(spec)
    name = spec.removeprefix("finn:")
    if name not in FINN_FOLDINGS:
        shipped = ", ".join("finn:" + k for k in FINN_FOLDINGS)
        raise ValueError(f"--folding {spec}: no such FINN folding; shipped: {shipped}")
    return FOLDINGS_DIR / FINN_FOLDINGS[name][0]


def is_finn_layout(data: object, source: str) -> bool:
    """True for FINN's layout, False for qnnflow's ``{"layers": ...}``; ValueError for neither."""
    expected = "qnnflow's folding.json ({\"layers\": {...}}) or FINN's folding config ({node name: {attribute: value}})"
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected {expected}; found a JSON {type(data).__name__}")
    if "layers" in data:
        return False
    bad = next((k for k, v in data.items() if not isinstance(v, dict)), None)
    if bad is not None or not data:
        found = "an empty object" if not data else f"{bad!r}: {json.dumps(data[bad])[:60]}"
        raise ValueError(f"{source}: expected {expected}; found {found}")
    return True


@dataclass(frozen=True)
class _Entry:
    node: str
    stem: str
    family: str  # the naming, stem and suffix: FINN counts each apart
    index: int
    values: dict


def _parse(cfg: dict, source: str) -> list[_Entry]:
    entries = []
    for name, values in cfg.items():
        if name == "Defaults":
            continue
        m = _NAME.match(name)
        if m is None:
            raise ValueError(f"{source}: {name!r} is not a FINN node name (<op type>_<index>, e.g. MVAU_hls_0)")
        stem = m["stem"]
        if stem not in KINDS and stem not in NO_COUNTERPART:
            known = ", ".join(sorted({*KINDS, *NO_COUNTERPART}))
            raise ValueError(f"{source}: FINN node {name}: op type {stem} has no qnnflow counterpart; known: {known}")
        for k in FOLD_KEYS:
            v = values.get(k)
            if k in values and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{source}: FINN node {name}: {k} must be a positive integer, not {v!r}")
        entries.append(_Entry(name, stem, stem + (m["suffix"] or ""), int(m["index"]), values))
    families: dict[str, set[str]] = {}
    for e in entries:
        families.setdefault(KINDS.get(e.stem, e.stem), set()).add(e.family)
    for kind, fams in families.items():
        if len(fams) > 1:
            raise ValueError(
                f"{source}: {kind} nodes named in {len(fams)} ways ({', '.join(sorted(f + '_*' for f in fams))}); FINN "
                f"numbers each naming apart, so their order in the stream is unknown: name them in one way"
            )
    return entries


def _set_folding(lay: Layer, folds: dict[str, int], who: str, source: str) -> None:
    extra = [k for k in folds if k not in lay.FOLDS]
    if extra:
        raise ValueError(f"{source}: {who} sets {extra[0]}, but its counterpart {lay.where} has only {list(lay.FOLDS)}")
    saved = lay.folding()
    for k in lay.FOLDS:
        lay.set(k, int(folds.get(k, 1)))
    try:
        lay.check()
    except ValueError as err:
        for k, v in saved.items():
            lay.set(k, v)
        raise ValueError(f"{source}: {who}: {err}") from None


def _apply_defaults(cfg: dict, by_kind: dict[str, list[Layer]], source: str, summary: dict) -> set[str]:
    """FINN's ``Defaults``: PE / SIMD for every layer of the listed op types; the layers set."""
    done = set()
    for key, spec in (cfg.get("Defaults") or {}).items():
        if key not in FOLD_KEYS:
            summary["ignored_keys"].setdefault(key, []).append("Defaults")
            continue
        ok = isinstance(spec, list) and len(spec) == 2 and (spec[1] == "all" or isinstance(spec[1], list))
        if not ok or not isinstance(spec[0], int) or isinstance(spec[0], bool) or spec[0] < 1:
            raise ValueError(f'{source}: Defaults {key}: expected [positive integer, "all" | [op types]], not {spec!r}')
        if spec[1] == "all":
            kinds = set(by_kind)
        else:
            stems = {m["stem"] if (m := _NAME.match(f"{t}_0")) else t for t in spec[1]}
            kinds = {KINDS[s] for s in stems if s in KINDS}
        for kind in kinds:
            for lay in by_kind.get(kind, []):
                if key in lay.FOLDS:
                    _set_folding(lay, {**lay.folding(), key: spec[0]}, f"Defaults {key}", source)
                    done.add(lay.node.name)
                    summary["applied"].append({"finn_node": "Defaults", "layer": lay.node.name, "set": {key: spec[0]}})
    return done


def _match(e: _Entry, by_kind: dict[str, list[Layer]], source: str, summary: dict) -> Layer | None:
    """The layer FINN node ``e`` folds, or None (recorded as having no counterpart)."""
    if e.stem in NO_COUNTERPART:
        summary["no_counterpart"].append({"finn_node": e.node, "reason": NO_COUNTERPART[e.stem]})
        return None
    kind = KINDS[e.stem]
    layers = by_kind.get(kind, [])
    if e.index < len(layers):
        return layers[e.index]
    if kind in ABSORBED:
        reason = f"the graph has {len(layers)} standalone {kind} layers; {ABSORBED[kind]}"
        summary["no_counterpart"].append({"finn_node": e.node, "reason": reason})
        return None
    names = ", ".join(lay.node.name for lay in layers) or "none"
    raise ValueError(
        f"{source}: FINN node {e.node} is {kind} number {e.index + 1} in FINN's stream, but the graph has "
        f"{len(layers)} {kind} layers ({names})"
    )


def apply_finn_folding(model: ModelWrapper, cfg: dict, source: str) -> tuple[ModelWrapper, dict]:
    """Apply FINN's folding config ``cfg`` (see the module docstring); the model and the summary."""
    entries = _parse(cfg, source)
    layers = [get_layer(n) for n in hw_nodes(model)]
    by_kind: dict[str, list[Layer]] = {}
    for lay in layers:
        by_kind.setdefault(lay.op_type, []).append(lay)
    summary: dict = {"layout": "finn", "source": source, "applied": [], "no_counterpart": [], "qnnflow_folded": [],
                     "ignored_keys": {}}  # fmt: skip
    configured = _apply_defaults(cfg, by_kind, source, summary)
    for e in entries:
        for k in e.values:
            if k not in FOLD_KEYS:
                summary["ignored_keys"].setdefault(k, []).append(e.node)
        lay = _match(e, by_kind, source, summary)
        folds = {k: e.values[k] for k in FOLD_KEYS if k in e.values}
        if lay is None or not folds:
            continue
        base = lay.folding() if lay.node.name in configured else {}  # what Defaults set stays
        _set_folding(lay, {**base, **folds}, f"FINN node {e.node}", source)
        configured.add(lay.node.name)
        summary["applied"].append({"finn_node": e.node, "layer": lay.node.name, "op_type": lay.op_type,
                                   "set": lay.folding()})  # fmt: skip
    _fold_the_rest(layers, configured, summary)
    summary["ii_cycles"] = max((lay.exp_cycles() for lay in layers), default=0)
    return model, summary


def _fold_the_rest(layers: list[Layer], configured: set[str], summary: dict) -> None:
    """Layers the config does not fold: the cheapest folding within the configured layers' II."""
    from qnnflow.flows.compile.folding import _fold_layer, _options, _set

    ii = max((lay.exp_cycles() for lay in layers if lay.node.name in configured), default=None)
    for lay in layers:
        if not lay.FOLDS or lay.node.name in configured:
            continue
        if ii is None:
            _set(lay, _options(lay)[0])
        else:
            _fold_layer(lay, ii)  # none within the II: left at its most parallel folding
        summary["qnnflow_folded"].append({"layer": lay.node.name, "op_type": lay.op_type, "set": lay.folding(),
                                          "cycles": lay.exp_cycles()})  # fmt: skip


def summary_lines(summary: dict) -> list[str]:
    """The compile log's lines on a FINN folding config."""
    lines = [f"FINN folding config {summary['source']}:"]
    for a in summary["applied"]:
        sets = ", ".join(f"{k} {v}" for k, v in a["set"].items())
        lines.append(f"  {a['finn_node']} -> {a['layer']} ({a.get('op_type', '')}): {sets}".replace(" ()", ""))
    for n in summary["no_counterpart"]:
        lines.append(f"  {n['finn_node']}: no counterpart ({n['reason']})")
    for q in summary["qnnflow_folded"]:
        sets = ", ".join(f"{k} {v}" for k, v in q["set"].items())
        lines.append(f"  {q['layer']} ({q['op_type']}): not folded by the config; qnnflow chose {sets}")
    if summary["ignored_keys"]:
        ignored = ", ".join(f"{k} ({len(v)} entries)" for k, v in sorted(summary["ignored_keys"].items()))
        lines.append(f"  ignored (implementation-only in qnnflow): {ignored}")
    lines.append(f"  II at this folding: {summary['ii_cycles']:,} cycles per frame")
    return lines


def pop_note(model: ModelWrapper) -> dict | None:
    """The summary :func:`apply_folding` left in the graph's metadata, removed from it; or None."""
    props = model.model.metadata_props
    for i, p in enumerate(props):
        if p.key == NOTE_KEY:
            del props[i]
            return json.loads(p.value)
    return None
