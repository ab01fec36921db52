"""Synthetic admitted-patient-care episodes: record-level data shaped like Hospital Episode Statistics, for the
demo and the benchmarks, with no real person in it.

``generate`` draws every column with numpy in one pass (millions of rows in seconds) for the benchmarks;
``from_occupancy`` follows each trust's reported bed census day by day, so the demo's episodes agree with its
occupancy: on every day, the patients in a bed at the trust are exactly the beds it reported occupied. Both take
a seed, so the same call gives the same table. NHS numbers come from the 9xx range that is never issued to
patients; postcodes are made up in real outward-code shapes; diagnoses are common ICD-10 codes with COVID-19
(U07.1) among them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def generate(n: int, trusts: Sequence[str], start: date, days: int, *, seed: int = 7,
             patients: int | None = None) -> pa.Table:
    """``n`` episodes at ``trusts`` admitted over ``days`` days from ``start``, by ``patients`` people (default
    about 0.7 per episode: some are admitted more than once)."""
    if n < 0 or days < 1 or not trusts:
        raise ValueError("need n >= 0, days >= 1 and at least one trust")
    rng = np.random.default_rng(seed)
    people = _people(rng, patients or max(1, int(n * 0.7)), start)
    who = rng.integers(0, len(people["nhs_number"]), n)
    admitted = np.datetime64(start, "D") + rng.integers(0, days, n).astype("timedelta64[D]")
    stay = np.minimum(rng.geometric(1 / 6.0, n), 120).astype("timedelta64[D]")
    diagnosis = rng.choice(np.array(list(DIAGNOSES)), n, p=np.array(list(DIAGNOSES.values())))
    return _table(rng, people, who, np.array(list(trusts))[rng.integers(0, len(trusts), n)], admitted,
                  admitted + stay, diagnosis)


def _people(rng: np.random.Generator, count: int, start: date) -> dict[str, np.ndarray]:
    """``count`` made-up people: a valid NHS number, date of birth, sex and postcode each."""
    births = np.datetime64(start, "D") - rng.gamma(6.0, 4200.0, count).clip(0, 36500).astype("timedelta64[D]")
    area = rng.choice(np.array(AREAS), count)
    outward = np.char.add(area, rng.integers(1, 30, count).astype(str))
    inward = np.char.add(rng.integers(0, 10, count).astype(str),
                         np.char.add(rng.choice(LETTERS, count), rng.choice(LETTERS, count)))
    return {"nhs_number": nhs_number.generate(count, rng), "date_of_birth": births,
            "sex": rng.choice(np.array(["F", "M"]), count), "postcode": np.char.add(np.char.add(outward, " "), inward)}


def _table(rng: np.random.Generator, people: dict[str, np.ndarray], who: np.ndarray, trust: np.ndarray,
           admitted: np.ndarray, discharged: np.ndarray, diagnosis: np.ndarray) -> pa.Table:
    """The episodes' table; critical care (more often for COVID-19) never outlasts the stay."""
    n = len(who)
    stay = (discharged - admitted).astype(np.int64)
    critical = np.where(rng.random(n) < np.where(diagnosis == "U07.1", 0.15, 0.04), rng.integers(1, 15, n), 0)
    critical = np.minimum(critical, np.maximum(stay, 1))
    return pa.table({
        "episode_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        **{name: pa.array(values[who]) for name, values in people.items()},
        "trust": pa.array(trust),
        "admission_date": pa.array(admitted),
        "discharge_date": pa.array(discharged),
        "primary_diagnosis": pa.array(diagnosis),
        "critical_care_days": pa.array(critical.astype(np.int32)),
        "ventilated": pa.array((critical > 0) & (rng.random(n) < 0.45)),
    })


def census(table: pa.Table, trust: str, day: date) -> int:
    """Patients of ``trust`` in a bed on ``day``: admitted on or before it, not yet discharged."""
    at = np.datetime64(day, "D")
    mask = ((table.column("trust").to_numpy(zero_copy_only=False) == trust)
            & (table.column("admission_date").to_numpy() <= at) & (table.column("discharge_date").to_numpy() > at))
    return int(mask.sum())


def from_occupancy(occupied: Mapping[str, Mapping[date, float]], *, covid: Mapping[str, Mapping[date, float]]
                   | None = None, seed: int = 7, mean_stay: float = 6.0) -> pa.Table:
    """Episodes whose census is each trust's reported occupancy: on every reported day the patients in a bed
    (admitted on or before the day, discharged after it) number exactly ``occupied[trust][day]``.

    Day by day, patients whose stay ends leave; when fewer remain than were reported, the difference is admitted
    that day with a length of stay drawn around ``mean_stay``; when more remain, those due out soonest leave a
    little early. The first day's patients were admitted in the days before it. A new admission is COVID-19
    (U07.1) with the day's share of COVID-19 patients in ``covid`` (the same trusts and days), where given."""
    rng = np.random.default_rng(seed)
    done: list[tuple[np.ndarray, ...]] = []  # (trust, admitted, discharged, COVID-19 share on admission)
    for trust in sorted(occupied):
        series = occupied[trust]
        starts = ends = np.empty(0, dtype="datetime64[D]")
        shares = np.empty(0)
        for n_day, day in enumerate(sorted(series)):
            at, target = np.datetime64(day, "D"), max(0, round(series[day]))
            leaving = ends <= at
            if (ends > at).sum() > target:  # those due out soonest go today
                order = np.argsort(np.where(leaving, np.datetime64("1900-01-01"), ends), kind="stable")
                early = order[leaving.sum(): leaving.sum() + (ends > at).sum() - target]
                ends = ends.copy()
                ends[early] = at
                leaving = ends <= at
            done.append((np.full(leaving.sum(), trust), starts[leaving], ends[leaving], shares[leaving]))
            starts, ends, shares = starts[~leaving], ends[~leaving], shares[~leaving]
            new = target - len(ends)
            if new > 0:
                length = np.minimum(rng.geometric(1 / mean_stay, new), 120)
                behind = (rng.random(new) * length).astype(np.int64) if n_day == 0 else np.zeros(new, np.int64)
                began = at - behind.astype("timedelta64[D]")
                covid_share = min(1.0, (covid or {}).get(trust, {}).get(day, 0.0) / target)
                starts = np.concatenate([starts, began])
                ends = np.concatenate([ends, began + length.astype("timedelta64[D]")])
                shares = np.concatenate([shares, np.full(new, covid_share)])
        done.append((np.full(len(starts), trust), starts, ends, shares))
    trust_col, first, last, share = (np.concatenate([d[i] for d in done]) if done else np.empty(0) for i in range(4))
    order = np.lexsort((last, first, trust_col))
    trust_col, first, last, share = trust_col[order], first[order], last[order], share[order]
    n = len(first)
    others = [d for d in DIAGNOSES if d != "U07.1"]
    weights = np.array([DIAGNOSES[d] for d in others])
    diagnosis = np.where(rng.random(n) < share, "U07.1", rng.choice(np.array(others), n, p=weights / weights.sum()))
    born_before = min((min(s) for s in occupied.values() if s), default=date(2000, 1, 1))
    people = _people(rng, max(1, int(n * 0.7)), born_before)
    return _table(rng, people, rng.integers(0, len(people["nhs_number"]), n), trust_col.astype(str),
                  first.astype("datetime64[D]"), last.astype("datetime64[D]"), diagnosis)
