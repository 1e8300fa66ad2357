"""Multi-row INSERT and UPDATE for ingest, without the ORM's per-value expression machinery.

``bulk_create`` resolves every value of every row as a potential SQL expression and builds one
statement per batch: for a 512-span OTLP export that was most of the request. Here the values are
prepared once per field with the field's own ``get_db_prep_save`` (the same adaptation the ORM
applies: JSON, datetimes, per backend) and sent with ``executemany``, which SQLite runs in C and
psycopg pipelines. Only for plain model instances with no expressions as values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models

_ZERO = timedelta(0)

# Values of these fields reach the driver unchanged (what get_db_prep_save would return anyway).
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)


def _sqlite_utc_datetime(value: datetime | None) -> str | None:
    """What Django's SQLite adapter stores (naive UTC text), without its per-value timezone work
    for the values ingest produces, which are already in UTC."""
    if value is None:
        return None
    if value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    return str(value.replace(tzinfo=None))


@functools.cache
def _preparer(field: models.Field, vendor: str) -> Callable[[Any], Any] | None:
    """How a Python value of ``field`` becomes a driver value; None when it goes as it is. Once
    per field, process and database (the adapters are pure functions of the value)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if isinstance(field, models.JSONField):
        adapt_json, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda value: None if value is None else adapt_json(value, encoder)
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone_name == "UTC":
            return _sqlite_utc_datetime
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, _PLAIN):
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def _rows(objs: Sequence[Any], fields: Sequence[Any], connection: Any, *extra: str) -> list[list[Any]]:
    """Each object's field values (then ``extra`` attributes) as driver values, read with one
    ``attrgetter`` call per object and converted only where the field needs it."""
    getter = attrgetter(*[f.attname for f in fields], *extra)
    converters = [(i, convert) for i, f in enumerate(fields) if (convert := _preparer(f, connection.vendor))]
    rows = []
    for obj in objs:
        values = list(getter(obj))
        for i, convert in converters:
            values[i] = convert(values[i])
        rows.append(values)
    return rows


@dataclass
class PreparedInsert:
    """An INSERT and its rows of driver values, built before the write transaction opens (on
    SQLite that transaction holds the only write lock, so the Python work is done outside it)."""

    sql: str
    attnames: list[str]
    rows: list[list[Any]]
    pk_column: str

    def column(self, attname: str) -> int:
        return self.attnames.index(attname)

    def execute_returning_ids(self) -> list[int]:
        """INSERT every row and return the new primary keys, in order."""
        connection = connections[DEFAULT_DB_ALIAS]
        returning = f" RETURNING {connection.ops.quote_name(self.pk_column)}"
        ids: list[int] = []
        if connection.vendor == "sqlite":
            # SQLite runs each statement in C without a round trip: one per row is cheapest.
            sql = self.sql + returning
            return [connection.execute_direct(sql, row).fetchone()[0] for row in self.rows]
        with connection.cursor() as cursor:
            head, group = self.sql.split(" VALUES ")
            # Multi-row statements below PostgreSQL's 65,535 bound parameters.
            step = max(1, 60_000 // max(1, len(self.attnames)))
            for start in range(0, len(self.rows), step):
                chunk = self.rows[start : start + step]
                sql = f"{head} VALUES {', '.join([group] * len(chunk))}{returning}"
                cursor.execute(sql, [value for row in chunk for value in row])
                ids += [row[0] for row in cursor.fetchall()]
        return ids

    def execute(self, keep: Sequence[bool] | None = None) -> None:
        rows = self.rows if keep is None else [row for row, kept in zip(self.rows, keep, strict=True) if kept]
        if rows:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.executemany(self.sql, rows)


def prepare_insert(model: type[models.Model], objs: Sequence[Any]) -> PreparedInsert:
    """An INSERT of ``objs``: model instances, or any objects carrying every field's attname as an
    attribute (ingest builds plain namespaces: a model instance costs more to build than to insert).
    Primary keys are left to the database."""
    connection = connections[DEFAULT_DB_ALIAS]
    sql, fields = _insert_sql(model, connection.vendor)
    return PreparedInsert(
        sql, [f.attname for f in fields], _rows(objs, fields, connection), model._meta.pk.column
    )


@functools.cache
def _insert_sql(model: type[models.Model], vendor: str) -> tuple[str, list[models.Field]]:
    """The INSERT statement of ``model`` and its fields, built once per process and database."""
    ops = connections[DEFAULT_DB_ALIAS].ops
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({placeholders})", fields


def insert(model: type[models.Model], objs: Sequence[Any]) -> None:
    prepare_insert(model, objs).execute()


def update(model: type[models.Model], objs: Sequence[models.Model], field_names: Sequence[str]) -> None:
    """UPDATE ``field_names`` of each of ``objs`` by primary key."""
    if not objs:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in field_names]
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
    sql = f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {qn(model._meta.pk.column)} = %s"  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.executemany(sql, _rows(objs, fields, connection, "pk"))
