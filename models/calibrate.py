"""Boundary-aware calibration: choose, on the calibration split, the model the build deploys.

From the build's trained float twin (``float_model.pt``; or the QAT model's weights, ``cal_from =
"qat"``) the stage makes *candidates*: the same topology with weights and activations quantized
after training, through Brevitas —

1. the float weights (and batch-norm statistics) loaded into the Brevitas model of the candidate's
   widths; weights signed narrow-range per tensor with the scale ``max|W| / (2^(b-1) - 1)`` (the
   zoo's ``Int8WeightPerTensorFloat``), rounded to nearest or, with ``cal_rounding_steps``, by
   learned rounding with the boundary-gap term (:mod:`qnnflow.models.boundary_rounding`; uniform
   candidates only);
2. activation ranges calibrated on the calibration split (Brevitas ``calibration_mode``: the
   quantized ReLUs' scales from their statistics);
3. bias correction (Brevitas ``bias_correction_mode``): the mean output error each conv / linear
   layer's weight quantization causes on the calibration split is added back. The layers have no
   bias, so the correction of a layer followed by batch norm is folded into that batch norm's
   running mean (exact: ``BN(y + c)`` is ``BN`` with ``mean - c``); the class layer has no batch
   norm after it and is not corrected (a per-class offset would be a bias the integer argmax
   does not have);
4. optionally ``cal_finetune_epochs`` of QAT fine-tuning.

Candidates: every uniform width ``w = a = b`` from ``cal_max_bits`` down to ``cal_min_bits``; then,
with ``cal_mixed``, per-layer widths by a greedy search from the widest: at each step each weight
layer's and each activation's width is lowered by one step alone, and the cheapest of the moves
that stay within the tolerances is kept, until no move does.

Each candidate is measured against the float reference (:mod:`qnnflow.models.boundary_metrics`) on
the calibration and on the held-out (test) split, and — when its calibration metrics pass either
rule — exported to QONNX and compiled (verified against QONNX execution) for the compiler's
resource estimate on the build's board: ``cost = LUT4 / board LUTs + block-RAM bits / board
block-RAM bits`` (the estimate's DP16KD at 18 kbit each).

The rules look at calibration metrics only (held-out ones are recorded beside them):

- boundary: the cheapest candidate with calibration slice Jaccard distance <= ``cal_jaccard_tol``
  and label-flip rate <= ``cal_flip_tol``;
- accuracy (for comparison): the cheapest with calibration accuracy >= the reference's calibration
  accuracy - ``cal_accuracy_tol``.

Ties go to the candidate with more bits in all (the wider at equal cost), then by name. When no
candidate passes, the widest uniform one is chosen and the stage says so (``passed`` false).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from qnnflow.models.boundary_metrics import BoundaryParams, ReferenceView
from qnnflow.models.datasets import Split
from qnnflow.models.zoo import LAYER_COUNTS, LayerBits, build_model, parse_preset
from torch import nn

from qnnflow.config import BuildConfig

BRAM_KBIT = 18  # one DP16KD of the estimate
# the metrics kept per candidate and split (the full set is ReferenceView.compare's)
KEPT = (
    "accuracy",
    "accuracy_ref",
    "flips",
    "flip_rate",
    "slice_jaccard_distance",
    "slice_flip_rate",
    "median_boundary_shift",
    "band_pair_order_flip_rate",
    "junction_regions",
    "junction_regions_ref",
)


@dataclass(frozen=True)
class Tolerances:
    jaccard: float
    flip: float
    accuracy: float

    def boundary_ok(self, cal: dict) -> bool:
        return cal["slice_jaccard_distance"] <= self.jaccard and cal["flip_rate"] <= self.flip

    def accuracy_ok(self, cal: dict) -> bool:
        return cal["accuracy"] >= cal["accuracy_ref"] - self.accuracy


@dataclass
class Candidate:
    bits: LayerBits
    origin: str  # "uniform" or "greedy step k"
    cal: dict
    test: dict
    resources: dict | None = None  # LUT4, DP16KD, cost; None when neither rule passed (not compiled)
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.bits.name

    @property
    def total_bits(self) -> int:
        return sum(self.bits.weights) + sum(self.bits.acts)

    def row(self, tol: Tolerances) -> dict:
        return {
            "name": self.name,
            "weights": list(self.bits.weights),
            "acts": list(self.bits.acts),
            "origin": self.origin,
            "boundary_ok": tol.boundary_ok(self.cal),
            "accuracy_ok": tol.accuracy_ok(self.cal),
            "cal": self.cal,
            "test": self.test,
            "resources": self.resources,
        }


@dataclass(frozen=True)
class Choice:
    rule: str
    candidate: Candidate
    passed: bool
    why: str


def choose(cands: Sequence[Candidate], ok: Callable[[dict], bool], rule: str) -> Choice:
    """The cheapest candidate whose *calibration* metrics pass ``ok`` (see the module docstring)."""
    if not cands:
        raise ValueError("the stopping rule needs at least one candidate")
    passing = [c for c in cands if ok(c.cal)]
    priced = [c for c in passing if c.resources is not None]
    if len(priced) != len(passing):
        missing = ", ".join(c.name for c in passing if c.resources is None)
        raise ValueError(f"candidates that pass {rule!r} need a resource estimate: {missing}")
    if not priced:
        widest = max(cands, key=lambda c: (c.total_bits, c.name))
        return Choice(rule, widest, False, f"no candidate passes {rule}; the widest, {widest.name}, is kept")
    best = min(priced, key=lambda c: (c.resources["cost"], -c.total_bits, c.name))
    r = best.resources
    why = (
        f"{best.name} is the cheapest of {len(priced)} of {len(cands)} candidates that pass {rule} "
        f"(estimate {r['LUT4']:,} LUT4, {r['DP16KD']} DP16KD, cost {r['cost']:.4f})"
    )
    return Choice(rule, best, True, why)


# -- making a candidate ---------------------------------------------------------------------------
def _source_state(cfg: BuildConfig, build: Path) -> dict:
    """The weights and batch-norm statistics candidates start from (no quantizer parameters)."""
    from qnnflow.models.train import load_checkpoint

    float_keys = load_checkpoint(build / "float_model.pt").state_dict()
    if cfg.cal_from == "float":
        return float_keys
    qat = load_checkpoint(build / "model.pt").state_dict()
    return {k: qat[k] for k in float_keys if k in qat}


def make_candidate(
    topology: str,
    split: Split,
    state: dict,
    bits: LayerBits,
    cfg: BuildConfig,
    rounded: dict | None = None,
) -> nn.Module:
    """The candidate of ``bits``: ``state`` loaded, weights rounded (``rounded``: learned weights by
    key), activations calibrated, biases corrected, optionally fine-tuned (module docstring)."""
    from brevitas.graph.calibrate import bias_correction_mode, calibration_mode

    preset = parse_preset(f"{topology}-w8a8")
    torch.manual_seed(cfg.seed)
    model = build_model(preset, split.input_quant.bits, split.input_quant.scale, layer_bits=bits)
    src = {**state, **(rounded or {})}
    missing, unexpected = model.load_state_dict(src, strict=False)
    if unexpected:
        raise RuntimeError(f"candidate {bits.name}: float weights with no place in the model: {unexpected}")
    loaded = [k for k in missing if "quant" not in k]
    if loaded:
        raise RuntimeError(f"candidate {bits.name}: parameters left without a float value: {loaded}")
    model.eval()
    x = torch.as_tensor(split.x_cal)
    batches = [x[k : k + 256] for k in range(0, len(x), 256)]
    with torch.no_grad():
        with calibration_mode(model):
            for b in batches:
                model(b)
        if cfg.cal_bias_correction:
            with bias_correction_mode(model):
                for b in batches:
                    model(b)
            _fold_biases(model)
    if cfg.cal_finetune_epochs:
        _finetune(model, split, cfg)
    return model.eval()


def _fold_biases(model: nn.Sequential) -> None:
    """Move each corrected layer's bias into the batch norm after it; drop the class layer's."""
    layers = list(model)
    for i, m in enumerate(layers):
        bias = getattr(m, "bias", None)
        if not isinstance(m, nn.Conv2d | nn.Linear) or bias is None:
            continue
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(nxt, nn.BatchNorm1d | nn.BatchNorm2d):
            nxt.running_mean.sub_(bias.detach())
        m.bias = None


def _finetune(model: nn.Module, split: Split, cfg: BuildConfig) -> None:
    """``cal_finetune_epochs`` of QAT (Adam, lr 1e-3, the training set) from the calibrated model."""
    from qnnflow.models.train import _train_epoch

    x, y = torch.as_tensor(split.x_train), torch.as_tensor(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.cal_finetune_epochs):
        _train_epoch(model, x, y, opt, gen, None)
    model.eval()


# -- the resource estimate ------------------------------------------------------------------------
def resource_cost(model: nn.Module, split: Split, cfg: BuildConfig, work: Path) -> dict:
    """Export ``model`` (TorchScript exporter, for speed), compile it (verified against QONNX execution
    of that export on 32 test inputs) and price the estimate on the board."""
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.folding import DEFAULT_TARGET_CYCLES
    from qnnflow.flows.compile.steps import CompileOptions
    from qnnflow.flows.implement.autoclock import AUTO, NOMINAL_MHZ
    from qnnflow.flows.implement.boards import board_spec
    from qnnflow.models.export import export_qonnx

    spec = board_spec(cfg.board)
    target = cfg.target_cycles
    default = target is None and cfg.target_fps is None
    if default:
        target = DEFAULT_TARGET_CYCLES[spec.family]
    clock = NOMINAL_MHZ[spec.family] if cfg.clock_mhz == AUTO else cfg.clock_mhz
    opts = CompileOptions(target_cycles=target, target_fps=cfg.target_fps, clock_mhz=clock, default_target=default)
    work.mkdir(parents=True, exist_ok=True)
    onnx = export_qonnx(model, work / "model.onnx", split.input_shape, torchscript=True)
    res = compile_model(onnx, work / "compile", inputs=split.x_test[:32], opts=opts, verbose=False)
    t = res.estimates["totals"]["ecp5"]
    cost = t["LUT4"] / spec.luts + t["DP16KD"] * BRAM_KBIT / spec.bram_kbit
    return {
        "LUT4": int(t["LUT4"]),
        "FF": int(t["FF"]),
        "DP16KD": int(t["DP16KD"]),
        "ii_cycles": int(res.estimates["ii_cycles"]),
        "cost": round(float(cost), 6),
    }


# -- the search -----------------------------------------------------------------------------------
class Search:
    """Candidates made, measured and priced once each (keyed by their widths)."""

    def __init__(self, topology, split, state, cfg, views, tol: Tolerances, work: Path, log, rounded=None):
        self.topology, self.split, self.state, self.cfg = topology, split, state, cfg
        self.views, self.tol, self.work, self.log = views, tol, work, log
        self.rounded = rounded or {}
        self.seen: dict[LayerBits, Candidate] = {}
        self.start = time.perf_counter()

    def evaluate(self, bits: LayerBits, origin: str) -> Candidate:
        if bits in self.seen:
            return self.seen[bits]
        model = make_candidate(self.topology, self.split, self.state, bits, self.cfg, self.rounded.get(bits))
        m = self.views.measure(model)
        c = Candidate(bits, origin, {k: m["cal"][k] for k in KEPT}, {k: m["test"][k] for k in KEPT}, model=model)
        if self.tol.boundary_ok(c.cal) or self.tol.accuracy_ok(c.cal):
            c.resources = resource_cost(model, self.split, self.cfg, self.work / bits.name)
        self.seen[bits] = c
        price = f", {c.resources['LUT4']:,} LUT4 {c.resources['DP16KD']} DP16KD" if c.resources else ""
        self.log(
            f"  [{len(self.seen)}] {bits.name:<22} {origin:<14} cal: acc {c.cal['accuracy']:.4f} flips "
            f"{c.cal['flips']} Jaccard {c.cal['slice_jaccard_distance']:.3f} "
            f"{'pass' if self.tol.boundary_ok(c.cal) else 'fail'}{price} ({time.perf_counter() - self.start:.0f} s)"
        )
        return c

    def uniform(self, widths: Sequence[int]) -> list[Candidate]:
        return [self.evaluate(LayerBits.uniform(self.topology, b, b), "uniform") for b in widths]

    def greedy(self, widths: Sequence[int]) -> list[dict]:
        """Per-layer widths, greedily down from the widest (module docstring); the path taken."""
        ladder = sorted(widths, reverse=True)
        lower = {b: ladder[i + 1] for i, b in enumerate(ladder[:-1])}
        cur = self.evaluate(LayerBits.uniform(self.topology, ladder[0], ladder[0]), "uniform")
        path = [{"step": 0, "name": cur.name, "cost": cur.resources["cost"] if cur.resources else None}]
        if not self.tol.boundary_ok(cur.cal):
            return path
        step = 0
        while True:
            step += 1
            moves = []
            w, a = list(cur.bits.weights), list(cur.bits.acts)
            for k, b in enumerate(w):
                if b in lower:
                    moves.append(LayerBits(tuple(w[:k] + [lower[b]] + w[k + 1 :]), cur.bits.acts))
            for k, b in enumerate(a):
                if b in lower:
                    moves.append(LayerBits(cur.bits.weights, tuple(a[:k] + [lower[b]] + a[k + 1 :])))
            tried = [self.evaluate(m, f"greedy step {step}") for m in moves]
            ok = [c for c in tried if self.tol.boundary_ok(c.cal)]
            if not ok:
                return path
            cur = min(ok, key=lambda c: (c.resources["cost"], -c.total_bits, c.name))
            path.append({"step": step, "name": cur.name, "cost": cur.resources["cost"], "tried": len(tried)})


def _learned_rounding(topology, split, ref, widths, cfg, log) -> dict:
    """Per uniform width: weights by learned rounding with the boundary-gap term, by state key."""
    from qnnflow.models.boundary_rounding import RoundingConfig, learned_rounding

    out = {}
    for b in widths:
        rc = RoundingConfig(
            bits=b, granularity="per-tensor", steps=cfg.cal_rounding_steps, margin_weight=cfg.cal_rounding_mu,
            seed=cfg.seed,
        )  # fmt: skip
        rounded, _info = learned_rounding(ref, split.x_cal, rc, progress=None)
        sd = rounded.state_dict()
        weights = {k: v for k, v in sd.items() if k.endswith(".weight") and v.ndim >= 2}
        out[LayerBits.uniform(topology, b, b)] = weights
        log(f"  learned rounding (mu {cfg.cal_rounding_mu}) at {b} bits: {len(weights)} weight tensors")
    return out


# -- the stage ------------------------------------------------------------------------------------
def calibrate(cfg: BuildConfig, build: Path | str, log: Callable[[str], None] = print) -> dict:
    """Run the search on a trained build folder; write ``calibration/`` (the chosen model's
    ``model.onnx`` and ``model.pt``, ``calibration.json``, ``candidates.png``); return the record."""
    from qnnflow.models.boundary_report import _Views
    from qnnflow.models.train import _load_split, _save_checkpoint, check_export, load_checkpoint

    from qnnflow import stamps
    from qnnflow.errors import FlowError

    build = Path(build)
    preset = parse_preset(cfg.preset)
    if preset.topology not in LAYER_COUNTS:
        raise ValueError(
            f"boundary calibration builds candidates of the topologies {', '.join(LAYER_COUNTS)}, not "
            f"{preset.topology}"
        )
    split = _load_split(cfg, preset)
    start = time.perf_counter()
    ref = load_checkpoint(build / "float_model.pt")
    params = BoundaryParams(grid=cfg.cal_grid)
    views = _Views(ReferenceView(ref, split.x_cal, params), ReferenceView(ref, split.x_test, params),
                   split.y_cal, split.y_test)  # fmt: skip
    tol = Tolerances(cfg.cal_jaccard_tol, cfg.cal_flip_tol, cfg.cal_accuracy_tol)
    widths = list(range(cfg.cal_max_bits, cfg.cal_min_bits - 1, -1))
    log(
        f"  calibrate: {split.summary()}; candidates from the {cfg.cal_from} weights at {widths[0]}..{widths[-1]} "
        f"bits; boundary rule: calibration Jaccard <= {tol.jaccard}, flip rate <= {tol.flip}"
    )
    state = _source_state(cfg, build)
    rounded = {}
    if cfg.cal_rounding_steps:  # rounds the weights the candidates start from (the QAT ones with cal_from "qat")
        base = load_checkpoint(build / "float_model.pt")
        base.load_state_dict(state)
        rounded = _learned_rounding(preset.topology, split, base, widths, cfg, log)
    stamps.invalidate(build, "calibrate")
    with stamps.staged(build, "calibrate") as staging, tempfile.TemporaryDirectory() as tmp:
        search = Search(preset.topology, split, state, cfg, views, tol, Path(tmp), log, rounded)
        search.uniform(widths)
        path = search.greedy(widths) if cfg.cal_mixed else []
        cands = list(search.seen.values())
        by_b = choose(cands, tol.boundary_ok, f"calibration Jaccard <= {tol.jaccard} and flip rate <= {tol.flip}")
        by_a = choose(cands, tol.accuracy_ok, f"calibration accuracy >= reference - {tol.accuracy}")
        chosen = by_b.candidate
        dest = staging / "calibration"
        dest.mkdir(parents=True)
        from qnnflow.models.export import export_qonnx

        export_qonnx(chosen.model, dest / "model.onnx", split.input_shape)
        check = check_export(chosen.model, dest / "model.onnx", split.x_test)
        if not check.ok:
            raise FlowError(
                f"QONNX export of the calibrated {chosen.name} disagrees with PyTorch on {check.argmax_mismatches} "
                f"of {check.samples} test decisions"
            )
        _save_checkpoint(chosen.model, parse_preset(f"{preset.topology}-w8a8"), split, dest / "model.pt",
                         layer_bits=chosen.bits)  # fmt: skip
        record = {
            "preset": preset.name,
            "topology": preset.topology,
            "board": cfg.board.value,
            "from": cfg.cal_from,
            "settings": {
                "widths": widths,
                "jaccard_tol": tol.jaccard,
                "flip_tol": tol.flip,
                "accuracy_tol": tol.accuracy,
                "mixed": cfg.cal_mixed,
                "bias_correction": cfg.cal_bias_correction,
                "rounding_steps": cfg.cal_rounding_steps,
                "rounding_mu": cfg.cal_rounding_mu,
                "finetune_epochs": cfg.cal_finetune_epochs,
                "slice_grid": cfg.cal_grid,
                "cost": "LUT4 / board LUT4 + DP16KD * 18 kbit / board block-RAM kbit (compiler estimate)",
            },
            "candidates": [c.row(tol) for c in cands],
            "greedy_path": path,
            "choice": _choice_record(by_b),
            "accuracy_choice": _choice_record(by_a),
            "export_check": check.as_dict(),
            "seconds": round(time.perf_counter() - start, 1),
        }
        record["reference"] = {
            "cal_accuracy": cands[0].cal["accuracy_ref"],
            "test_accuracy": cands[0].test["accuracy_ref"],
        }
        (dest / "calibration.json").write_text(json.dumps(record, indent=2, default=_json) + "\n")
        from qnnflow.models.calibrate_plots import plot_candidates

        plot_candidates(record, dest / "candidates.png")
        stamps.commit(staging, build)
    log(f"  calibrate: {by_b.why}")
    log(f"  calibrate: accuracy rule -> {by_a.candidate.name}")
    return record


def _choice_record(c: Choice) -> dict:
    return {
        "rule": c.rule,
        "name": c.candidate.name,
        "weights": list(c.candidate.bits.weights),
        "acts": list(c.candidate.bits.acts),
        "passed": c.passed,
        "why": c.why,
        "cal": c.candidate.cal,
        "test": c.candidate.test,
        "resources": c.candidate.resources,
    }


def _json(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
