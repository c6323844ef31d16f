"""The boundary stage: decision-boundary geometry of PTQ-W, stopping, learned rounding and QAT models.

``run_boundary(build_dir, cfg)`` reads a build folder written by the train stage (``config.toml``,
``float_model.pt``, ``model.pt``), takes a float *reference* classifier, and measures, against it,
on the calibration and the held-out (test) split of the preset's data set:

1. PTQ-W round-to-nearest at every bit width of ``cfg.bits``, per tensor and per channel;
2. calibration-to-test stopping: the width chosen from calibration boundary metrics, against the
   width chosen from calibration accuracy alone, and their held-out metrics; the Pearson
   correlation of calibration and held-out slice Jaccard distances over the sweep;
3. at ``cfg.rounding_bits``: round-to-nearest, learned rounding without and with the
   boundary-gap term;
4. the build's QAT model (``model.pt``) and any further build folders of the same data set.

It writes ``boundary.json`` (every metric and every parameter, plus the side-by-side table with
the paper's abstract) and PNG plots into ``out_dir``. The metrics are defined in
:mod:`qnnflow.models.boundary_metrics`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from qnnflow.models import boundary_plots as plots
from qnnflow.models.boundary_metrics import BoundaryParams, ReferenceView, slice_labels
from qnnflow.models.boundary_rounding import RoundingConfig, learned_rounding
from qnnflow.models.boundary_stopping import (
    SweepPoint,
    pearson_r,
    select_by_accuracy,
    select_by_boundary,
    sensitivity,
)
from qnnflow.models.ptq import Granularity, quantize_weights
from torch import nn

REFERENCES = ("float", "mlp")
# The paper whose abstract the boundary study compares with, and the figures it quotes (digits).
PAPER_CITATION = (
    'Kiselev, "Boundary-Aware Quantization: Finite-Scale Decision Geometry of Neural Classifiers", '
    "arXiv 2607.01478 (abstract)"
)
PAPER = {
    "ptq8_all_labels_preserved": True,
    "ptq8_jaccard": 0.428,
    "ptq4_accuracy": 0.9733,
    "ptq4_jaccard": 0.970,
    "ptq4_median_shift": 0.0290,
    "stopping_flip": [0.0094, 0.0022],
    "stopping_jaccard": [0.825, 0.524],
    "rounding4_jaccard": [0.457, 0.435],
    "rounding4_band_pair_order_flip": [0.3600, 0.3558],
    "cal_test_jaccard_pearson_r": [0.947, 0.994],
}


@dataclass(frozen=True)
class BoundaryConfig:
    """Every setting of the boundary stage; written into ``boundary.json``."""

    reference: str = "float"  # "float": the build's float_model.pt; "mlp": a 64-64-10 MLP trained here
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    granularities: tuple[str, ...] = ("per-tensor", "per-channel")
    metrics: BoundaryParams = field(default_factory=BoundaryParams)
    jaccard_tol: float = 0.5  # stopping: calibration slice Jaccard distance at most this
    flip_tol: float = 0.0  # stopping: calibration label-flip rate at most this
    accuracy_tol: float = 0.01  # accuracy-only choice: calibration accuracy >= reference - this
    rounding_bits: int = 4
    rounding_granularity: str = "per-tensor"
    rounding_steps: int = 2000
    margin_weight: float = 1.0  # mu of the boundary-gap term (the mu = 0 run is plain AdaRound)
    rounding_band_quantile: float = 0.25
    mlp_epochs: int = 300
    seed: int = 0
    data_dir: Path | None = None
    compare_builds: tuple[Path, ...] = ()  # further build folders whose model.pt to compare
    wa_sweep: bool = True  # also weights + activations quantized through Brevitas (models/calibrate.py)

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, found {self.reference!r}")
        if not self.bits:
            raise ValueError("the bit-width sweep needs at least one width")
        for g in self.granularities:
            Granularity(g)
        if self.rounding_bits not in self.bits:
            raise ValueError(
                f"rounding_bits ({self.rounding_bits}) must be one of the swept widths {self.bits}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir) if self.data_dir else None
        d["compare_builds"] = [str(p) for p in self.compare_builds]
        return d


def _read_build(build_dir: Path) -> tuple[str, str]:
    """The preset and data set of a build folder (from its ``config.toml``)."""
    from qnnflow.models.zoo import parse_preset

    from qnnflow.config import BuildConfig

    if not build_dir.is_dir():
        raise FileNotFoundError(f"build folder not found: {build_dir} (run `qnnflow train` first)")
    cfg = BuildConfig.load(build_dir / "config.toml")
    return cfg.preset, parse_preset(cfg.preset).dataset


def train_mlp_reference(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    """A float MLP on the flattened input: D-64-10, ReLU, full-batch Adam (lr 1e-2, weight decay 1e-4)."""
    torch.manual_seed(seed)
    d = int(np.prod(x.shape[1:]))
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, int(y.max()) + 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval()


def _short(m: dict) -> str:
    return (
        f"acc {m['accuracy']:.4f} flips {m['flips']} Jaccard {m['slice_jaccard_distance']:.3f} "
        f"shift {m['median_boundary_shift']:.4f}"
    )


def run_boundary(
    build_dir: Path | str,
    cfg: BoundaryConfig | None = None,
    out_dir: Path | str | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict:
    """Run the whole study on ``build_dir``; write ``boundary.json`` and plots; return the JSON dict."""
    from qnnflow.models.datasets import load_dataset

    cfg = cfg or BoundaryConfig()
    log = progress or (lambda _s: None)
    build_dir = Path(build_dir)
    out = Path(out_dir) if out_dir is not None else build_dir / "boundary"
    preset, dataset = _read_build(build_dir)
    split = load_dataset(dataset, cfg.data_dir, split_seed=0)
    start = time.perf_counter()
    ref, ref_desc = _reference(cfg, build_dir, preset, split)
    log(f"boundary: {split.summary()}; reference: {ref_desc}")
    cal, test = ReferenceView(ref, split.x_cal, cfg.metrics), ReferenceView(ref, split.x_test, cfg.metrics)
    views = _Views(cal, test, split.y_cal, split.y_test)
    out.mkdir(parents=True, exist_ok=True)

    sweep = _ptq_sweep(ref, views, cfg, log, start)
    stopping, choices, correlation = _stopping_rules(sweep, cfg, log)
    wa = _wa_sweep(build_dir, preset, split, views, cfg, log, start)
    wa_stopping, wa_choices, wa_corr = _stopping_rules(wa, cfg, log, ("per-tensor",)) if wa else ({}, {}, {})
    sens = {
        f"PTQ-W {g}": sensitivity(
            [SweepPoint(r["bits"], g, r["cal"], r["test"]) for r in sweep if r["granularity"] == g],
            cfg.jaccard_tol, cfg.flip_tol,
        )
        for g in cfg.granularities
    }  # fmt: skip
    if wa:
        sens["W+A per-tensor"] = sensitivity(
            [SweepPoint(r["bits"], "w+a", r["cal"], r["test"]) for r in wa], cfg.jaccard_tol, cfg.flip_tol
        )
    rounding, models = _rounding_comparison(ref, views, split.x_cal, cfg, log)
    qat, qat_models = _qat_comparison((build_dir, *cfg.compare_builds), dataset, views, log)
    models.update(qat_models)

    result = {
        "build_dir": str(build_dir),
        "preset": preset,
        "dataset": dataset,
        "split": {"calibration": len(split.y_cal), "test": len(split.y_test)},
        "reference": {
            "kind": cfg.reference,
            "description": ref_desc,
            "cal_accuracy": sweep[0]["cal"]["accuracy_ref"],
            "test_accuracy": sweep[0]["test"]["accuracy_ref"],
        },
        "config": cfg.to_dict(),
        "definitions": DEFINITIONS,
        "slices": {"cal": cal.slice.params(), "test": test.slice.params()},
        "ptq_sweep": sweep,
        "stopping": stopping,
        "cal_test_jaccard_pearson_r": correlation,
        "ptq_wa_sweep": wa,
        "stopping_wa": wa_stopping.get("per-tensor"),
        "cal_test_jaccard_pearson_r_wa": wa_corr.get("per-tensor"),
        "sensitivity": sens,
        "rounding": rounding,
        "qat": qat,
    }
    result["paper_comparison"] = paper_comparison(result)
    result["plots"] = _write_plots(out, cfg, split, ref, test, sweep, choices, models)
    result["plots"].append(str(plots.plot_sensitivity(sens, out / "sensitivity.png")))
    if wa:
        result["plots"].append(str(plots.plot_sweep(wa, wa_choices, out / "sweep_wa.png")))
    result["seconds"] = round(time.perf_counter() - start, 1)
    (out / "boundary.json").write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    log(f"boundary: wrote {out / 'boundary.json'} and {len(result['plots'])} plots ({result['seconds']} s)")
    return result


def _reference(cfg: BoundaryConfig, build_dir: Path, preset: str, split) -> tuple[nn.Module, str]:
    """The float reference classifier of ``cfg.reference`` and a line that describes it."""
    from qnnflow.models.train import load_checkpoint

    if cfg.reference == "float":
        ref = load_checkpoint(build_dir / "float_model.pt")
        return ref, f"float twin of {preset} (float_model.pt of the build: same topology, float weights)"
    ref = train_mlp_reference(split.x_train, split.y_train, cfg.mlp_epochs, cfg.seed)
    return ref, f"float MLP {np.prod(split.input_shape)}-64-10 trained here ({cfg.mlp_epochs} full-batch epochs)"


@dataclass(frozen=True)
class _Views:
    """The reference on the calibration and the held-out split; measures any model against it on both."""

    cal: ReferenceView
    test: ReferenceView
    y_cal: np.ndarray
    y_test: np.ndarray

    def measure(self, model: nn.Module) -> dict:
        return {"cal": self.cal.compare(model, self.y_cal), "test": self.test.compare(model, self.y_test)}


def _ptq_sweep(
    ref: nn.Module, views: _Views, cfg: BoundaryConfig, log: Callable[[str], None], start: float
) -> list[dict]:
    """1. PTQ-W round-to-nearest at every width and granularity: one row (bits, granularity, cal, test) each."""
    sweep: list[dict] = []
    total = len(cfg.bits) * len(cfg.granularities)
    for gran in cfg.granularities:
        for bits in sorted(cfg.bits):
            row = {"bits": bits, "granularity": gran, **views.measure(quantize_weights(ref, bits, gran))}
            sweep.append(row)
            log(
                f"  PTQ-W [{len(sweep)}/{total}] {bits}-bit {gran}: held-out {_short(row['test'])} "
                f"({time.perf_counter() - start:.0f} s)"
            )
    return sweep


def _wa_sweep(
    build_dir: Path, preset: str, split, views: _Views, cfg: BoundaryConfig, log: Callable[[str], None], start: float
) -> list[dict]:
    """1b. Weights and activations quantized after training, per tensor, at every width of 2..8 in
    ``cfg.bits``: the candidates of boundary-aware calibration (:func:`qnnflow.models.calibrate.make_candidate`:
    Brevitas activation calibration and bias correction on the calibration split). Only with the
    float-twin reference and a topology that takes per-layer widths; else empty."""
    from qnnflow.models.calibrate import make_candidate
    from qnnflow.models.train import load_checkpoint
    from qnnflow.models.zoo import LAYER_COUNTS, LayerBits, parse_preset

    from qnnflow.config import BuildConfig

    topo = parse_preset(preset).topology
    if not cfg.wa_sweep or cfg.reference != "float" or topo not in LAYER_COUNTS:
        return []
    state = load_checkpoint(build_dir / "float_model.pt").state_dict()
    rows = []
    widths = sorted(b for b in cfg.bits if 2 <= b <= 8)
    for bits in widths:
        model = make_candidate(topo, split, state, LayerBits.uniform(topo, bits, bits), BuildConfig(seed=cfg.seed))
        rows.append({"bits": bits, "granularity": "per-tensor", **views.measure(model)})
        log(f"  W+A [{len(rows)}/{len(widths)}] w{bits}a{bits}: held-out {_short(rows[-1]['test'])} "
            f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    return rows


def _stopping_rules(
    sweep: list[dict], cfg: BoundaryConfig, log: Callable[[str], None], granularities: Sequence[str] | None = None
) -> tuple[dict, dict, dict]:
    """2. Per granularity: the width each stopping rule chooses (with its metrics), the chosen widths
    alone (for the plot), and the calibration / held-out slice-Jaccard correlation over the sweep."""
    stopping, choices, correlation = {}, {}, {}
    for gran in granularities or cfg.granularities:
        pts = [SweepPoint(r["bits"], gran, r["cal"], r["test"]) for r in sweep if r["granularity"] == gran]
        by_b = select_by_boundary(pts, cfg.jaccard_tol, cfg.flip_tol)
        by_a = select_by_accuracy(pts, cfg.accuracy_tol)
        choices[gran] = {"boundary": by_b.bits, "accuracy": by_a.bits}
        stopping[gran] = {
            key: {
                "rule": c.rule,
                "bits": c.bits,
                "passed": c.passed,
                "test": c.point.test,
                "cal": c.point.cal,
            }
            for key, c in (("by_boundary", by_b), ("by_accuracy", by_a))
        }
        correlation[gran] = pearson_r(
            [q.cal["slice_jaccard_distance"] for q in pts], [q.test["slice_jaccard_distance"] for q in pts]
        )
        log(
            f"  stopping {gran}: boundary rule -> {by_b.bits} bits, accuracy rule -> {by_a.bits} bits; "
            f"cal/held-out Jaccard r = {correlation[gran]:.3f}"
        )
    return stopping, choices, correlation


def _rounding_comparison(
    ref: nn.Module, views: _Views, x_cal: np.ndarray, cfg: BoundaryConfig, log: Callable[[str], None]
) -> tuple[dict, dict]:
    """3. At ``cfg.rounding_bits``: round-to-nearest, then learned rounding without (mu = 0) and with
    the boundary-gap term; their metrics, and the two learned models by key."""
    rcfg = RoundingConfig(
        bits=cfg.rounding_bits,
        granularity=cfg.rounding_granularity,
        steps=cfg.rounding_steps,
        band_quantile=cfg.rounding_band_quantile,
        seed=cfg.seed,
    )
    rounding: dict = {"rtn": views.measure(quantize_weights(ref, cfg.rounding_bits, cfg.rounding_granularity))}
    models = {}
    for key, mu in (("adaround", 0.0), ("adaround_gap", cfg.margin_weight)):
        rc = RoundingConfig(**{**rcfg.to_dict(), "margin_weight": mu})
        models[key], info = learned_rounding(ref, x_cal, rc, progress=log)
        rounding[key] = {**views.measure(models[key]), "optimization": info}
        log(f"  rounding {key}: held-out {_short(rounding[key]['test'])}")
    return rounding, models


def _qat_comparison(
    folders: Sequence[Path], dataset: str, views: _Views, log: Callable[[str], None]
) -> tuple[dict, dict]:
    """4. The QAT model (``model.pt``) of each build folder against the reference: metrics by folder,
    and the models keyed ``qat:<folder>``. Every folder must hold a model of ``dataset``."""
    from qnnflow.models.train import load_checkpoint

    qat, models = {}, {}
    for folder in folders:
        folder = Path(folder)
        other_preset, other_ds = _read_build(folder)
        if other_ds != dataset:
            raise ValueError(f"{folder} holds a {other_ds} model ({other_preset}); the reference is on {dataset}")
        qmodel = load_checkpoint(folder / "model.pt")
        qat[str(folder)] = {"preset": other_preset, **views.measure(qmodel)}
        log(f"  QAT {other_preset} ({folder}): held-out {_short(qat[str(folder)]['test'])}")
        models[f"qat:{folder}"] = qmodel
    return qat, models


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, BoundaryParams):
        return asdict(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _write_plots(
    out: Path,
    cfg: BoundaryConfig,
    split,
    ref,
    test: ReferenceView,
    sweep: list[dict],
    choices: dict,
    models: dict,
) -> list[str]:
    paths = [
        plots.plot_sweep(sweep, choices, out / "sweep.png"),
        plots.plot_cal_vs_test(sweep, out / "cal_vs_test_jaccard.png"),
    ]
    gran = cfg.granularities[0]
    shown = {
        f"ptq{b}": (quantize_weights(ref, b, gran), f"PTQ-W {b}-bit {gran}")
        for b in sorted({min(cfg.bits), cfg.rounding_bits, max(cfg.bits)})
    }
    shown.update({k: (m, k) for k, m in models.items() if not k.startswith("qat:")})
    for k, m in models.items():
        if k.startswith("qat:"):
            shown[f"qat_{Path(k[4:]).name}"] = (m, f"QAT model of {k[4:]}")
    for name, (model, title) in shown.items():
        paths.append(
            plots.plot_slice_comparison(
                test.slice,
                test.slice_labels,
                slice_labels(model, test.slice),
                cfg.metrics.radius,
                out / f"slice_{name}.png",
                title + " (held-out PCA slice)",
                points=split.x_test,
                n_classes=split.num_classes,
            )
        )
    return [str(p) for p in paths]


def paper_comparison(r: dict) -> list[dict]:
    """Rows of (figure, paper value, measured value) for the abstract's digits figures."""
    rows = [
        *_ptq_rows(r["ptq_sweep"]),
        *_stopping_rows(r["stopping"].get("per-tensor")),
        *_rounding_rows(r["rounding"]),
        *_correlation_rows(r["cal_test_jaccard_pearson_r"]),
    ]
    if r.get("ptq_wa_sweep"):  # the same figures with activations quantized too (the paper's are weight-only)
        wa = [*_ptq_rows(r["ptq_wa_sweep"]), *_stopping_rows(r.get("stopping_wa")),
              *_correlation_rows({"per-tensor": r["cal_test_jaccard_pearson_r_wa"]})]  # fmt: skip
        rows += [{**row, "figure": row["figure"].replace("PTQ-W", "PTQ W+A") + " [W+A]"} for row in wa]
    return rows


