"""Graphs for semi-supervised node classification, all shipped by installed packages (nothing downloaded).

- ``karate``: Zachary's karate club as networkx ships it (``networkx.karate_club_graph``): 34 members,
  78 friendships, two classes (the ``club`` each member joined after the split, "Mr. Hi" 17 or
  "Officer" 17). The graph has no node features; a node's features are its row of A + I (34 0/1
  values: itself and its friends), so that members with common friends start alike (one-hot
  identities, the other usual choice, give the diffusion nothing to smooth: every unlabelled node's
  embedding is then a free, untrained vector). Edges unweighted (networkx's interaction counts are
  ignored).
- ``digits-knn``: scikit-learn's 8x8 digits (1,797 images, 10 classes); a node per image, its 64
  pixels / 16 (0..1) as features; edges join each image to its ``k`` (default 10) nearest neighbours
  in Euclidean pixel distance (ties to the lower index: a stable sort of exact integer distances, so
  the graph is the same on every machine), symmetrized (an edge if either end chose the other),
  unweighted.

Labelled nodes: ``labels_per_class`` per class drawn with ``seed`` (default 2 on karate, 10 on
digits-knn); every other node is a test node. No validation set: training runs a fixed number of
epochs, nothing is selected on test labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRAPHS = ("karate", "digits-knn")


@dataclass(frozen=True)
class GraphData:
    """One graph: node features (N, F) float32, labels (N,), undirected edges (E, 2) with i < j."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    edges: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    num_classes: int
    description: str

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    def summary(self) -> str:
        return (
            f"{self.name}: {self.num_nodes} nodes, {len(self.edges)} edges, {self.features.shape[1]} features, "
            f"{self.num_classes} classes, {len(self.train_idx)} labelled, {len(self.test_idx)} test"
        )


def load_graph(name: str, labels_per_class: int | None = None, seed: int = 0, k: int = 10) -> GraphData:
    """The graph ``name`` (one of :data:`GRAPHS`) with its labelled / test split."""
    if name == "karate":
        feats, labels, edges, desc = _karate()
        default_lpc = 2
    elif name == "digits-knn":
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"digits-knn: k (neighbours per node) must be a positive integer, not {k!r}")
        feats, labels, edges, desc = _digits_knn(k)
        default_lpc = 10
    else:
        raise ValueError(f"unknown graph data set {name!r}; expected one of {', '.join(GRAPHS)}")
    lpc = default_lpc if labels_per_class is None else labels_per_class
    counts = np.bincount(labels)
    if not isinstance(lpc, int) or lpc < 1 or lpc >= counts.min():
        raise ValueError(
            f"{name}: labels per class must be an integer from 1 to {counts.min() - 1} (the smallest class has "
            f"{counts.min()} nodes), not {lpc!r}"
        )
    train_idx = _labelled_nodes(labels, lpc, seed)
    test_idx = np.setdiff1d(np.arange(len(labels)), train_idx)
    return GraphData(name, feats, labels, edges, train_idx, test_idx, int(labels.max()) + 1, desc)


def _labelled_nodes(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` nodes of every class, drawn without replacement by ``seed``; sorted."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def _karate() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    import networkx as nx

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    labels = np.array([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(n)], dtype=np.int64)
    edges = np.array(sorted((min(u, v), max(u, v)) for u, v in g.edges()), dtype=np.int64)
    desc = (
        f"Zachary's karate club (networkx {nx.__version__} karate_club_graph): {n} nodes, {len(edges)} unweighted "
        "edges, classes Mr. Hi / Officer, features the rows of A + I"
    )
    feats = np.eye(n, dtype=np.float32)
    feats[edges[:, 0], edges[:, 1]] = feats[edges[:, 1], edges[:, 0]] = 1.0
    return feats, labels, edges, desc


def _digits_knn(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    import sklearn
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype(np.int64)  # integers 0..16: exact distances, no float ties to break
    sq = (pixels**2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * pixels @ pixels.T
    np.fill_diagonal(dist, np.iinfo(np.int64).max)  # no self loops
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(pixels)), k)
    pairs = np.stack([np.minimum(rows, nearest.ravel()), np.maximum(rows, nearest.ravel())], 1)
    edges = np.unique(pairs, axis=0)
    desc = (
        f"scikit-learn {sklearn.__version__} 8x8 digits as a graph: {len(pixels)} nodes (pixels / 16 as features), "
        f"{len(edges)} unweighted edges joining each image to its {k} nearest in Euclidean pixel distance "
        "(ties to the lower index), symmetrized"
    )
    return (pixels / 16.0).astype(np.float32), digits.target.astype(np.int64), edges, desc
