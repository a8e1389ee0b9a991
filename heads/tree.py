"""Maximum spanning dependency tree with exactly one child of the root (Chu-Liu/Edmonds).

The biaffine head scores every (dependent, head) pair; a dependency parse must be a tree hanging
from an artificial ROOT node with exactly one word attached to ROOT. :func:`mst_decode` returns the
highest-scoring such tree.

Plain Chu-Liu/Edmonds finds the best arborescence but may attach several words to ROOT. When it
does, the single-root step here tries every word as the root child, in order of an upper bound on
the best tree it can give, and stops as soon as that bound cannot beat the best tree found, so the
result is the exact maximum without relying on which root children the unconstrained tree picked.
In the common case (the unconstrained tree already has one root child) it costs a single
Chu-Liu/Edmonds run.
"""

from __future__ import annotations

import numpy as np

_ABSENT = -np.inf  # an edge the search may not use


def mst_decode(scores: np.ndarray) -> np.ndarray:
    """Best single-root dependency tree under ``scores``.

    Args:
        scores: ``[n + 1, n + 1]`` matrix, ``scores[dep, head]`` = score of attaching ``dep`` to
            ``head``; node 0 is ROOT and nodes ``1..n`` are the words. Row 0 (ROOT has no head) and
            the diagonal (self-loops) are ignored; every other entry must be finite.

    Returns:
        ``int64`` array of length ``n``: the head of words ``1..n`` (0 = ROOT). The heads form a
        tree: no cycles and exactly one word attached to ROOT. Among all such trees it maximises
        the summed score of its edges.

    Raises:
        ValueError: ``scores`` is not a square 2-D matrix or has a non-finite entry it would use.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError(f"mst_decode needs a square [n+1, n+1] score matrix, got shape {matrix.shape}")
    n = matrix.shape[0] - 1
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = matrix.copy()
    graph[0, :] = _ABSENT
    np.fill_diagonal(graph, _ABSENT)
    used = np.ones_like(graph, dtype=bool)
    used[0, :] = False
    np.fill_diagonal(used, False)
    if not np.isfinite(matrix[used]).all():
        raise ValueError("mst_decode: every score outside row 0 and the diagonal must be finite")

    heads = _chu_liu_edmonds(graph)
    if np.count_nonzero(heads[1:] == 0) == 1:
        # The best of all trees is single-root, hence also the best single-root tree.
        return heads[1:].astype(np.int64)
    return _best_single_root(graph)[1:].astype(np.int64)


def _best_single_root(graph: np.ndarray) -> np.ndarray:
    """Exact best tree with one ROOT child: try each word as that child, best bound first."""
    n = graph.shape[0] - 1
    word_edges = graph[1:, 1:]  # diagonal already absent
    best_word_head = word_edges.max(
        axis=1
    )  # finite: every word has another word as a candidate head (n >= 2)
    # Tree with root child r scores at most: root edge of r + every other word's best non-root head.
    bounds = graph[1:, 0] + best_word_head.sum() - best_word_head
    best_heads: np.ndarray | None = None
    best_total = -np.inf
    for index in np.argsort(-bounds, kind="stable"):
        if bounds[index] <= best_total:
            break
        root_child = index + 1
        constrained = graph.copy()
        constrained[1:, 0] = _ABSENT
        constrained[root_child, 0] = graph[root_child, 0]
        heads = _chu_liu_edmonds(constrained)
        total = graph[np.arange(1, n + 1), heads[1:]].sum()
        if total > best_total:
            best_total, best_heads = total, heads
    assert best_heads is not None  # the first candidate always yields a finite tree
    return best_heads


def _chu_liu_edmonds(graph: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0.

    ``graph[dep, head]`` with ``-inf`` for unusable edges (row 0 and the diagonal must be ``-inf``);
    every node must be reachable. Returns heads for all nodes, ``heads[0] = -1``.
    """
    heads = graph.argmax(axis=1)
    heads[0] = -1
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads

    # Contract the cycle into one new node. Entering the cycle at node c from outside node u breaks
    # c's cycle edge, so that edge is scored relative to the edge it replaces.
    size = graph.shape[0]
    in_cycle = np.zeros(size, dtype=bool)
    in_cycle[cycle] = True
    outside = np.flatnonzero(~in_cycle)  # starts with ROOT, which is never on a cycle
    cycle_edge = graph[cycle, heads[cycle]]
    enter = graph[np.ix_(cycle, outside)] - cycle_edge[:, None]  # [cycle node, outside head]
    leave = graph[np.ix_(outside, cycle)]  # [outside dep, cycle node as head]

    contracted_node = len(outside)
    contracted = np.full((len(outside) + 1, len(outside) + 1), _ABSENT)
    contracted[: len(outside), : len(outside)] = graph[np.ix_(outside, outside)]
    contracted[contracted_node, : len(outside)] = enter.max(axis=0)
    contracted[: len(outside), contracted_node] = leave.max(axis=1)
    contracted[0, :] = _ABSENT
    contracted[contracted_node, contracted_node] = _ABSENT

    sub_heads = _chu_liu_edmonds(contracted)

    # Expand: map heads back, keep the cycle except at the node where the chosen edge enters it.
    result = heads.copy()
    for position, node in enumerate(outside[1:], start=1):
        head = sub_heads[position]
        result[node] = cycle[leave[position].argmax()] if head == contracted_node else outside[head]
    entry_head = sub_heads[contracted_node]
    entry = enter[:, entry_head].argmax()
    result[cycle[entry]] = outside[entry_head]
    return result


def _find_cycle(heads: np.ndarray) -> np.ndarray | None:
    """Nodes of one cycle in the head graph (``heads[0] = -1``), or None when it has none."""
    size = len(heads)
    state = np.zeros(size, dtype=np.int8)  # 0 unvisited, 1 on the current walk, 2 done
    state[0] = 2
    for start in range(1, size):
        walk = []
        node = start
        while state[node] == 0:
            state[node] = 1
            walk.append(node)
            node = heads[node]
        if state[node] == 1:
            # The walk came back to itself: the cycle is the walk from that node onwards.
            return np.array(walk[walk.index(node) :], dtype=np.int64)
        for visited in walk:
            state[visited] = 2
    return None
