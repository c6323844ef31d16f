"""The PDE-GCN: graph gradient against networkx's Laplacians, the layers against a dense Kronecker-product
evaluation, the symmetric Jacobian, the shared K, a short training run, and bad input."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from qnnflow.models.gcn import (
    PDEGCN,
    DiffusionLayer,
    GraphGradient,
    check_bits,
    linear_weight,
    weight_count,
)
from qnnflow.models.gcn_data import load_graph
from qnnflow.models.gcn_study import accuracy, layer_errors, parse_bits, train_gcn

from qnnflow.cli import main


def _karate_edges(weighted: bool) -> tuple[nx.Graph, np.ndarray, np.ndarray | None]:
    g = nx.karate_club_graph()
    edges = np.array(list(g.edges()))
    weights = np.array([g.edges[u, v]["weight"] for u, v in edges], dtype=float) if weighted else None
    return g, edges, weights


@pytest.mark.parametrize("weighted", [False, True])
def test_graph_gradient_gives_the_graph_laplacian(weighted):
    g, edges, weights = _karate_edges(weighted)
    w = "weight" if weighted else None
    grad = GraphGradient(edges, 34, weights, dtype=torch.float64)
    s = grad.dense().numpy()
    np.testing.assert_allclose(s.T @ s, nx.laplacian_matrix(g, weight=w).toarray(), atol=1e-12)  # D - A
    # every row: one edge, +sqrt(w) at one end and -sqrt(w) at the other
    assert ((s != 0).sum(1) == 2).all() and np.allclose(s.sum(1), 0)
    norm = GraphGradient(edges, 34, weights, normalized=True, dtype=torch.float64).dense().numpy()
    np.testing.assert_allclose(norm.T @ norm, nx.normalized_laplacian_matrix(g, weight=w).toarray(), atol=1e-12)


def test_sparse_operator_equals_its_dense_matrix():
    _, edges, weights = _karate_edges(True)
    grad = GraphGradient(edges, 34, weights, normalized=True, dtype=torch.float64)
    s = grad.dense()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(34, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(len(edges), 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(grad(x), s @ x)
    torch.testing.assert_close(grad.transpose(y), s.T @ y)


def _small_graph() -> tuple[GraphGradient, np.ndarray]:
    """A 7-node graph with a cycle, a chord and a pendant node."""
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 0], [1, 3], [4, 5], [5, 6]])
    return GraphGradient(edges, 7, normalized=True, dtype=torch.float64), edges


def _float_layer(symmetric: bool, channels: int = 3, h: float = 0.7, seed: int = 0) -> DiffusionLayer:
    torch.manual_seed(seed)
    return DiffusionLayer(channels, h, symmetric, bits=None).double()


@pytest.mark.parametrize("symmetric", [True, False])
def test_layer_jacobian_against_kronecker_products(symmetric):
    """The layer's Jacobian (autograd) equals the dense formula I - h (S^T (x) K2) Omega (S (x) K1), with
    K2 = K1^T for the symmetric layer; vec() row-major, so (S x K^T) is (S (x) K) vec(x). It is symmetric for the
    symmetric layer and not for the non-symmetric one."""
    grad, _ = _small_graph()
    layer = _float_layer(symmetric)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.reshape(7, 3), grad).reshape(-1), x.reshape(-1))
    s = grad.dense()
    k1 = layer.k1.weight.detach()
    k2 = k1.T.contiguous() if symmetric else layer.k2.weight.detach()
    m = torch.kron(s, k1)
    omega = torch.diag((m @ x.reshape(-1) > 0).double())
    expected = torch.eye(21, dtype=torch.float64) - 0.7 * torch.kron(s.T.contiguous(), k2) @ omega @ m
    torch.testing.assert_close(jac, expected)
    asym = float((jac - jac.T).abs().max() / jac.abs().max())
    if symmetric:
        assert asym < 1e-12
    else:
        assert asym > 0.01
    # and the forward pass itself is the formula
    out = x.reshape(-1) - 0.7 * torch.kron(s.T.contiguous(), k2) @ torch.relu(m @ x.reshape(-1))
    torch.testing.assert_close(layer(x, grad).reshape(-1), out)


def test_symmetric_layer_holds_one_k_used_twice():
    sym, non = _float_layer(True, channels=4), _float_layer(False, channels=4)
    assert [n for n, _ in sym.named_parameters()] == ["k1.weight"]
    assert sorted(n for n, _ in non.named_parameters()) == ["k1.weight", "k2.weight"]
    a, b = (PDEGCN(10, 3, width=4, layers=5, symmetric=s) for s in (True, False))
    assert weight_count(b) - weight_count(a) == 5 * 4 * 4  # one C x C matrix per layer saved
    assert weight_count(a) == 10 * 4 + 5 * 4 * 4 + 4 * 3
    # the transposed use reads the same parameter: its gradient collects both uses
    grad, _ = _small_graph()
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sym(x, grad).sum().backward()
    s, k = grad.dense(), sym.k1.weight.detach().clone().requires_grad_(True)
    (x - sym.h * s.T @ (torch.relu(s @ x @ k.T) @ k)).sum().backward()
    torch.testing.assert_close(sym.k1.weight.grad, k.grad)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantized_symmetric_layer_uses_the_quantized_k_both_ways(bits):
    """With quantized activations bypassed, the layer is x - h S^T (relu(S x Kq^T) Kq) with Kq the quantized K
    (on its grid: an integer multiple of one scale, at most 2^(bits-1) - 1 levels a side; 1 bit: +-scale)."""
    torch.manual_seed(0)
    layer = DiffusionLayer(4, 0.5, True, bits=bits).eval()
    kq = linear_weight(layer.k1).detach().double()
    scale = kq.abs().max()
    levels = torch.round(kq / scale * (1 if bits == 1 else 2 ** (bits - 1) - 1))
    torch.testing.assert_close(kq / scale * (1 if bits == 1 else 2 ** (bits - 1) - 1), levels)
    if bits == 1:
        assert set(levels.unique().tolist()) <= {-1.0, 1.0}
    grad, _ = _small_graph()
    grad32 = GraphGradient(_small_graph()[1], 7, normalized=True)
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = layer(x, grad32, quant_act=False).double()
    s = grad.dense()
    expected = x.double() - 0.5 * s.T @ (torch.relu(s @ x.double() @ kq.T) @ kq)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_check_bits_and_parse_bits_refuse_bad_widths():
    assert check_bits(None) is None and check_bits(4) == 4
    for bad in (0, 9, 2.0, "4", True):
        with pytest.raises(ValueError, match=r"bits must be an integer from 1 to 8 or None \(float\), not"):
            check_bits(bad)
    assert parse_bits("float") is None and parse_bits("8") == 8
    with pytest.raises(ValueError, match="bits must be an integer from 1 to 8 or 'float', not 'two'"):
        parse_bits("two")
    with pytest.raises(ValueError, match="not 16"):
        PDEGCN(4, 2, bits=16)


def test_unknown_graph_and_bad_split_are_clear_messages():
    with pytest.raises(ValueError, match="unknown graph data set 'cora'; expected one of karate, digits-knn"):
        load_graph("cora")
    with pytest.raises(ValueError, match=r"karate: labels per class must be an integer from 1 to 16 .* not 17"):
        load_graph("karate", labels_per_class=17)


def test_graphs_are_what_the_docs_say():
    karate = load_graph("karate", seed=3)
    assert karate.num_nodes == 34 and len(karate.edges) == 78 and karate.num_classes == 2
    assert np.bincount(karate.labels).tolist() == [17, 17]
    assert len(karate.train_idx) == 4 and np.bincount(karate.labels[karate.train_idx]).tolist() == [2, 2]
    assert not set(karate.train_idx) & set(karate.test_idx) and len(karate.test_idx) == 30
    digits = load_graph("digits-knn", labels_per_class=5, k=4)
    assert digits.num_nodes == 1797 and digits.features.shape == (1797, 64)
    # every node has at least its k chosen neighbours; edges are i < j, unique
    deg = np.bincount(digits.edges.ravel(), minlength=1797)
    assert deg.min() >= 4 and (digits.edges[:, 0] < digits.edges[:, 1]).all()
    assert len(np.unique(digits.edges, axis=0)) == len(digits.edges)
    # node 0's 4 nearest images by a direct distance computation are among its neighbours
    px = digits.features * 16
    dist = ((px - px[0]) ** 2).sum(1)
    dist[0] = np.inf
    nbrs = set(digits.edges[digits.edges[:, 0] == 0, 1]) | set(digits.edges[digits.edges[:, 1] == 0, 0])
    assert set(np.argsort(dist, kind="stable")[:4]) <= nbrs


def test_training_learns_the_karate_club_above_chance():
    torch.set_num_threads(1)
    data = load_graph("karate", seed=0)
    model = train_gcn(data, True, 4, width=8, layers=4, epochs=100, log=None)
    acc = accuracy(model, data)
    assert acc >= 0.75, acc  # the two classes are 17 and 17 nodes: chance is 0.5
    errs = layer_errors(model, data)
    assert len(errs) == 5 and all(e["rmse"] >= 0 for e in errs)


def test_gcn_command_refuses_bad_input_in_one_message(capsys, tmp_path):
    assert main(["gcn", "--data", "cora", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qnnflow gcn: error: unknown graph data set 'cora'") and "Traceback" not in err
    assert main(["gcn", "--data", "karate", "--bits", "2", "9", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "bits must be an integer from 1 to 8 or None (float), not 9" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantized_network_states_and_activations_take_at_most_2_to_the_bits_values(bits):
    """Every state entering a layer and every ReLU output of the quantized network lies on a grid of 2^bits
    levels (one scale per tensor); with quant_act=False the same tensors take many more values."""
    torch.manual_seed(0)
    data = load_graph("karate")
    model = PDEGCN(34, 2, width=6, layers=3, bits=bits).eval()
    seen: dict[str, list[torch.Tensor]] = {"state": [], "act": []}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, kind=kind: seen[kind].append(out.detach()))
        for layer in model.layers
        for m, kind in ((layer.state_quant, "state"), (layer.act, "act"))
    ]
    grad = GraphGradient(data.edges, 34, normalized=True)
    with torch.no_grad():
        model(torch.as_tensor(data.features), grad)
    for h in hooks:
        h.remove()
    assert len(seen["state"]) == 3 and len(seen["act"]) == 3
    for t in seen["state"] + seen["act"]:
        assert len(t.unique()) <= 2**bits
    with torch.no_grad():
        full: list[torch.Tensor] = []
        model(torch.as_tensor(data.features), grad, quant_act=False, states=full)
    assert len(full[-1].unique()) > 2**bits


def test_gcn_command_writes_json_and_plots(capsys, tmp_path):
    out = tmp_path / "karate"
    argv = ["gcn", "--data", "karate", "--out", str(out), "--bits", "float", "4"]
    assert main(argv + ["--width", "4", "--layers", "2", "--epochs", "5"]) == 0
    result = json.loads((out / "gcn.json").read_text())
    runs = {(r["variant"], r["bits"]): r for r in result["runs"]}
    assert set(runs) == {(v, b) for v in ("symmetric", "non-symmetric") for b in (None, 4)}
    # K_open 34 x 4, per layer one (symmetric) or two 4 x 4 matrices, classifier 4 x 2
    assert runs["symmetric", 4]["weights"] == 34 * 4 + 2 * 16 + 8
    assert runs["non-symmetric", 4]["weights"] == 34 * 4 + 2 * 2 * 16 + 8
    assert runs["symmetric", None]["layer_errors"] is None
    errs = runs["symmetric", 4]["layer_errors"]
    assert [e["layer"] for e in errs] == [0, 1, 2] and errs[0]["rmse"] == 0.0  # x_0 has no activation quantizer
    assert (out / "gcn_rmse.png").stat().st_size > 0 and (out / "gcn_accuracy.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "epoch    5/5" in printed and "weights: symmetric 176 vs non-symmetric 208" in printed
