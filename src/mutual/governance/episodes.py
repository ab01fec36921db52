"""Synthetic admitted-patient-care episodes: record-level data shaped like Hospital Episode Statistics, for the
demo and the benchmarks, with no real person in it.

Every column is drawn with numpy in one pass (millions of rows in seconds), from a seed, so the same call gives
the same table. NHS numbers come from the 9xx range that is never issued to patients; postcodes are made up in
real outward-code shapes; diagnoses are common ICD-10 codes with COVID-19 (U07.1) among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pyarrow as pa

from mutual.governance import nhs_number

COLUMNS = ("episode_id", "nhs_number", "date_of_birth", "sex", "postcode", "trust", "admission_date",
           "discharge_date", "primary_diagnosis", "critical_care_days", "ventilated")
DIAGNOSES = {"U07.1": 0.18, "J18.9": 0.12, "I21.9": 0.07, "I50.9": 0.07, "N39.0": 0.06, "J44.1": 0.06,
             "S72.0": 0.05, "K35.8": 0.04, "A41.9": 0.05, "R07.4": 0.30}
AREAS = ("LS", "M", "B", "E", "N", "SE", "SW", "NE", "L", "S", "BS", "NG", "CV", "LE", "OX", "CB", "PL", "EX")
LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
EPOCH = np.datetime64("1970-01-01", "D")


def generate(n: int, trusts: Sequence[str], start: date, days: int, *, seed: int = 7,
             patients: int | None = None) -> pa.Table:
    """``n`` episodes at ``trusts`` admitted over ``days`` days from ``start``, by ``patients`` people (default
    about 0.7 per episode: some are admitted more than once)."""
    if n < 0 or days < 1 or not trusts:
        raise ValueError("need n >= 0, days >= 1 and at least one trust")
    rng = np.random.default_rng(seed)
    people = patients or max(1, int(n * 0.7))
    numbers = nhs_number.generate(people, rng)
    births = EPOCH + (np.datetime64(start, "D") - EPOCH) - rng.gamma(6.0, 4200.0, people).clip(0, 36500).astype(
        "timedelta64[D]")
    sex = rng.choice(np.array(["F", "M"]), people)
    area = rng.choice(np.array(AREAS), people)
    outward = np.char.add(area, rng.integers(1, 30, people).astype(str))
    inward = np.char.add(rng.integers(0, 10, people).astype(str),
                         np.char.add(rng.choice(LETTERS, people), rng.choice(LETTERS, people)))
    postcodes = np.char.add(np.char.add(outward, " "), inward)
    who = rng.integers(0, people, n)
    admitted = np.datetime64(start, "D") + rng.integers(0, days, n).astype("timedelta64[D]")
    stay = np.minimum(rng.geometric(1 / 6.0, n), 120).astype("timedelta64[D]")
    diagnosis = rng.choice(np.array(list(DIAGNOSES)), n, p=np.array(list(DIAGNOSES.values())))
    critical = np.where(rng.random(n) < np.where(diagnosis == "U07.1", 0.15, 0.04), rng.integers(1, 15, n), 0)
    ventilated = (critical > 0) & (rng.random(n) < 0.45)
    return pa.table({
        "episode_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "nhs_number": pa.array(numbers[who]),
        "date_of_birth": pa.array(births[who]),
        "sex": pa.array(sex[who]),
        "postcode": pa.array(postcodes[who]),
        "trust": pa.array(np.array(list(trusts))[rng.integers(0, len(trusts), n)]),
        "admission_date": pa.array(admitted),
        "discharge_date": pa.array(admitted + stay),
        "primary_diagnosis": pa.array(diagnosis),
        "critical_care_days": pa.array(critical.astype(np.int32)),
        "ventilated": pa.array(ventilated),
    })
