"""The rules every context keeps, checked when the context is loaded and after its migrations: each
broken rule is one line naming the context and the rule, so a start fails before a request or an event
meets the breakage instead of a client or a consumer (a 500, a dead letter, a rebuild that misses a table).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from types import CodeType, FunctionType
from typing import Any

import asyncpg

from bus.batch import BatchedWrites
from bus.messages import Message, UnknownMessage, registry
from bus.module import ContextModule
from bus.repository import Repository

_WRITES = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+([a-z_]\w*\.[a-z_]\w*)", re.I)
# What a `BatchedWrites` projection's `apply` may not call: it runs against a recorder that only executes.
_NOT_BATCHABLE = frozenset(
    {"fetch", "fetchrow", "fetchval", "executemany", "transaction", "cursor", "prepare"}
)


class NonConformingContext(Exception):
    """A context breaks a rule of the frame; the message names the context and the rule."""


def check(module: ContextModule) -> None:
    """Raise on the first rule the context's code breaks."""
    problems = list(_problems(module, module.package))
    if problems:
        raise NonConformingContext(problems[0])


def _problems(module: ContextModule, package: str) -> Iterator[str]:
    name = module.name
    folder = package.rsplit(".", 1)[-1]
    if folder != name:
        yield f"context {name}: its folder is named {folder!r}; a context's name is its folder's name"
    for cls in _defined_in(Message, package):
        tag = cls.__struct_config__.tag
        if tag is None and not cls.__subclasses__():
            yield f"context {name}: {cls.__name__} has no tag; give it one like '{name}.{cls.__name__}'"
        elif isinstance(tag, str) and not tag.startswith(f"{name}."):
            yield f"context {name}: {cls.__name__}'s tag {tag!r} must start with '{name}.'"
        elif isinstance(tag, str) and not _registered(tag, cls):
            yield f"context {name}: {cls.__name__} is not registered; decorate it with @message"
    for projection in module.projections:
        yield from _projection_problems(name, projection)


def _registered(tag: str, cls: type) -> bool:
    try:
        return registry.type_of(tag) is cls
    except UnknownMessage:
        return False


def _projection_problems(context: str, projection: Any) -> Iterator[str]:
    name, tables = projection.name, tuple(projection.tables)
    where = f"context {context}: projection {name}"
    if not name.startswith(f"{context}."):
        yield f"{where}: its name must start with '{context}.'"
    for table in tables:
        if not table.startswith(f"{context}."):
            yield f"{where}: table {table} must be in schema {context}"
    written = {t.lower() for text in _texts(type(projection)) for t in _WRITES.findall(text)}
    for table in sorted(written - set(tables)):
        yield f"{where} writes {table}, which its `tables` does not list (a rebuild would miss it)"
    if isinstance(projection, BatchedWrites):
        for called in sorted(_NOT_BATCHABLE & _names(type(projection))):
            yield f"{where} is BatchedWrites, so apply may only execute statements; it calls {called}"


async def check_tables(conn: asyncpg.Connection, module: ContextModule) -> None:
    """After migrations: the tables the context's code relies on exist with the columns it writes."""
    expected: dict[str, set[str]] = {f"{module.name}.outbox": set()}
    for repository in _defined_in(Repository, module.package) if module.package else ():
        if hasattr(repository, "table"):
            expected[repository.table] = {"id", "state", "version", *repository.lookups}
    for projection in module.projections:
        for table in projection.tables:
            expected.setdefault(table, set())
    rows = await conn.fetch(
        "SELECT table_schema || '.' || table_name AS name, array_agg(column_name::text) AS columns"
        " FROM information_schema.columns WHERE table_schema || '.' || table_name = ANY($1::text[])"
        " GROUP BY 1",
        list(expected),
    )
    found = {row["name"]: set(row["columns"]) for row in rows}
    for table, columns in expected.items():
        if table not in found:
            hint = (
                f"; its first migration runs bus.create_outbox('{module.name}')"
                if table.endswith(".outbox")
                else ""
            )
            raise NonConformingContext(f"context {module.name}: table {table} does not exist{hint}")
        if missing := columns - found[table]:
            raise NonConformingContext(
                f"context {module.name}: table {table} lacks column(s) {', '.join(sorted(missing))}"
                " (an aggregate table has id, state, version, then its lookups)"
            )


def _defined_in(base: type, package: str) -> Iterator[Any]:
    """Subclasses of `base`, at any depth, defined in `package`."""
    seen: set[type] = set()
    pending: list[type] = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        if cls.__module__ == package or cls.__module__.startswith(f"{package}."):
            yield cls


def _own_code(cls: type) -> Iterator[tuple[CodeType, dict[str, Any]]]:
    """The code of the methods a class and its bases outside `bus` define, with their module's globals."""
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("bus", "builtins"):
            continue
        module_globals = vars(sys.modules[klass.__module__])
        for value in vars(klass).values():
            if isinstance(value, FunctionType):
                yield from ((code, module_globals) for code in _nested(value.__code__))


def _nested(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _nested(const)


def _texts(cls: type) -> Sequence[str]:
    """Every string a class's methods hold or name at module level: its SQL."""
    texts: list[str] = [v for v in vars(cls).values() if isinstance(v, str)]
    for code, module_globals in _own_code(cls):
        texts += [c for c in code.co_consts if isinstance(c, str)]
        texts += [module_globals[n] for n in code.co_names if isinstance(module_globals.get(n), str)]
    return texts


def _names(cls: type) -> set[str]:
    return {name for code, _ in _own_code(cls) for name in code.co_names}