def _row(name: str, paper: object, measured: object, note: str = "") -> dict:
    return {"figure": name, "paper": paper, "measured": measured, "note": note}


def _ptq_rows(sweep: list[dict]) -> list[dict]:
    """The 8-bit and 4-bit per-tensor PTQ-W figures (none for a width the sweep left out)."""

    def row_of(bits: int) -> dict | None:
        return next((s for s in sweep if s["bits"] == bits and s["granularity"] == "per-tensor"), None)

    rows = []
    if (s8 := row_of(8)) is not None:
        t = s8["test"]
        rows += [
            _row(
                "8-bit PTQ-W: all held-out labels preserved",
                True,
                t["flips"] == 0,
                f"{t['flips']} of {t['n_points']} flipped (per-tensor)",
            ),
            _row("8-bit PTQ-W: slice Jaccard distance", PAPER["ptq8_jaccard"], t["slice_jaccard_distance"]),
        ]
    if (s4 := row_of(4)) is not None:
        t = s4["test"]
        rows += [
            _row("4-bit PTQ-W: accuracy", PAPER["ptq4_accuracy"], t["accuracy"]),
            _row("4-bit PTQ-W: slice Jaccard distance", PAPER["ptq4_jaccard"], t["slice_jaccard_distance"]),
            _row("4-bit PTQ-W: median boundary shift", PAPER["ptq4_median_shift"], t["median_boundary_shift"]),
        ]
    return rows


