"""Training and measuring the quantized PDE-GCNs (:mod:`qnnflow.models.gcn`): ``qnnflow gcn``.

For one graph (:mod:`qnnflow.models.gcn_data`) and each variant (symmetric, non-symmetric) and bit
width (float and the widths asked for), :func:`run_study` trains a network from the same seed
(full batch, Adam, cross-entropy on the labelled nodes, a fixed number of epochs) and measures on
the test nodes:

- accuracy;
- the per-layer activation error of the paper's figure: the RMS difference between x_j of the
  quantized network and x_j of the same quantized weights with every activation quantizer bypassed
  (x_0 the embedding, x_1 .. x_L the diffusion layers' outputs, before the next layer's state
  quantizer), absolute and relative to the RMS of the full-precision-activation x_j;
- parameter counts (weight-matrix entries, and all trainable parameters with quantizer scales).

It writes ``gcn.json``, ``gcn_rmse.png`` (per layer) and ``gcn_accuracy.png`` (against bits).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from qnnflow.models.gcn import PDEGCN, GraphGradient, check_bits, parameter_count, weight_count
from qnnflow.models.gcn_data import GraphData, load_graph
from torch import nn

PAPER = (
    "Ben-Yair, Ben Shalom, Eliasof, Treister, Quantized Convolutional Neural Networks Through the Lens of "
    "Partial Differential Equations (arXiv 2109.00095)"
)
# the authors' figure data, per-layer activation RMSE standard vs symmetric, ResNet56 on CIFAR-10 (not a GCN)
PAPER_RMSE = {"resnet56_cifar10_layer18": (0.192, 0.039), "resnet56_cifar10_last_layer": (0.138, 0.076)}


def parse_bits(text: str) -> int | None:
    """One ``--bits`` entry: ``float`` or an integer 1..8."""
    if text == "float":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"bits must be an integer from 1 to 8 or 'float', not {text!r}") from None
    return check_bits(value)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one thread while inside: the ops are small (a thread pool only adds overhead, badly so on a
    busy machine), and the float summation order, so the trained model, does not depend on the core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def graph_gradient(data: GraphData) -> GraphGradient:
    """The normalized graph gradient of ``data``'s graph, as the networks here use it."""
    return GraphGradient(data.edges, data.num_nodes, normalized=True)


def train_gcn(
    data: GraphData,
    symmetric: bool,
    bits: int | None,
    width: int = 32,
    layers: int = 8,
    h: float = 0.25,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> PDEGCN:
    """A PDE-GCN trained on ``data``'s labelled nodes; deterministic for a given seed.

    ``weight_decay`` None: 5e-4, but 0 at 1 bit: with it the bipolar weights' mean-|w| scales ended near
    zero (x_j without activation quantizers had an RMS of 5e-6 to 9e-5) and the w1a1 networks did not
    learn (karate: test accuracy 0.567 / 0.300 symmetric / non-symmetric; without it 0.767 / 0.800)."""
    if weight_decay is None:
        weight_decay = 0.0 if bits == 1 else 5e-4
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs}")
    with single_thread():
        return _train(data, symmetric, bits, width, layers, h, epochs, lr, weight_decay, seed, log)


def _train(data, symmetric, bits, width, layers, h, epochs, lr, weight_decay, seed, log) -> PDEGCN:
    torch.manual_seed(seed)
    model = PDEGCN(data.features.shape[1], data.num_classes, width, layers, h, symmetric, bits)
    grad = graph_gradient(data)
    feats = torch.as_tensor(data.features)
    labels = torch.as_tensor(data.labels)
    train_idx = torch.as_tensor(data.train_idx)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    name = _variant_name(symmetric, bits)
    every = max(1, epochs // 4)
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(feats, grad)[train_idx], labels[train_idx])
        loss.backward()
        opt.step()
        if log is not None and (epoch % every == 0 or epoch == epochs):
            log(f"  {name:<22} epoch {epoch:>4}/{epochs}: loss {loss.item():.4f}, test {accuracy(model, data):.4f}")
    return model.eval()


@torch.no_grad()
def accuracy(model: PDEGCN, data: GraphData, quant_act: bool = True) -> float:
    """Accuracy on the test nodes (eval mode)."""
    was = model.training
    model.eval()
    logits = model(torch.as_tensor(data.features), graph_gradient(data), quant_act=quant_act)
    model.train(was)
    pred = logits.argmax(1).numpy()
    return float((pred[data.test_idx] == data.labels[data.test_idx]).mean())


