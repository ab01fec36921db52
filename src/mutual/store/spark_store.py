"""The data plane on Spark, for national scale: the same tables as Parquet (one folder per table, as ``mutual
export`` writes them), read by a Spark session through Ibis, so the analytics' own expressions (roll-ups) run as
Spark jobs unchanged.

So far it reads: ``observations`` (the same bitemporal query as DuckDB's, ``duckdb_store.in_force``) and
``orgs``. Ingest still writes through DuckDB; an export's Parquet is what Spark reads.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutual.catalog.orgs import Org
from mutual.store.base import ObservationQuery, in_force, orgs_of

if TYPE_CHECKING:
    import ibis.expr.types as ir


class SparkStore:
    def __init__(self, spark: Any, warehouse: Path) -> None:
        """``warehouse`` holds ``<table>.parquet`` (a file or a folder of parts) for each data-plane table."""
        self.spark = spark
        self.warehouse = warehouse

    @cached_property
    def ibis(self) -> Any:
        import ibis

        backend = ibis.pyspark.connect(self.spark)
        for name in ("observation", "organisation"):
            path = self.warehouse / f"{name}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"{path}: the Spark warehouse has no {name} table")
            self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        return backend

    def observations(self, q: ObservationQuery, *, ordered: bool = True) -> ir.Table:
        return in_force(self.ibis.table("observation"), q, ordered=ordered)

    def orgs(self) -> list[Org]:
        return orgs_of(self.ibis.table("organisation").order_by("code").to_pyarrow().to_pylist())
