"""The data plane on Spark, for national scale: Spark jobs over Parquet, through Ibis, so the analytics' own
expressions (roll-ups, the bitemporal query ``base.in_force``) run on Spark unchanged.

It reads either the warehouse that ingest writes with ``MUTUAL_DATA_ENGINE=spark`` (``warehouse_store``: an
append-only log of value events in ``observation/month=…/``, made visible by commit markers, whose
``superseded_at`` Spark derives with the same window as DuckDB), or an export's ``data/`` folder (one
``<table>.parquet`` per table, as ``mutual export`` writes them).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutual.catalog.orgs import Org
from mutual.store.base import ObservationQuery, in_force, orgs_of
from mutual.store.schema import TABLES

if TYPE_CHECKING:
    import ibis.expr.types as ir


class SparkStore:
    def __init__(self, spark: Any, warehouse: Path) -> None:
        """``warehouse`` is a Mutual warehouse folder, or an export's folder of ``<table>.parquet``."""
        self.spark = spark
        self.warehouse = warehouse

    @property
    def is_warehouse(self) -> bool:
        return (self.warehouse / "commits").is_dir()

    @cached_property
    def ibis(self) -> Any:
        import ibis

        backend = ibis.pyspark.connect(self.spark)
        if self.is_warehouse:
            self._warehouse_views()
            return backend
        for name in ("observation", "organisation"):
            path = self.warehouse / f"{name}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"{path}: the Spark warehouse has no {name} table")
            self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        return backend

    def _warehouse_views(self) -> None:
        """The warehouse's committed events as the ``observation`` table, as ``warehouse_store`` defines it."""
        self.spark.read.parquet(str(self.warehouse / "commits")).createOrReplaceTempView("committed")
        self.spark.read.option("basePath", str(self.warehouse / "observation")).parquet(
            str(self.warehouse / "observation")).createOrReplaceTempView("observation_files")
        columns = ", ".join(name for name, _ in TABLES["observation"])
        self.spark.sql(f"""
            SELECT {columns} FROM (
                SELECT e.*, lead(recorded_at) OVER (PARTITION BY org, metric, dims, period
                                                    ORDER BY recorded_at, batch, seq) AS superseded_at
                FROM observation_files e WHERE batch IN (SELECT batch FROM committed))
            WHERE NOT withdrawn""").createOrReplaceTempView("observation")
        self.spark.read.parquet(str(self.warehouse / "organisation.parquet")).createOrReplaceTempView("organisation")
        for log in ("quality_issue", "issue_status", "load_log"):
            self.spark.read.parquet(str(self.warehouse / log)).where("batch IN (SELECT batch FROM committed)"
                                                                    ).createOrReplaceTempView(f"{log}_event")
        issue = ", ".join(f"i.{name}" for name, _ in TABLES["quality_issue"] if name != "status")
        self.spark.sql(f"""
            WITH st AS (SELECT submission_id, sheet, row_num, col, rule, max_by(status, batch) AS status
                        FROM issue_status_event GROUP BY submission_id, sheet, row_num, col, rule)
            SELECT {issue}, coalesce(st.status, 'open') AS status
            FROM quality_issue_event i LEFT JOIN st
              ON st.submission_id = i.submission_id AND st.sheet <=> i.sheet AND st.row_num <=> i.row_num
             AND st.col <=> i.col AND st.rule = i.rule""").createOrReplaceTempView("quality_issue")
        self.spark.sql("SELECT " + ", ".join(name for name, _ in TABLES["load_log"]) + " FROM load_log_event"
                       ).createOrReplaceTempView("load_log")

    def observations(self, q: ObservationQuery, *, ordered: bool = True) -> ir.Table:
        return in_force(self.ibis.table("observation"), q, ordered=ordered)

    def orgs(self) -> list[Org]:
        return orgs_of(self.ibis.table("organisation").order_by("code").to_pyarrow().to_pylist())
