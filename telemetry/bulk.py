"""Multi-row INSERT and UPDATE for ingest, without the ORM's per-value expression machinery.

``bulk_create`` resolves every value of every row as a potential SQL expression and builds one
statement per batch: for a 512-span OTLP export that was most of the request. Here the values are
prepared once per field with the field's own ``get_db_prep_save`` (the same adaptation the ORM
applies: JSON, datetimes, per backend) and sent with ``executemany``, which SQLite runs in C and
psycopg pipelines. Only for plain model instances with no expressions as values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models

# Values of these fields reach the driver unchanged (what get_db_prep_save would return anyway).
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)


def _preparer(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    if isinstance(field, models.JSONField):
        adapt_json, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda value: None if value is None else adapt_json(value, encoder)
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, _PLAIN):
        return lambda value: value
    return lambda value: field.get_db_prep_save(value, connection)


def insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """INSERT ``objs`` (primary keys left to the database; not set on the instances)."""
    if not objs:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
    prepared = [(f.attname, _preparer(f, connection)) for f in fields]
    rows = [tuple(prepare(getattr(obj, attname)) for attname, prepare in prepared) for obj in objs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def update(model: type[models.Model], objs: Sequence[models.Model], field_names: Sequence[str]) -> None:
    """UPDATE ``field_names`` of each of ``objs`` by primary key."""
    if not objs:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in field_names]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
    pk = model._meta.pk
    sql = (
        f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} "
        f"WHERE {connection.ops.quote_name(pk.column)} = %s"  # type: ignore[union-attr]
    )
    prepared = [(f.attname, _preparer(f, connection)) for f in fields]  # type: ignore[arg-type, union-attr]
    rows: list[tuple[Any, ...]] = [
        (*(prepare(getattr(obj, attname)) for attname, prepare in prepared), obj.pk) for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
