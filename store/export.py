"""Export the store for the program's reporting: Parquet files or Delta tables that Fabric,
Power BI and Spark read directly.

Per entity two tables: `<entity>` holds the current state (each source at its latest good snapshot,
as the pages show it) and `<entity>_history` every version ever seen with `valid_from`/`valid_to`
snapshot ids and their times, so "as of T" is one filter in the reader's own tool. `snapshots`
holds every collection pass (errors included: they are redacted before they are stored).
JSON columns stay JSON text. Rows stream through Arrow record batches, so memory does not grow
with the store.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from store.db import Store
from store.entities import ENTITIES
from store.visibility import LATEST_GOOD_PINS, VISIBLE

FORMATS = ("parquet", "delta")
BATCH_ROWS = 50_000

# Each query's identifiers come from the ENTITIES whitelist; there are no values to bind.
_HISTORY = """SELECT t.*, f.finished_at AS valid_from_time, u.finished_at AS valid_to_time
FROM {table} t LEFT JOIN snapshots f ON f.snapshot_id = t.valid_from
LEFT JOIN snapshots u ON u.snapshot_id = t.valid_to ORDER BY t.source, t.valid_from"""
_CURRENT = (f"WITH pins AS ({LATEST_GOOD_PINS}) "
            "SELECT {columns}, t.valid_from, s.finished_at AS collected_at "
            "FROM {table} t JOIN pins p ON t.source = p.source JOIN snapshots s ON s.snapshot_id = t.valid_from "
            f"WHERE {VISIBLE} ORDER BY t.source")
_SNAPSHOTS = "SELECT * FROM snapshots ORDER BY snapshot_id"


@dataclass(frozen=True)
class ExportedTable:
    name: str
    rows: int
    path: Path


def _queries() -> Iterator[tuple[str, str]]:
    yield "snapshots", _SNAPSHOTS
    for table, entity in ENTITIES.items():
        columns = ", ".join(f"t.{c}" for c in entity.columns)
        yield table, _CURRENT.format(table=table, columns=columns)
        yield f"{table}_history", _HISTORY.format(table=table)


def export_store(store: Store, destination: Path, fmt: str) -> list[ExportedTable]:
    """Write every table to `destination/<name>` (a .parquet file, or a Delta table folder).

    Each table is written to a temporary name and renamed into place, so a failed export never
    leaves a half-written table where a report would read it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    written = []
    with store.reader() as con:   # opened first: a missing store creates no destination folder
        destination.mkdir(parents=True, exist_ok=True)
        for name, sql in _queries():
            reader = con.execute(sql).to_arrow_reader(BATCH_ROWS)
            target = destination / (f"{name}.parquet" if fmt == "parquet" else name)
            rows = _write(reader, target, fmt)
            written.append(ExportedTable(name, rows, target))
    return written


def _write(reader: pa.RecordBatchReader, target: Path, fmt: str) -> int:
    tmp = target.with_name(target.name + ".tmp")
    _remove(tmp)
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in reader:
            rows += batch.num_rows
            yield batch

    batches = pa.RecordBatchReader.from_batches(reader.schema, counted())
    if fmt == "parquet":
        with pq.ParquetWriter(tmp, reader.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
    else:
        from deltalake import write_deltalake   # imported here: only the Delta export needs it

        write_deltalake(str(tmp), batches, mode="overwrite")
    _remove(target)
    tmp.rename(target)
    return rows


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