def _stopping_rows(st: dict | None) -> list[dict]:
    """The per-tensor stopping rules' held-out figures (none without a per-tensor sweep)."""
    if not st:
        return []
    a, b = st["by_accuracy"], st["by_boundary"]
    return [
        _row(
            "stopping: held-out flip rate (accuracy rule -> boundary rule)",
            PAPER["stopping_flip"],
            [a["test"]["flip_rate"], b["test"]["flip_rate"]],
            f"bits {a['bits']} -> {b['bits']}",
        ),
        _row(
            "stopping: held-out Jaccard (accuracy rule -> boundary rule)",
            PAPER["stopping_jaccard"],
            [a["test"]["slice_jaccard_distance"], b["test"]["slice_jaccard_distance"]],
        ),
    ]


def _rounding_rows(ro: dict) -> list[dict]:
    """Learned rounding without and with the gap term, round-to-nearest in the note."""
    plain, gap, rtn = ro["adaround"]["test"], ro["adaround_gap"]["test"], ro["rtn"]["test"]
    return [
        _row(
            "rounding: Jaccard (AdaRound -> + gap term)",
            PAPER["rounding4_jaccard"],
            [plain["slice_jaccard_distance"], gap["slice_jaccard_distance"]],
            f"round-to-nearest: {rtn['slice_jaccard_distance']:.3f}",
        ),
        _row(
            "rounding: band pair-order flip (AdaRound -> + gap term)",
            PAPER["rounding4_band_pair_order_flip"],
            [plain["band_pair_order_flip_rate"], gap["band_pair_order_flip_rate"]],
            f"round-to-nearest: {rtn['band_pair_order_flip_rate']:.4f}",
        ),
    ]


