"""The repository base on real PostgreSQL: lookup columns kept on every save, unique clashes mapped to
refusals, and aggregates a command only read version-checked at commit."""

from __future__ import annotations

import json
import uuid

import pytest

from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, Conflict, NotFound
from bus.messages import Event, message
from bus.outbox import Outbox
from bus.repository import Repository, change
from bus.uow import Meta, UnitOfWork

pytestmark = pytest.mark.anyio

_TABLE = """
CREATE TABLE IF NOT EXISTS counters.labels (
    id text PRIMARY KEY, state jsonb NOT NULL, version bigint NOT NULL, name_key text NOT NULL,
    CONSTRAINT labels_name_key_key UNIQUE (name_key)
)
"""


@message
class LabelNamed(Event, frozen=True, kw_only=True, tag="counters.LabelNamed"):
    label_id: str
    name: str


class NameTaken(Conflict):
    kind = "name-taken"


class Label(Aggregate):
    aggregate_type = "Label"

    def __init__(self, label_id: str, name: str, version: int = 0) -> None:
        super().__init__(label_id, version)
        self.name = name

    def rename(self, name: str) -> None:
        self.name = name
        self.raise_event(LabelNamed(label_id=self.id, name=name))


class Labels(Repository[Label]):
    table = "counters.labels"
    what = "label"
    lookups = ("name_key",)
    unique = {"labels_name_key_key": lambda label: NameTaken(f"a label named {label.name} exists")}

    def load(self, state: str, version: int) -> Label:
        fields = json.loads(state)
        return Label(fields["id"], fields["name"], version)

    def dump(self, label: Label) -> str:
        return json.dumps({"id": label.id, "name": label.name})

    def lookup_values(self, label: Label) -> tuple[object, ...]:
        return (label.name.lower(),)


@pytest.fixture
async def pool(messaging):
    opened = messaging.pool_of("counters")
    await opened.execute(_TABLE)
    return opened


def unit_of_work(pool) -> UnitOfWork:
    return UnitOfWork(pool, Outbox("counters"), Meta(correlation_id="test"))


async def create(pool, name: str) -> str:
    label = Label(uuid.uuid4().hex, "")
    label.rename(name)
    async with unit_of_work(pool) as uow:
        Labels(uow).add(label)
        await uow.commit()
    return label.id


async def test_lookup_columns_are_written_on_insert_and_on_update(pool):
    label_id = await create(pool, f"Alpha-{uuid.uuid4().hex[:6]}")
    renamed = f"Beta-{uuid.uuid4().hex[:6]}"
    await change(Labels(unit_of_work(pool)), label_id, None, lambda label: label.rename(renamed))
    row = await pool.fetchrow("SELECT name_key, version FROM counters.labels WHERE id = $1", label_id)
    assert (row["name_key"], row["version"]) == (renamed.lower(), 2)


async def test_a_unique_clash_becomes_the_mapped_refusal_on_insert_and_update(pool):
    taken = f"Gamma-{uuid.uuid4().hex[:6]}"
    await create(pool, taken)
    with pytest.raises(NameTaken):
        await create(pool, taken.upper())
    other = await create(pool, f"Delta-{uuid.uuid4().hex[:6]}")
    with pytest.raises(NameTaken):
        await change(Labels(unit_of_work(pool)), other, None, lambda label: label.rename(taken))


async def test_missing_aggregate_is_not_found_naming_what_and_which(pool):
    with pytest.raises(NotFound, match="label nope does not exist"):
        await change(Labels(unit_of_work(pool)), "nope", None, lambda label: None)


async def test_an_aggregate_only_read_must_be_unchanged_at_commit(pool):
    read_id = await create(pool, f"Read-{uuid.uuid4().hex[:6]}")
    written_id = await create(pool, f"Written-{uuid.uuid4().hex[:6]}")
    async with unit_of_work(pool) as uow:
        labels = Labels(uow)
        await labels.get(read_id)  # decides on it, does not change it
        (await labels.get(written_id)).rename(f"Written-{uuid.uuid4().hex[:6]}")
        await change(Labels(unit_of_work(pool)), read_id, None, lambda label: label.rename("meanwhile"))
        with pytest.raises(ConcurrencyError):
            await uow.commit()
    assert await pool.fetchval("SELECT version FROM counters.labels WHERE id = $1", written_id) == 1


async def test_an_unchanged_read_aggregate_lets_the_commit_through(pool):
    read_id = await create(pool, f"Read-{uuid.uuid4().hex[:6]}")
    written_id = await create(pool, f"Written-{uuid.uuid4().hex[:6]}")
    async with unit_of_work(pool) as uow:
        labels = Labels(uow)
        await labels.get(read_id)
        (await labels.get(written_id)).rename(f"Written-{uuid.uuid4().hex[:6]}")
        await uow.commit()
    assert await pool.fetchval("SELECT version FROM counters.labels WHERE id = $1", written_id) == 2
