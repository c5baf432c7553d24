"""Hot-path statements: the ORM's ``bulk_create`` and ``get(pk=...)`` without their
per-call machinery.

``Model.objects.create()`` costs about 740 Python calls on this stack (cProfile): query
building, compiler, signals, field by field checks. The buy path inserts three rows per
buy (order, line, outbox), so that was a third of a buy's Python. ``insert()`` builds the
statement once per model and row count, converts values with each field's own
``pre_save``/``get_db_prep_save`` (so defaults, ``auto_now_add``, JSON and decimals are
stored exactly as the ORM stores them) and sets the primary keys from ``RETURNING``.

What it does not do, on purpose: send ``pre_save``/``post_save`` signals (no model it is
used for has receivers; ``tests/ops/test_sql.py`` checks that) or run ``full_clean`` (the
ORM's ``create()`` does not either).

``row_by_pk()`` loads one instance by primary key with a statement built once per model
and the same converters the ORM applies: authentication loads the user on every request,
and ``User.objects.get(pk=...)`` cost about 900 calls of it. With ``related`` it joins
foreign keys as ``select_related`` does (a stream and its shop, read by every poll of
``GET /api/v1/streams/<id>/``). ``rows_matching()`` loads the instances a hand-written
WHERE selects, and ``select_values()`` runs a hand-written SELECT of some models' columns
and converts each value as the ORM would (a stream's pins: docs/performance.md).
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.db import connections
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin


@lru_cache(maxsize=64)
def _statement(model: type[Model], rows: int, vendor: str, using: str) -> tuple[str, tuple]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin)))
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Identifiers come from the model's own meta, quoted by the backend; values are parameters.
    values = ", ".join([row] * rows)
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values} RETURNING {quote(meta.pk.column)}"  # noqa: S608
    return sql, fields


def insert(objs: list[Model], *, using: str = "default") -> list[Model]:
    """INSERT unsaved instances of one model in one statement; set their primary keys.

    Raises IntegrityError as ``create()`` would (nothing is inserted then). Inside or
    outside ``transaction.atomic()``, like any single statement.
    """
    if not objs:
        return objs
    connection = connections[using]
    if not connection.features.can_return_rows_from_bulk_insert:  # pragma: no cover - old SQLite
        return type(objs[0]).objects.using(using).bulk_create(objs)
    sql, fields = _statement(type(objs[0]), len(objs), connection.vendor, using)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()]
    return set_keys(objs, keys, using=using)


@lru_cache(maxsize=64)
def _insert_new(model: type[Model], rows: int, key: str, using: str) -> str:
    sql, _ = _statement(model, rows, connections[using].vendor, using)
    quote = connections[using].ops.quote_name
    column = quote(model._meta.get_field(key).column)
    # ON CONFLICT without a target: any unique constraint, partial indexes included.
    return sql.replace(" RETURNING ", " ON CONFLICT DO NOTHING RETURNING ", 1) + f", {column}"


def insert_new(objs: list[Model], *, key: str, using: str = "default") -> list[Model]:
    """``insert()`` that leaves out the rows a unique constraint already holds (``INSERT ...
    ON CONFLICT DO NOTHING``, PostgreSQL and SQLite): returns the instances it inserted, in
    their order, with their primary keys. ``key`` is an attname whose values tell ``objs``
    apart (the returned rows are matched to the instances by it)."""
    if not objs:
        return objs
    connection = connections[using]
    sql = _insert_new(type(objs[0]), len(objs), key, using)
    _, fields = _statement(type(objs[0]), len(objs), connection.vendor, using)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = {row[1]: row[0] for row in cursor.fetchall()}
    inserted = [obj for obj in objs if getattr(obj, key) in keys]
    if not inserted:
        return []
    return set_keys(inserted, [keys[getattr(obj, key)] for obj in inserted], using=using)


def set_keys(objs: list[Model], keys: list, *, using: str = "default") -> list[Model]:
    """Mark instances as saved under the primary keys an INSERT ... RETURNING gave back."""
    pk = objs[0]._meta.pk.attname
    for obj, key in zip(objs, keys, strict=True):
        setattr(obj, pk, key)
        obj._state.adding = False
        obj._state.db = using
    return objs


_TYPE_MODIFIER = re.compile(r"\([^)]*\)")


def cast_type(field, connection) -> str:
    """The column type of ``field`` to cast a parameter to, without its modifier (varchar,
    not varchar(64)): an explicit cast to varchar(64) would truncate silently, whereas the
    INSERT or UPDATE the value goes into checks the length as a plain one does."""
    return _TYPE_MODIFIER.sub("", field.db_type(connection))


@lru_cache(maxsize=64)
def _insert_select(
    model: type[Model], rows: int, source: str, exprs: tuple[tuple[str, str], ...], using: str
) -> tuple[str, tuple]:
    meta = model._meta
    connection = connections[using]
    quote = connection.ops.quote_name
    computed = dict(exprs)
    fields = tuple(f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin)))
    unknown = set(computed) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{meta.label} has no column {sorted(unknown)}")
    bound = tuple(f for f in fields if f.attname not in computed)
    # A cast per value (``cast_type``): in a SELECT, a quoted literal would be text, which
    # PostgreSQL does not assign to an integer or jsonb column.
    casts = [cast_type(f, connection) for f in bound]
    values = ", ".join("(" + ", ".join([str(n)] + [f"%s::{cast}" for cast in casts]) + ")" for n in range(rows))
    names = ", ".join(["n"] + [f"c{i}" for i in range(len(bound))])
    position = {f.attname: i for i, f in enumerate(bound)}
    items = ", ".join(computed[f.attname] if f.attname in computed else f"v.c{position[f.attname]}" for f in fields)
    columns = ", ".join(quote(f.column) for f in fields)
    # Identifiers come from the model's meta, expressions and source from the caller's code,
    # values are parameters. ORDER BY keeps RETURNING in the rows' order.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {items} "  # noqa: S608
        f"FROM (VALUES {values}) AS v({names}) CROSS JOIN {source} ORDER BY v.n RETURNING {quote(meta.pk.column)}"
    )
    return sql, bound


def insert_select(
    objs: list[Model], *, source: str, exprs: dict[str, str] | None = None, using: str = "default"
) -> tuple[str, list]:
    """``INSERT ... SELECT`` of unsaved instances of one model, once per row of ``source``
    (PostgreSQL): the building block of a data-modifying CTE, where a row is inserted only
    if an earlier part of the statement matched (``source`` is ``some_cte``, or several
    joined) and may take values from it (``exprs``: attname -> SQL over ``source``, e.g.
    ``{"order_id": "o.id"}``). Returns the SQL and its parameters; the statement returns
    the new primary keys in the instances' order, for ``set_keys()``.

    Values are converted exactly as ``insert()`` converts them. ``source`` should have one
    row at most: each of its rows inserts every instance once more.
    """
    connection = connections[using]
    sql, fields = _insert_select(type(objs[0]), len(objs), source, tuple(sorted((exprs or {}).items())), using)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    return sql, params


@lru_cache(maxsize=64)
def _select(model: type[Model], using: str) -> tuple[str, tuple[str, ...], tuple]:
    meta = model._meta
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    # Identifiers come from the model's own meta, quoted by the backend; the key is a parameter.
    columns = ", ".join(quote(f.column) for f in fields)
    sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    converters = tuple(field_converters(f, using) for f in fields)
    return sql, tuple(f.attname for f in fields), converters


def outside_range(field, value, connection) -> bool:
    """Whether an integer is outside what ``field``'s column can hold: the ORM answers such a
    lookup with no rows, without asking the database (SQLite would raise OverflowError;
    e.g. ``GET /api/v1/streams/99999999999999999999/`` must stay a 404)."""
    if not isinstance(value, int):
        return False
    try:
        low, high = connection.ops.integer_field_range(field.get_internal_type())
    except KeyError:  # not an integer column
        return False
    return (low is not None and value < low) or (high is not None and value > high)


def field_converters(field, using: str = "default") -> tuple:
    """What the ORM applies to a value of ``field`` read from the database (the backend's
    converters, then the field's own), each with the column expression it is given: none
    for most fields on PostgreSQL; on SQLite, e.g. the quantizing of a decimal (to the
    expression's field's places) and the parsing of a datetime."""
    connection = connections[using]
    column = field.get_col(field.model._meta.db_table)
    return tuple((c, column) for c in connection.ops.get_db_converters(column) + field.get_db_converters(connection))


def _converted(row, converters, connection) -> list:
    values = []
    for value, converters_ in zip(row, converters, strict=True):
        for converter, expression in converters_:
            value = converter(value, expression, connection)
        values.append(value)
    return values


@lru_cache(maxsize=64)
def _select_related(model: type[Model], related: tuple[str, ...], using: str) -> tuple[str, tuple]:
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    _, attnames, converters = _select(model, using)
    columns = [f"t0.{quote(f.column)}" for f in meta.concrete_fields]
    joins = []
    parts = [(model, attnames, converters, None)]
    for i, name in enumerate(related, 1):
        field = meta.get_field(name)
        if not (field.many_to_one or field.one_to_one) or field.auto_created:
            raise ValueError(f"{meta.label}.{name} is not a foreign key of its own")
        target = field.related_model
        _, target_attnames, target_converters = _select(target, using)
        columns += [f"t{i}.{quote(f.column)}" for f in target._meta.concrete_fields]
        # As select_related joins: an outer join where the key may be empty.
        join = "LEFT OUTER JOIN" if field.null else "INNER JOIN"
        target_column = quote(field.target_field.column)
        joins.append(f"{join} {quote(target._meta.db_table)} t{i} ON t{i}.{target_column} = t0.{quote(field.column)}")
        parts.append((target, target_attnames, target_converters, field))
    # Identifiers come from the models' meta, quoted by the backend; the key is a parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)} t0 {' '.join(joins)} "  # noqa: S608
        f"WHERE t0.{quote(meta.pk.column)} = %s"
    )
    return sql, tuple(parts)


def row_by_pk(model: type[Model], pk, *, related: tuple[str, ...] = (), using: str = "default") -> Model | None:
    """``model.objects.get(pk=pk)``, or None; with ``related`` (names of foreign keys of
    ``model``), ``model.objects.select_related(*related).get(pk=pk)``: one statement, the
    related instances cached on the instance as select_related caches them. Bypasses
    custom managers: use it only where the default manager adds no filter."""
    connection = connections[using]
    pk_field = model._meta.pk
    value = pk_field.to_python(pk)
    if outside_range(pk_field, value, connection):
        return None
    key = [pk_field.get_db_prep_value(value, connection)]
    if not related:
        sql, names, converters = _select(model, using)
        with connection.cursor() as cursor:
            cursor.execute(sql, key)
            row = cursor.fetchone()
        return None if row is None else model.from_db(using, names, _converted(row, converters, connection))
    sql, parts = _select_related(model, tuple(related), using)
    with connection.cursor() as cursor:
        cursor.execute(sql, key)
        row = cursor.fetchone()
    if row is None:
        return None
    instance, start = None, 0
    for part_model, attnames, converters, field in parts:
        values = _converted(row[start : start + len(attnames)], converters, connection)
        start += len(attnames)
        if field is None:
            instance = part_model.from_db(using, attnames, values)
            continue
        pk_name = part_model._meta.pk.attname
        target = None if values[attnames.index(pk_name)] is None else part_model.from_db(using, attnames, values)
        field.set_cached_value(instance, target)
        if target is not None and field.one_to_one:  # select_related caches the reverse side of a one-to-one
            field.remote_field.set_cached_value(target, instance)
    return instance


@lru_cache(maxsize=64)
def _select_all(model: type[Model], using: str) -> str:
    sql, _, _ = _select(model, using)
    return sql.rsplit(" WHERE ", 1)[0]


def rows_matching(model: type[Model], where: str, params, *, using: str = "default") -> list[Model]:
    """``SELECT <model's columns> FROM <model's table> WHERE <where>``: the instances, with
    the ORM's converters, as a QuerySet would load them. ``where`` is the caller's, built
    from ``names(model)`` (it may end with ORDER BY); every value in it a parameter, in
    ``params``, prepared by its field (``prep_value``) where the database needs it."""
    return _instances(model, f"{_select_all(model, using)} WHERE {where}", params, using)


def _instances(model: type[Model], sql: str, params, using: str) -> list[Model]:
    """The rows of a SELECT of ``model``'s columns (``_select``'s order) as instances."""
    _, attnames, converters = _select(model, using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [model.from_db(using, attnames, _converted(row, converters, connection)) for row in rows]


def prep_value(model: type[Model], field: str, value, *, using: str = "default"):
    """``value`` as the ORM passes it to the database in a lookup on ``model.field`` (a
    datetime on SQLite: UTC text)."""
    return model._meta.get_field(field).get_db_prep_value(value, connections[using])


@lru_cache(maxsize=64)
def _columns_converters(fields: tuple, using: str) -> tuple:
    return tuple(field_converters(field, using) for field in fields)


def select_values(sql: str, params, fields: tuple, *, using: str = "default") -> list[list]:
    """Run a hand-written SELECT whose columns are, in order, those of ``fields`` (model
    fields, of any models: ``SKU._meta.get_field("price")``): its rows, each value converted
    as the ORM converts a value of that field (a decimal, a datetime on SQLite)."""
    converters = _columns_converters(fields, using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [_converted(row, converters, connection) for row in rows]


def after_gate(after: str | None) -> str:
    """The condition that chains a claim's statement to the CTE part before it (the buy's
    one statement on PostgreSQL: apps/pricing/claims.py ``claims_chain``): it takes only if
    that part returned a row. ``after`` is a CTE name from our code, never input."""
    return f" AND EXISTS (SELECT 1 FROM {after})" if after else ""  # noqa: S608 - a CTE name from our code


@lru_cache(maxsize=64)
def _select_where(model: type[Model], field: str, lock: bool, using: str) -> str:
    connection = connections[using]
    sql, _, _ = _select(model, using)
    meta = model._meta
    quote = connection.ops.quote_name
    where = quote(meta.get_field(field).column)
    sql = sql.rsplit(" WHERE ", 1)[0] + f" WHERE {where} = %s ORDER BY {quote(meta.pk.column)}"
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


def rows_where(model: type[Model], field: str, value, *, lock: bool = False, using: str = "default") -> list[Model]:
    """``model.objects.filter(<field>=value).order_by("pk")`` (``select_for_update()`` with
    ``lock``, where the database has it), without the query compiler's per-call cost: for
    hot paths (a ping reads its viewer's presences). Bypasses custom managers, as
    ``row_by_pk`` does; ``value`` is passed to the database as the field prepares it."""
    sql = _select_where(model, field, lock, using)
    return _instances(model, sql, [prep_value(model, field, value, using=using)], using)


class Names:
    """A model's table and column names, quoted by the backend, for hand-written hot-path
    statements: ``n = names(StockLevel)``, then ``f"UPDATE {n.table} SET {n.available} = ..."``.
    An attribute is looked up by field name or attname (``n.sku_id``); a name the model does
    not have raises AttributeError when the statement is built, so a renamed field or table
    breaks the build of the statement, not a buy (tests/ops/test_hot_sql.py runs each).
    ``n.cast("units")`` is ``CAST(%s AS integer)``: a parameter as the column's type, for a
    value selected rather than inserted directly. (A field named ``table`` or ``cast`` would
    be hidden by these; no model has one.)"""

    def __init__(self, model: type[Model], using: str = "default"):
        connection = connections[using]
        quote = connection.ops.quote_name
        meta = model._meta
        self.table = quote(meta.db_table)
        self._columns = {}
        self._types = {}
        for field in meta.concrete_fields:
            self._columns[field.name] = self._columns[field.attname] = quote(field.column)
            self._types[field.name] = self._types[field.attname] = cast_type(field, connection)

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["_columns"][name]
        except KeyError:
            raise AttributeError(name) from None

    def cast(self, name: str) -> str:
        try:
            return f"CAST(%s AS {self._types[name]})"
        except KeyError:
            raise AttributeError(name) from None


@lru_cache(maxsize=64)
def names(model: type[Model], using: str = "default") -> Names:
    return Names(model, using)
