"""Moving a workspace: ``export`` writes all of it to a folder of Parquet files, ``load`` fills an empty workspace
from one, on whatever engines the settings in force name (``mutual.settings``). Nothing is lost: every
observation with its history (superseded values and their times) and lineage (submission, sheet, row, column),
quality issues, derived tables, every control-plane row (submissions, plans, users, tokens, partners,
agreements, the ledger, the audit chain with its hashes), the raw-file archive, and the pseudonym secret (so
pseudonyms stay the same after the move).

An export is deterministic: rows in a fixed order, one Parquet layout, and a manifest with no clock in it, so
exporting, loading elsewhere and exporting again gives the same bytes. The manifest lists every file with its
sha256 and row count; ``load`` checks them all before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.types import TypeEngine

from mutual.app import Mutual, open_mutual
from mutual.control import db
from mutual.control.models import Base
from mutual.governance.gate import PSEUDONYM_SECRET
from mutual.store.schema import TABLES
from mutual.workspace import Workspace

FORMAT = "mutual-export/1"
MANIFEST = "manifest.json"
BATCH = 1_000_000  # rows per Parquet row group: fixed, so the same rows give the same bytes
Progress = Callable[[str], None]


class TransferError(ValueError):
    pass


@dataclass(frozen=True)
class Manifest:
    files: dict[str, dict[str, Any]]  # relative path -> {"sha256", "rows" (tables) or "bytes"}
    migration: str

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "migration": self.migration, "files": self.files}, indent=1,
                          sort_keys=True) + "\n"


def _arrow_type(column_type: TypeEngine[Any]) -> pa.DataType:
    if isinstance(column_type, JSON):
        return pa.string()  # canonical JSON text: sorted keys, so the same value gives the same bytes
    if isinstance(column_type, (BigInteger, Integer)):
        return pa.int64()
    if isinstance(column_type, Float):
        return pa.float64()
    if isinstance(column_type, Boolean):
        return pa.bool_()
    if isinstance(column_type, DateTime):
        return pa.timestamp("us")
    if isinstance(column_type, Date):
        return pa.date32()
    if isinstance(column_type, (String, Text)):
        return pa.string()
    raise TransferError(f"no Parquet type for {column_type!r}")


def _schema(table: Table) -> pa.Schema:
    return pa.schema([(c.name, _arrow_type(c.type)) for c in table.columns])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write(path: Path, schema: pa.Schema, batches: Any) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        for batch in batches:
            if batch.num_rows:
                writer.write_table(pa.Table.from_batches([batch]).cast(schema), row_group_size=BATCH)
                rows += batch.num_rows
    return rows


def export(m: Mutual, out: Path, progress: Progress = lambda _: None) -> Manifest:
    """Write the workspace to ``out`` (a new or empty folder)."""
    if out.exists() and any(out.iterdir()):
        raise TransferError(f"{out} is not empty: export into a new folder")
    files: dict[str, dict[str, Any]] = {}
    with m.sessions() as s:
        for table in Base.metadata.sorted_tables:
            progress(f"control plane: {table.name}")
            order = [c for c in table.primary_key.columns] or list(table.columns)
            json_columns = [c.name for c in table.columns if isinstance(c.type, JSON)]
            rows = [{**r._asdict(), **{c: json.dumps(getattr(r, c), sort_keys=True) for c in json_columns}}
                    for r in s.execute(select(table).order_by(*order))]
            schema = _schema(table)
            data = pa.Table.from_pylist(rows, schema=schema)
            name = f"control/{table.name}.parquet"
            files[name] = {"rows": _write(out / name, schema, data.to_batches(max_chunksize=BATCH))}
    for table_name in TABLES:
        if not m.store.has_table(table_name):
            continue
        progress(f"data plane: {table_name}")
        reader = m.store.export_reader(table_name, BATCH)
        name = f"data/{table_name}.parquet"
        files[name] = {"rows": _write(out / name, reader.schema, reader)}
    archive = m.workspace.archive_dir
    for raw in sorted(p for p in archive.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = f"archive/{raw.relative_to(archive).as_posix()}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw, out / name)
        files[name] = {"bytes": raw.stat().st_size}
    secret = m.workspace.home / PSEUDONYM_SECRET
    if secret.exists():
        (out / "secrets").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(secret, out / "secrets" / PSEUDONYM_SECRET)
        (out / "secrets" / PSEUDONYM_SECRET).chmod(0o600)
        files[f"secrets/{PSEUDONYM_SECRET}"] = {"bytes": secret.stat().st_size}
    for name in files:
        files[name]["sha256"] = _sha256(out / name)
    manifest = Manifest(files, db.current_revision(m.engine) or "")
    (out / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_manifest(src: Path) -> Manifest:
    """The export's manifest, once every file it lists is there with its sha256; else why not."""
    try:
        doc = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TransferError(f"{src} has no {MANIFEST}: it is not a Mutual export") from None
    except json.JSONDecodeError as exc:
        raise TransferError(f"{src / MANIFEST}: not JSON ({exc})") from None
    if doc.get("format") != FORMAT:
        raise TransferError(f"{src / MANIFEST}: format {doc.get('format')!r}, expected {FORMAT!r}")
    for name, meta in doc["files"].items():
        path = src / name
        if not path.is_file():
            raise TransferError(f"{path}: listed in the manifest but missing")
        if _sha256(path) != meta["sha256"]:
            raise TransferError(f"{path}: its contents changed since the export (sha256 differs)")
    if doc["migration"] != db.HEAD:
        raise TransferError(f"the export's control plane is at migration {doc['migration']}; this Mutual expects "
                            f"{db.HEAD}")
    return Manifest(doc["files"], doc["migration"])


