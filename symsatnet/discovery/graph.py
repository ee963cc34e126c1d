"""The graph method: quantise the matrix into an edge- and vertex-coloured graph and take
its automorphism group with nauty (``pynauty``, optional)."""

from __future__ import annotations

import numpy as np

from .. import groups as G

# A graph quantisation boundary is tried at the few largest drops between consecutive gaps.
_GRAPH_QUANTISATIONS = 3
_GRAPH_MAX_CLASSES = 64


_PYNAUTY_HINT = ("method='graph' needs the optional dependency pynauty: "
                 "pip install pynauty  (or: pip install symsatnet[graph])")


def import_pynauty():
    try:
        import pynauty
    except ImportError as error:
        raise ImportError(f"{_PYNAUTY_HINT} ({error})") from None
    return pynauty


def _gap_quantisations(values: np.ndarray, limit: int) -> list[np.ndarray]:
    """A few plausible class labellings of 1-D values, from the largest gaps.

    Classes of equal coefficients plus noise are separated by the largest gaps between
    sorted values; the right number of classes is where the next largest gap is much
    smaller (the ratio of consecutive sorted gaps drops). The best few drops are returned,
    one labelling each, plus the single class (k = 1).
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    gaps = np.diff(ordered)
    labellings = [np.zeros(len(values), dtype=np.int64)]
    if len(gaps) == 0 or ordered[-1] - ordered[0] <= 0:
        return labellings
    widest = np.sort(gaps)[::-1][: limit]
    floor = max(float(widest[0]) * 1e-12, 1e-300)
    ratios = widest[:-1] / np.maximum(widest[1:], floor)
    best = np.argsort(ratios)[::-1][:_GRAPH_QUANTISATIONS]
    for cut_count in sorted(int(index) + 1 for index in best):
        threshold = widest[cut_count - 1]
        cuts = np.flatnonzero(gaps >= threshold)[:cut_count]
        sorted_labels = np.zeros(len(values), dtype=np.int64)
        sorted_labels[cuts + 1] = 1
        labels = np.empty(len(values), dtype=np.int64)
        labels[order] = np.cumsum(sorted_labels)
        labellings.append(labels)
    return labellings


def _automorphisms(n: int, edge_labels: np.ndarray, vertex_labels: np.ndarray) -> list[np.ndarray]:
    """Generators of the automorphisms of the complete graph with coloured edges and vertices.

    Edge colours become bit patterns across layers of copies of the vertices (copy l of v is
    vertex l*n + v, consecutive copies joined), so nauty, which knows vertex colours only,
    sees them; the commonest colour is pattern 0, i.e. no edges at all.
    """
    pynauty = import_pynauty()
    upper_rows, upper_columns = np.triu_indices(n, 1)
    counts = np.bincount(edge_labels)
    code = np.empty(len(counts), dtype=np.int64)
    code[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    edge_codes = code[edge_labels]
    layers = max(1, int(np.ceil(np.log2(max(len(counts), 2)))))
    adjacency: dict[int, list[int]] = {}
    for layer in range(layers):
        chosen = (edge_codes >> layer) & 1 == 1
        sources = upper_rows[chosen] + layer * n
        targets = upper_columns[chosen] + layer * n
        order = np.argsort(sources, kind="stable")
        sources, targets = sources[order], targets[order]
        starts = np.flatnonzero(np.r_[True, sources[1:] != sources[:-1]]) if len(sources) else []
        for begin, end in zip(starts, list(starts[1:]) + [len(sources)]):
            adjacency[int(sources[begin])] = targets[begin:end].tolist()
    for layer in range(layers - 1):
        for vertex in range(n):
            adjacency.setdefault(layer * n + vertex, []).append((layer + 1) * n + vertex)
    colouring = []
    for layer in range(layers):
        for label in range(int(vertex_labels.max()) + 1):
            colouring.append({int(v) + layer * n for v in np.flatnonzero(vertex_labels == label)})
    graph = pynauty.Graph(layers * n, directed=False, adjacency_dict=adjacency, vertex_coloring=colouring)
    generators = pynauty.autgrp(graph)[0]
    return [np.asarray(generator[:n], dtype=np.int64) for generator in generators]


def graph_options(matrix: np.ndarray, include_diagonal: bool) -> list[G.Group]:
    """Automorphism groups of the quantised matrix, one per plausible quantisation."""
    n = matrix.shape[0]
    upper = matrix[np.triu_indices(n, 1)]
    edge_labellings = _gap_quantisations(upper, _GRAPH_MAX_CLASSES)
    vertex_labellings = (_gap_quantisations(np.diag(matrix).copy(), _GRAPH_MAX_CLASSES)
                         if include_diagonal else [np.zeros(n, dtype=np.int64)])
    found: list[G.Group] = []
    seen: set = set()
    for vertex_labels in vertex_labellings:
        for edge_labels in edge_labellings:
            generators = _automorphisms(n, edge_labels, vertex_labels)
            key = tuple(tuple(p.tolist()) for p in generators)
            if key in seen:
                continue
            seen.add(key)
            found.append(G.FromGenerators(n, generators) if generators else G.Trivial(n))
    return found
