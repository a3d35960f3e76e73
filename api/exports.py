"""Exports as CSV or Parquet, encoded batch by batch as the rows are fetched.

Both the API (`GET /v1/exports/...`) and `dialtone export` feed an encoder the
chunks a server-side cursor returns and send (or write) the bytes each batch
produces, so memory holds one batch whatever the range. A Parquet batch is one
row group: the writer flushes it to the sink at once, and the footer (the
schema and the row groups' offsets) comes with `finish`.

Column types are fixed per export, from the API's row model (never inferred
from the first batch, so an empty export or a column null in the first batch
still has its type): ids are
strings, instants UTC timestamps in microseconds, lists of names lists of
strings, and nested values (an event's `data`, a CDR's `transfers`) JSON text,
which DuckDB (`json` functions) and pandas (`json.loads`) read as they are.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import UnionType
from typing import Any, Literal, Protocol, Union, get_args, get_origin
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from api.csv_export import CSV_MEDIA_TYPE, render
from api.schemas.cdrs import CdrPublic
from api.schemas.events import EventPublic

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
# Rows per Parquet row group (and CSV chunk): large enough for columnar
# compression to pay, small enough that a batch is a few MB at most.
BATCH_ROWS = 5000
# The longest range one export covers (the API and the CLI alike).
MAX_RANGE = timedelta(days=366)


class Format(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


def media_type(fmt: Format) -> str:
    return CSV_MEDIA_TYPE if fmt is Format.CSV else PARQUET_MEDIA_TYPE


def wanted_format(fmt: Format | None, accept: str | None) -> Format:
    """`format` if given, else from the Accept header (Parquet when it names
    Parquet's media type), else CSV."""
    if fmt is not None:
        return fmt
    media_types = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return Format.PARQUET if PARQUET_MEDIA_TYPE in media_types else Format.CSV


_ARROW_TYPES = {
    "id": pa.string(),
    "text": pa.string(),
    "time": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
    "int": pa.int64(),
    "texts": pa.list_(pa.string()),
    "json": pa.string(),
}


@dataclass(frozen=True)
class Columns:
    """An export's columns, each with its kind (a key of the Arrow type map)."""

    kinds: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.kinds)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in self.kinds])

    def arrow_batch(self, rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        arrays = [pa.array([_value(kind, row[name]) for row in rows], type=_ARROW_TYPES[kind])
                  for name, kind in self.kinds]
        return pa.record_batch(arrays, schema=self.arrow_schema())


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "id":
        return str(value)
    if kind == "json":
        return json.dumps(value, separators=(",", ":"), default=str)
    if kind == "time":
        assert isinstance(value, datetime)
    return value


def columns_of(model: type[BaseModel]) -> Columns:
    """The columns of an API row model, typed from its fields (nested values as JSON)."""
    return Columns(tuple((name, _kind_of(field.annotation))
                         for name, field in model.model_fields.items()))


def _kind_of(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _kind_of(args[0])
    if get_origin(annotation) is list and args == [str]:
        return "texts"
    simple = {UUID: "id", datetime: "time", float: "float", int: "int", str: "text"}
    if isinstance(annotation, type) and annotation is not bool:
        for base, kind in simple.items():
            if issubclass(annotation, base):
                return kind
    if get_origin(annotation) is Literal:
        return "text"
    return "json"


class Encoder(Protocol):
    def batch(self, rows: Sequence[Mapping[str, Any]]) -> bytes: ...

    def finish(self) -> bytes: ...


class CsvEncoder:
    """A header row, then the rows (api/csv_export.py's cells)."""

    def __init__(self, columns: Columns) -> None:
        self.names = columns.names
        self.header = True

    def batch(self, rows: Sequence[Mapping[str, Any]]) -> bytes:
        text = render(self.names, rows, header=self.header)
        self.header = False
        return text.encode()

    def finish(self) -> bytes:
        return self.batch([]) if self.header else b""


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until drained."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.size

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class ParquetEncoder:
    """One row group per batch; the footer at the end."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.sink = _Sink()
        self.writer = pq.ParquetWriter(self.sink, columns.arrow_schema(), compression="zstd")

    def batch(self, rows: Sequence[Mapping[str, Any]]) -> bytes:
        if rows:
            self.writer.write_batch(self.columns.arrow_batch(rows))
        return self.sink.drain()

    def finish(self) -> bytes:
        self.writer.close()
        return self.sink.drain()


def encoder(fmt: Format, columns: Columns) -> Encoder:
    return CsvEncoder(columns) if fmt is Format.CSV else ParquetEncoder(columns)


async def rebatch(chunks: AsyncIterator[Sequence[Mapping[str, Any]]],
                  size: int = BATCH_ROWS) -> AsyncIterator[list[Mapping[str, Any]]]:
    """The rows again, in batches of `size` (the last one shorter)."""
    pending: list[Mapping[str, Any]] = []
    async for rows in chunks:
        pending.extend(rows)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


async def encode(chunks: AsyncIterator[Sequence[Mapping[str, Any]]],
                 fmt: Format, columns: Columns) -> AsyncIterator[tuple[bytes, int]]:
    """Each batch's bytes with its number of rows; then the end of the file."""
    out = encoder(fmt, columns)
    async for rows in rebatch(chunks):
        yield out.batch(rows), len(rows)
    yield out.finish(), 0


# The columns of `GET /v1/cdrs` and `GET /v1/events`, typed from their row models.
CDR_COLUMNS = columns_of(CdrPublic)
EVENT_COLUMNS = columns_of(EventPublic)
