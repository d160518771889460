"""Migrations: numbered files per component, applied in order, each exactly once."""

from pathlib import Path

import anyio
import asyncpg
import pytest

from shopstream.bootstrap import migration_plan
from shopstream.migrate import Component, MigrationError, migrate, migrate_all
from shopstream.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def component(tmp_path: Path) -> Component:
    (tmp_path / "0001_create.sql").write_text("CREATE TABLE probe (n integer NOT NULL);")
    # Not idempotent on purpose: a second application would add a second row.
    (tmp_path / "0002_seed.sql").write_text("INSERT INTO probe VALUES (1);")
    (tmp_path / "README.txt").write_text("ignored")
    return Component("probe", tmp_path)


async def _rows(url: str, sql: str) -> list:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def test_pending_migrations_apply_in_order_and_only_once(create_database, component):
    url = create_database("mig")
    assert await migrate(url, [component]) == ["probe/0001_create.sql", "probe/0002_seed.sql"]
    assert await migrate(url, [component]) == []
    assert [r["n"] for r in await _rows(url, "SELECT n FROM probe")] == [1]


async def test_new_file_is_applied_on_the_next_run(create_database, component):
    url = create_database("mig")
    await migrate(url, [component])
    Path(str(component.directory), "0003_more.sql").write_text("INSERT INTO probe VALUES (2);")
    assert await migrate(url, [component]) == ["probe/0003_more.sql"]


async def test_two_concurrent_migrators_apply_each_file_once(create_database, component):
    url = create_database("mig")
    results: list[list[str]] = []

    async def run() -> None:
        results.append(await migrate(url, [component]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        tg.start_soon(run)
    assert sorted(len(r) for r in results) == [0, 2]
    assert [r["n"] for r in await _rows(url, "SELECT n FROM probe")] == [1]
    recorded = await _rows(url, "SELECT version FROM shopstream.schema_migrations WHERE component = 'probe'")
    assert sorted(r["version"] for r in recorded) == [1, 2]


async def test_failed_migration_leaves_nothing_half_applied(create_database, tmp_path):
    url = create_database("mig")
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE fine (n integer);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (n integer); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(url, [Component("probe", tmp_path)])
    tables = await _rows(url, "SELECT to_regclass('fine') AS fine, to_regclass('half') AS half")
    assert tables[0]["fine"] is not None and tables[0]["half"] is None


async def test_edited_migration_is_refused(create_database, component):
    url = create_database("mig")
    await migrate(url, [component])
    Path(str(component.directory), "0002_seed.sql").write_text("INSERT INTO probe VALUES (99);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(url, [component])


def test_misnamed_file_is_refused(tmp_path):
    (tmp_path / "1_create.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        Component("probe", tmp_path).migrations()


async def test_product_migrations_create_one_schema_per_context(create_database):
    url = create_database("mig")
    plan = migration_plan(Settings(database_url=url))
    await migrate_all(plan)
    schemas = {r["nspname"] for r in await _rows(url, "SELECT nspname FROM pg_namespace")}
    assert {"identity", "catalogue", "bus", "shopstream"} <= schemas
    assert await migrate_all(plan) == []
