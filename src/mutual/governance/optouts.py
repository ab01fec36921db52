"""The national data opt-out list: read from a file, each number checked, every bad line named.

A file holds one NHS number per line (spaces and hyphens allowed), or is a CSV whose header has an
``nhs_number`` column. A line that is not a valid NHS number is reported with its line number and why, and the
rest are kept: a typo must not stop the other opt-outs from being honoured.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mutual.governance import nhs_number


class OptOutFileError(ValueError):
    pass


@dataclass(frozen=True)
class OptOutFile:
    numbers: pa.Array  # distinct valid NHS numbers (int64)
    lines: int
    problems: list[str]  # "FILE line N: why"


def read_optouts(path: Path) -> OptOutFile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise OptOutFileError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    rows = text.splitlines()
    first = rows[0] if rows else ""
    if "nhs_number" in first.lower():
        reader = csv.DictReader(rows)
        column = next((c for c in reader.fieldnames or [] if c.strip().lower() == "nhs_number"), None)
        if column is None:
            raise OptOutFileError(f"{path}: line 1 has no nhs_number column")
        values = [(i, (r.get(column) or "")) for i, r in enumerate(reader, start=2)]
    else:
        values = list(enumerate(rows, start=1))
    found: dict[int, None] = {}
    problems = []
    for line, value in values:
        if not value.strip():
            continue
        why = nhs_number.problem(value)
        if why is None:
            found[int(nhs_number.normalise(value))] = None
        else:
            problems.append(f"{path.name} line {line}: {why}")
    return OptOutFile(pa.array(list(found), pa.int64()), len(values), problems)
