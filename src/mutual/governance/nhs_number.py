"""NHS numbers: the modulus 11 check digit, validation, display, and valid numbers for synthetic data.

An NHS number is ten digits; the last is a check digit: weight the first nine 10, 9, ..., 2, sum, take the
remainder by 11; the check digit is 11 minus it (11 becomes 0, and 10 means no valid number has those nine).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid NHS number starts with them."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError(f"{first_nine!r} is not nine digits")
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    digit = 11 - total % 11
    return None if digit == 10 else 0 if digit == 11 else digit


def normalise(text: str) -> str:
    """Digits only: NHS numbers are written with spaces or hyphens (``943 476 5919``)."""
    return "".join(ch for ch in text.strip() if ch not in " -")


def is_valid(text: str) -> bool:
    digits = normalise(text)
    return len(digits) == 10 and digits.isdigit() and check_digit(digits[:9]) == int(digits[9])


def problem(text: str) -> str | None:
    """Why ``text`` is not a valid NHS number, in words; None when it is one."""
    digits = normalise(text)
    if not digits:
        return "it is blank"
    if not digits.isdigit():
        return f"{text.strip()!r} has characters other than digits, spaces and hyphens"
    if len(digits) != 10:
        return f"{text.strip()!r} has {len(digits)} digits, not 10"
    expected = check_digit(digits[:9])
    if expected is None:
        return f"{text.strip()!r} cannot be an NHS number (no check digit exists for its first nine digits)"
    if expected != int(digits[9]):
        return f"{text.strip()!r} fails the check digit (expected {expected}): a digit is mistyped"
    return None


def display(text: str) -> str:
    digits = normalise(text)
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def generate(n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """``n`` distinct valid NHS numbers (as integers) in the 9xx test range that is never issued to patients."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        want = int((n - len(out)) * 1.15) + 16
        stems = rng.integers(900_000_000, 1_000_000_000, size=want, dtype=np.int64)
        digits = (stems[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
        check = 11 - (digits * WEIGHTS).sum(axis=1) % 11
        keep = check != 10
        numbers = stems[keep] * 10 + np.where(check[keep] == 11, 0, check[keep])
        out = np.unique(np.concatenate([out, numbers]))
    return rng.permutation(out)[:n]
