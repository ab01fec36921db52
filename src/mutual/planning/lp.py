"""A thin, vectorised model builder over HiGHS: columns in blocks, constraints as sparse triplets.

Every planning model builds its LP with numpy arrays (never a Python loop per variable) and solves it here, so
solver options, status words and timing are the same for all of them.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

INF = highspy.kHighsInf

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


_banner_shown = False


def _highs() -> highspy.Highs:
    """A solver with logging off. HiGHS prints a banner to fd 1 when the first instance is made; that would
    corrupt CSV/JSON written to stdout, so the first one is made with fd 1 pointed at /dev/null."""
    global _banner_shown
    if _banner_shown:
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    else:
        sys.stdout.flush()
        saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        try:
            h = highspy.Highs()  # type: ignore[no-untyped-call]
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
        _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h


@dataclass(frozen=True)
class Solution:
    """What the solver said: status in words, objective, the best bound, relative gap and the column values."""

    status: str  # "optimal", "time limit", "infeasible", ...
    optimal: bool
    objective: float
    bound: float
    gap: float
    seconds: float
    x: FloatArray
    integer: bool


class Model:
    """A minimisation LP or MIP. ``add_vars`` returns the new columns' indices (shaped like ``shape``)."""

    def __init__(self) -> None:
        self._cost: list[FloatArray] = []
        self._lower: list[FloatArray] = []
        self._upper: list[FloatArray] = []
        self._integer: list[NDArray[np.bool_]] = []
        self._rows: list[IntArray] = []
        self._cols: list[IntArray] = []
        self._vals: list[FloatArray] = []
        self._row_lower: list[FloatArray] = []
        self._row_upper: list[FloatArray] = []
        self.num_cols = 0
        self.num_rows = 0

    def add_vars(self, shape: int | tuple[int, ...], *, cost: ArrayLike = 0.0, lower: ArrayLike = 0.0,
                 upper: ArrayLike = INF, integer: bool = False) -> IntArray:
        shape = (shape,) if isinstance(shape, int) else shape
        n = int(np.prod(shape))
        idx = np.arange(self.num_cols, self.num_cols + n, dtype=np.int64)
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), shape).ravel().copy())
        self._lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), shape).ravel().copy())
        self._upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), shape).ravel().copy())
        self._integer.append(np.full(n, integer))
        self.num_cols += n
        return idx.reshape(shape)

    def add_constraints(self, count: int, row: ArrayLike, col: ArrayLike, val: ArrayLike, *,
                        lower: ArrayLike = -INF, upper: ArrayLike = INF) -> IntArray:
        """``count`` rows ``lower <= sum(val * x[col]) <= upper``; ``row`` numbers them 0..count-1 (triplets)."""
        r = np.asarray(row, dtype=np.int64).ravel()
        c = np.asarray(col, dtype=np.int64).ravel()
        v = np.broadcast_to(np.asarray(val, dtype=np.float64), r.shape).ravel()
        if r.shape != c.shape:
            raise ValueError(f"row and col differ in length ({r.size} vs {c.size})")
        if r.size and (r.min() < 0 or r.max() >= count):
            raise ValueError("row index outside 0..count-1")
        self._rows.append(r + self.num_rows)
        self._cols.append(c)
        self._vals.append(v.copy())
        self._row_lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)).copy())
        self._row_upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)).copy())
        first = self.num_rows
        self.num_rows += count
        return np.arange(first, first + count, dtype=np.int64)

    def solve(self, *, time_limit: float | None = None, mip_gap: float = 1e-4, threads: int | None = None,
              relax: bool = False) -> Solution:
        """Solve with HiGHS. ``relax`` drops integrality (the LP bound of a MIP)."""
        cat = np.concatenate
        empty_f = np.zeros(0, dtype=np.float64)
        empty_i = np.zeros(0, dtype=np.int64)
        cost = cat(self._cost) if self._cost else empty_f
        rows = cat(self._rows) if self._rows else empty_i
        cols = cat(self._cols) if self._cols else empty_i
        vals = cat(self._vals) if self._vals else empty_f
        a = sparse.csc_matrix((vals, (rows, cols)), shape=(self.num_rows, self.num_cols))
        a.sum_duplicates()
        integer = (cat(self._integer) if self._integer else np.zeros(0, dtype=bool)) & (not relax)

        h = _highs()
        h.setOptionValue("mip_rel_gap", mip_gap)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        if threads is not None:
            h.setOptionValue("threads", int(threads))
        lp = highspy.HighsLp()
        lp.num_col_ = self.num_cols
        lp.num_row_ = self.num_rows
        lp.col_cost_ = cost
        lp.col_lower_ = cat(self._lower) if self._lower else empty_f
        lp.col_upper_ = cat(self._upper) if self._upper else empty_f
        lp.row_lower_ = cat(self._row_lower) if self._row_lower else empty_f
        lp.row_upper_ = cat(self._row_upper) if self._row_upper else empty_f
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data
        lp.a_matrix_.num_col_ = self.num_cols
        lp.a_matrix_.num_row_ = self.num_rows
        is_mip = bool(integer.any())
        if is_mip:
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                               for i in integer]
        started = time.perf_counter()
        h.passModel(lp)
        h.run()
        seconds = time.perf_counter() - started
        status = h.getModelStatus()
        info = h.getInfo()
        optimal = status == highspy.HighsModelStatus.kOptimal
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)
        if x.size != self.num_cols:
            x = np.zeros(self.num_cols)
        objective = float(info.objective_function_value)
        if is_mip:
            bound, gap = float(info.mip_dual_bound), float(info.mip_gap)
        else:
            bound, gap = (objective, 0.0) if optimal else (float("nan"), float("nan"))
        return Solution(status=h.modelStatusToString(status).lower(), optimal=optimal, objective=objective,
                        bound=bound, gap=gap, seconds=seconds, x=x, integer=is_mip)