@torch.no_grad()
def layer_errors(model: PDEGCN, data: GraphData) -> list[dict]:
    """Per-layer RMS difference on the test nodes between x_j with quantized activations and x_j of the
    same weights with full-precision activations (module docstring)."""
    model.eval()
    grad, feats = graph_gradient(data), torch.as_tensor(data.features)
    quant, full = [], []
    model(feats, grad, quant_act=True, states=quant)
    model(feats, grad, quant_act=False, states=full)
    rows = []
    for j, (q, f) in enumerate(zip(quant, full, strict=True)):
        q, f = q[data.test_idx].double(), f[data.test_idx].double()
        rmse = float(torch.sqrt(((q - f) ** 2).mean()))
        scale = float(torch.sqrt((f**2).mean()))
        rows.append({"layer": j, "rmse": rmse, "relative_rmse": rmse / scale if scale > 0 else float("nan")})
    return rows


def _variant_name(symmetric: bool, bits: int | None) -> str:
    return f"{'symmetric' if symmetric else 'non-symmetric'} {'float' if bits is None else f'w{bits}a{bits}'}"


def run_study(
    data_name: str,
    out: Path | str,
    bits: Sequence[int | None] = (None, 1, 2, 4, 8),
    width: int = 32,
    layers: int = 8,
    h: float = 0.25,
    epochs: int = 200,
    seed: int = 0,
    labels_per_class: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and measure both variants at every width in ``bits``; writes gcn.json and two PNG plots."""
    bits = [check_bits(b) for b in bits]
    if not bits:
        raise ValueError("bits: at least one width (or float) expected, found none")
    data = load_graph(data_name, labels_per_class=labels_per_class, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"data: {data.summary()}")
    start = time.perf_counter()
    runs = []
    for symmetric in (True, False):
        for b in bits:
            t0 = time.perf_counter()
            model = train_gcn(data, symmetric, b, width, layers, h, epochs, seed=seed, log=log)
            run = {
                "variant": "symmetric" if symmetric else "non-symmetric",
                "bits": b,
                "test_accuracy": accuracy(model, data),
                "test_accuracy_full_precision_activations": accuracy(model, data, quant_act=False),
                "weights": weight_count(model),
                "trainable_parameters": parameter_count(model),
                "layer_errors": layer_errors(model, data) if b is not None else None,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            runs.append(run)
            err = run["layer_errors"]
            log(
                f"{_variant_name(symmetric, b)}: test accuracy {run['test_accuracy']:.4f}, weights {run['weights']:,}"
                + (f", RMSE x_{layers} {err[-1]['rmse']:.4g} (relative {err[-1]['relative_rmse']:.4g})" if err else "")
                + f" ({run['seconds']} s)"
            )
    result = {
        "paper": PAPER,
        "paper_rmse_standard_vs_symmetric": PAPER_RMSE,
        "data": data.description,
        "split": {
            "labelled": len(data.train_idx),
            "test": len(data.test_idx),
            "labels_per_class": len(data.train_idx) // data.num_classes,
            "seed": seed,
        },
        "network": {
            "width": width,
            "layers": layers,
            "h": h,
            "graph_gradient": "S D^-1/2 (normalized), unweighted edges",
            "epochs": epochs,
            "optimizer": "Adam lr 0.01, weight decay 5e-4 (0 at 1 bit), dropout 0.5 before the classifier",
        },
        "runs": runs,
        "summary": summary_lines(runs, layers),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "gcn.json").write_text(json.dumps(result, indent=2) + "\n")
    from qnnflow.models import gcn_plots

    gcn_plots.plot_layer_errors(out / "gcn_rmse.png", runs, data.name)
    gcn_plots.plot_accuracy(out / "gcn_accuracy.png", runs, data.name)
    return result


def summary_lines(runs: list[dict], layers: int) -> list[str]:
    """One line per bit width: accuracy and last-layer relative RMSE of both variants side by side."""
    lines = []
    for b in dict.fromkeys(r["bits"] for r in runs):
        sym = next(r for r in runs if r["bits"] == b and r["variant"] == "symmetric")
        non = next(r for r in runs if r["bits"] == b and r["variant"] == "non-symmetric")
        line = (
            f"{'float' if b is None else f'w{b}a{b}':<6} accuracy symmetric {sym['test_accuracy']:.4f} "
            f"vs non-symmetric {non['test_accuracy']:.4f}"
        )
        if sym["layer_errors"]:
            for key, what in (("rmse", "RMSE"), ("relative_rmse", "relative RMSE")):
                s_err = [e[key] for e in sym["layer_errors"]]
                n_err = [e[key] for e in non["layer_errors"]]
                line += (
                    f"; {what} at x_{layers} {s_err[-1]:.4g} vs {n_err[-1]:.4g} "
                    f"(largest over layers {max(s_err):.4g} vs {max(n_err):.4g})"
                )
        lines.append(line)
    sym_w = next(r["weights"] for r in runs if r["variant"] == "symmetric")
    non_w = next(r["weights"] for r in runs if r["variant"] == "non-symmetric")
    lines.append(f"weights: symmetric {sym_w:,} vs non-symmetric {non_w:,}")
    return lines