def load(src: Path, home: Path | None, progress: Progress = lambda _: None,
         data_engine: str | None = None) -> Manifest:
    """Fill the empty workspace at ``home`` (on the engines the settings name, the data plane on ``data_engine``
    when given) from the export at ``src``."""
    manifest = read_manifest(src)
    destination = Workspace.at(home, data_engine)
    if destination.exists:
        raise TransferError(f"{destination.home} already holds a workspace: load into a new one")
    with open_mutual(home, create=True, data_engine=data_engine) as m:
        with m.sessions() as s:
            if any(s.execute(select(t).limit(1)).first() for t in Base.metadata.sorted_tables):
                raise TransferError(f"the control plane at {m.engine.url.render_as_string(hide_password=True)} "
                                    "already holds data: load into an empty one")
        with m.sessions.begin() as s:
            for table in Base.metadata.sorted_tables:
                name = f"control/{table.name}.parquet"
                if name not in manifest.files:
                    continue
                progress(f"control plane: {table.name}")
                json_columns = [c.name for c in table.columns if isinstance(c.type, JSON)]
                rows = [{**r, **{c: json.loads(r[c]) for c in json_columns}}
                        for r in pq.read_table(src / name).to_pylist()]
                if rows:
                    s.execute(insert(table), rows)
            if m.engine.dialect.name == "postgresql":  # the next id follows the loaded ones
                for table in Base.metadata.sorted_tables:
                    key = list(table.primary_key.columns)
                    if len(key) == 1 and key[0].autoincrement is True:
                        s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key[0].name}'), "
                                       f"coalesce(max({key[0].name}), 0) + 1, false) FROM {table.name}"))
        for table_name in TABLES:
            name = f"data/{table_name}.parquet"
            if name in manifest.files:
                progress(f"data plane: {table_name}")
                m.store.restore(table_name, src / name)
        for name in manifest.files:
            if name.startswith("archive/"):
                target = m.workspace.archive_dir / name.removeprefix("archive/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / name, target)
        secret = src / "secrets" / PSEUDONYM_SECRET
        if secret.exists():
            shutil.copyfile(secret, m.workspace.home / PSEUDONYM_SECRET)
            (m.workspace.home / PSEUDONYM_SECRET).chmod(0o600)
    return manifest
