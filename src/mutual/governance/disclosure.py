"""Statistical disclosure control of counts published to partners and the public.

The rules (NHS England's usual practice for published aggregates):

- a count of 1 to 7 is suppressed (primary suppression); 0 is published as 0, since a true zero names nobody;
- every other count is rounded to the nearest 5 (halves up), so small differences between tables reveal nobody;
- rates are recomputed from the rounded numerator and denominator, and suppressed with either of them;
- secondary suppression: where counts are published with totals, more cells are suppressed until no suppressed
  count can be worked out exactly from the published ones. Each total and its parts form a *line*
  (parts − total = 0); a suppressed entry is *recoverable* when the lines determine it uniquely, given every
  published entry exactly as the truth (the strict reading: it ignores the extra protection rounding gives).
  Suppressing the smallest unsuppressed entry of a line that would reveal one is repeated until nothing is
  recoverable; a line with one suppressed entry always reveals it, so the common case needs no algebra.

Pure functions over plain integers: the reports and the policy gate call them, and the property tests attack
their output with an independent solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLD = 7
BASE = 5

PUBLISHED, ROUNDED, ZERO = "published", "rounded to 5", "zero"
PRIMARY, SECONDARY = "suppressed: 1–7", "suppressed: secondary"


@dataclass(frozen=True)
class Entry:
    """One published count: ``shown`` is None when suppressed; ``reason`` says what was done to it."""

    shown: int | None
    reason: str

    @property
    def suppressed(self) -> bool:
        return self.shown is None


def round_to(n: int, base: int = BASE) -> int:
    """``n`` to the nearest multiple of ``base``, halves up (12 → 10, 13 → 15)."""
    return (n + base // 2) // base * base if base % 2 else (2 * n + base) // (2 * base) * base


def publish_count(n: int, *, threshold: int = THRESHOLD, base: int = BASE) -> Entry:
    """One count on its own, with no totals beside it."""
    if n < 0:
        raise ValueError(f"a count cannot be negative ({n})")
    if n == 0:
        return Entry(0, ZERO)
    if n <= threshold:
        return Entry(None, PRIMARY)
    return Entry(round_to(n, base), ROUNDED)


def publish_rate(numerator: Entry, denominator: Entry) -> float | None:
    """A rate from the published (rounded) parts; suppressed when either part is, or the denominator is 0."""
    if numerator.shown is None or denominator.shown is None or denominator.shown == 0:
        return None
    return numerator.shown / denominator.shown


def _recoverable(lines: np.ndarray, hidden: list[int]) -> list[int]:
    """The hidden entries that the lines determine exactly: those whose unit vector lies in the row space of
    the lines restricted to the hidden entries."""
    if not hidden or lines.size == 0:
        return []
    sub = lines[:, hidden]
    sub = sub[np.any(sub != 0, axis=1)]
    if sub.size == 0:
        return []
    rank = np.linalg.matrix_rank(sub)
    found = []
    for i, entry in enumerate(hidden):
        unit = np.zeros((1, len(hidden)))
        unit[0, i] = 1.0
        if np.linalg.matrix_rank(np.vstack([sub, unit])) == rank:
            found.append(entry)
    return found


def protect(values: Sequence[int], lines: Sequence[tuple[Sequence[int], int]], *, threshold: int = THRESHOLD,
            base: int = BASE) -> list[Entry]:
    """Publish ``values`` (counts; totals among them) where each line ``(parts, total)`` says that the entries
    at ``parts`` sum to the entry at ``total``. Returns one ``Entry`` per value."""
    if any(v < 0 for v in values):
        raise ValueError("counts cannot be negative")
    for parts, total in lines:
        if sum(values[i] for i in parts) != values[total]:
            raise ValueError(f"entry {total} is not the total of entries {list(parts)}")
    is_total = {total for _, total in lines}
    hidden = {i for i, v in enumerate(values) if 1 <= v <= threshold}
    secondary: set[int] = set()
    matrix = np.zeros((len(lines), len(values)))
    for row, (parts, total) in enumerate(lines):
        matrix[row, list(parts)] = 1.0
        matrix[row, total] = -1.0
    members = [[*parts, total] for parts, total in lines]

    def cheapest(line: list[int]) -> int | None:
        # the least information lost: the smallest count, a part before a total, then the first
        free = [i for i in line if i not in hidden]
        return min(free, key=lambda i: (values[i], i in is_total, i)) if free else None

    while True:
        exposed = [line for line in members if sum(i in hidden for i in line) == 1]
        if exposed:
            pick = cheapest(exposed[0])
        else:
            revealed = _recoverable(matrix, sorted(hidden))
            if not revealed:
                break
            lines_through = [line for line in members if revealed[0] in line]
            options = [c for c in (cheapest(line) for line in lines_through) if c is not None]
            pick = min(options, key=lambda i: (values[i], i in is_total, i)) if options else None
        if pick is None:  # every entry of the line is hidden already: nothing more to give
            break
        hidden.add(pick)
        secondary.add(pick)
    out = []
    for i, v in enumerate(values):
        if i in hidden:
            out.append(Entry(None, SECONDARY if i in secondary else PRIMARY))
        else:
            out.append(publish_count(v, threshold=threshold, base=base))
    return out


@dataclass(frozen=True)
class Table:
    """A protected table: ``cells[r][c]``, ``row_totals[r]``, ``col_totals[c]`` and ``grand``."""

    cells: list[list[Entry]]
    row_totals: list[Entry]
    col_totals: list[Entry]
    grand: Entry


def protect_table(counts: Sequence[Sequence[int]], *, threshold: int = THRESHOLD, base: int = BASE) -> Table:
    """A rows × columns table of counts published with its row, column and grand totals."""
    n_rows = len(counts)
    n_cols = len(counts[0]) if n_rows else 0
    if any(len(r) != n_cols for r in counts):
        raise ValueError("every row needs the same number of columns")
    flat = [int(v) for r in counts for v in r]
    row_tot = [sum(r) for r in counts]
    col_tot = [sum(counts[r][c] for r in range(n_rows)) for c in range(n_cols)]
    values = flat + row_tot + col_tot + [sum(flat)]
    rt, ct, grand = n_rows * n_cols, n_rows * n_cols + n_rows, n_rows * n_cols + n_rows + n_cols

    def at(r: int, c: int) -> int:
        return r * n_cols + c

    lines: list[tuple[list[int], int]] = [([at(r, c) for c in range(n_cols)], rt + r) for r in range(n_rows)]
    lines += [([at(r, c) for r in range(n_rows)], ct + c) for c in range(n_cols)]
    lines += [([rt + r for r in range(n_rows)], grand), ([ct + c for c in range(n_cols)], grand)]
    out = protect(values, lines, threshold=threshold, base=base)
    return Table(cells=[[out[at(r, c)] for c in range(n_cols)] for r in range(n_rows)],
                 row_totals=out[rt:rt + n_rows], col_totals=out[ct:ct + n_cols], grand=out[grand])


def protect_list(counts: Sequence[int], *, threshold: int = THRESHOLD, base: int = BASE) -> tuple[list[Entry], Entry]:
    """A list of counts published with its total."""
    values = [int(v) for v in counts] + [sum(int(v) for v in counts)]
    out = protect(values, [(list(range(len(counts))), len(counts))], threshold=threshold, base=base)
    return out[:-1], out[-1]