def _correlation_rows(pearson: dict[str, float]) -> list[dict]:
    """The range of the calibration / held-out Jaccard correlation over granularities (NaNs left out)."""
    rs = [v for v in pearson.values() if v == v]
    return [
        _row(
            "calibration vs held-out Jaccard Pearson r (min, max over granularities)",
            PAPER["cal_test_jaccard_pearson_r"],
            [min(rs), max(rs)] if rs else None,
        )
    ]


DEFINITIONS = {
    "reference_pair": "(i, j) = the reference model's top-1 and runner-up class at the point",
    "margin_radius": "(z_i - z_j) / ||grad_x (z_i - z_j)|| with the model's own top pair: first-order "
    "distance (input units) to the nearest pairwise boundary",
    "boundary_shift": "|d_q - d_ref|, d_f = m_f / ||grad_x m_f||, m_f = z_i - z_j on the reference pair",
    "normal_angle": "angle (degrees) between grad_x m_ref and grad_x m_q on the reference pair",
    "slice": "plane through the data mean spanned by the top two principal directions of the split's "
    "inputs, extent = projected data range widened by pad * span, grid x grid cells",
    "boundary_mask": "cells whose (2 radius + 1)^2 neighbourhood (clipped at the edge) holds > 1 label",
    "junction": "cells whose neighbourhood holds >= 3 labels; regions = 8-connected groups of such cells",
    "slice_jaccard_distance": "1 - |A & B| / |A | B| of the reference and quantized boundary masks",
    "slice_flip_rate": "fraction of slice cells whose label differs from the reference's",
    "flip_rate": "fraction of data points whose predicted label differs from the reference's",
    "pair_order_flip": "z_q,i < z_q,j on the reference pair (the order of the reference's top two reverses)",
    "band": "points whose reference margin radius <= the band_quantile-quantile of the split's radii",
}


def run_from_args(
    build_dir: str,
    out: str | None = None,
    reference: str = "float",
    bits: Sequence[int] = (2, 3, 4, 5, 6, 7, 8),
    granularities: Sequence[str] = ("per-tensor", "per-channel"),
    grid: int = 160,
    rounding_bits: int = 4,
    rounding_steps: int = 2000,
    compare: Sequence[str] = (),
    data_dir: str | None = None,
    jaccard_tol: float = 0.5,
    flip_tol: float = 0.0,
    wa_sweep: bool = True,
) -> dict:
    """The CLI's entry: a :class:`BoundaryConfig` from plain arguments, then :func:`run_boundary`."""
    cfg = BoundaryConfig(
        reference=reference,
        bits=tuple(sorted(set(bits))),
        granularities=tuple(granularities),
        metrics=BoundaryParams(grid=grid),
        rounding_bits=rounding_bits,
        rounding_steps=rounding_steps,
        compare_builds=tuple(Path(c) for c in compare),
        data_dir=Path(data_dir) if data_dir else None,
        jaccard_tol=jaccard_tol,
        flip_tol=flip_tol,
        wa_sweep=wa_sweep,
    )
    return run_boundary(build_dir, cfg, out)
