"""The sparse neighbour graph every planning model is built on: who may send to whom, and how far it is.

Models never consider all pairs of trusts: each trust is linked to its k nearest (by great-circle distance) or to
every trust within a distance limit, and the links are made symmetric, so a model of 6,000 sites has about
6,000 × 2k arcs rather than 36 million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_KM = 6371.0088


@dataclass(frozen=True)
class Graph:
    """Directed arcs ``src[i] -> dst[i]`` (indices into ``nodes``) with their length ``km[i]``; no self-loops,
    both directions of every link present, arcs sorted by (src, dst)."""

    nodes: tuple[str, ...]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    km: NDArray[np.float64]

    @property
    def num_arcs(self) -> int:
        return int(self.src.size)

    def index(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.nodes)}

    def without(self, codes: Sequence[str]) -> Graph:
        """The same nodes with every arc touching ``codes`` removed (a trust that cannot send or receive)."""
        drop = np.isin(np.asarray(self.nodes, dtype=object), list(codes))
        keep = ~(drop[self.src] | drop[self.dst])
        return Graph(self.nodes, self.src[keep], self.dst[keep], self.km[keep])


def _arcs(nodes: Sequence[str], src: NDArray[np.int64], dst: NDArray[np.int64], km: NDArray[np.float64]) -> Graph:
    both_src = np.concatenate([src, dst])
    both_dst = np.concatenate([dst, src])
    both_km = np.concatenate([km, km])
    keep = both_src != both_dst
    both_src, both_dst, both_km = both_src[keep], both_dst[keep], both_km[keep]
    key = both_src * len(nodes) + both_dst
    _, first = np.unique(key, return_index=True)  # sorted by (src, dst), duplicates gone
    return Graph(tuple(nodes), both_src[first].astype(np.int64), both_dst[first].astype(np.int64),
                 both_km[first].astype(np.float64))


def great_circle_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    p1, l1, p2, l2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lat1, lon1, lat2, lon2))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def nearest_graph(nodes: Sequence[str], lat: ArrayLike, lon: ArrayLike, *, k: int | None = 10,
                  max_km: float | None = None) -> Graph:
    """Link each node to its ``k`` nearest others (all of them when ``k`` is None), keeping only links no longer
    than ``max_km`` when it is given. Coordinates are degrees."""
    if len(nodes) != len(set(nodes)):
        raise ValueError("node codes must be unique")
    coords = np.radians(np.column_stack([np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)]))
    n = len(nodes)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return Graph(tuple(nodes), empty, empty, np.zeros(0))
    if np.isnan(coords).any():
        raise ValueError("every node needs coordinates")
    from sklearn.neighbors import BallTree  # 2 s to import: only when a graph is built

    tree = BallTree(coords, metric="haversine")
    if k is None and max_km is not None:
        ind_list, dist_list = tree.query_radius(coords, r=max_km / EARTH_KM, return_distance=True)
        src = np.repeat(np.arange(n), [len(i) for i in ind_list])
        dst = np.concatenate(ind_list).astype(np.int64)
        km = np.concatenate(dist_list) * EARTH_KM
    else:
        kk = n if k is None else min(k + 1, n)  # +1: a node is its own nearest
        dist, ind = tree.query(coords, k=kk)
        src = np.repeat(np.arange(n), kk)
        dst = ind.ravel().astype(np.int64)
        km = dist.ravel() * EARTH_KM
        if max_km is not None:
            keep = km <= max_km
            src, dst, km = src[keep], dst[keep], km[keep]
    return _arcs(nodes, src.astype(np.int64), dst, km)


def matrix_graph(nodes: Sequence[str], distance: ArrayLike, *, k: int | None = None) -> Graph:
    """A graph from a full distance matrix (any unit), all pairs or each node's ``k`` nearest."""
    d = np.asarray(distance, dtype=np.float64)
    n = len(nodes)
    if d.shape != (n, n):
        raise ValueError(f"distance matrix is {d.shape}, expected {(n, n)}")
    if k is None or k >= n - 1:
        src, dst = np.nonzero(~np.eye(n, dtype=bool))
    else:
        order = np.argsort(np.where(np.eye(n, dtype=bool), np.inf, d), axis=1)[:, :k]
        src, dst = np.repeat(np.arange(n), k), order.ravel()
    return _arcs(nodes, src.astype(np.int64), dst.astype(np.int64), d[src, dst])
