"""The repository base on real PostgreSQL: lookup columns kept on every save, unique clashes mapped to
refusals, and aggregates a command only read version-checked at commit."""

from __future__ import annotations

import json
import uuid

import pytest

from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, Conflict, IdempotencyKeyInFlight, NotFound
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


async def events_of(pool, label_id: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT aggregate_version FROM counters.outbox WHERE aggregate_id = $1 ORDER BY position", label_id
    )
    return [row["aggregate_version"] for row in rows]


class TestOneStatementCommit:
    """A command that changed one aggregate and read nothing else commits in one statement: the same
    guarantees as a transaction — a lost update is refused whole, and events only land with their row."""

    async def test_a_stale_update_writes_neither_row_nor_events(self, pool):
        label_id = await create(pool, f"Stale-{uuid.uuid4().hex[:6]}")
        async with unit_of_work(pool) as uow:
            (await Labels(uow).get(label_id)).rename(f"Late-{uuid.uuid4().hex[:6]}")
            await change(Labels(unit_of_work(pool)), label_id, None, lambda label: label.rename("first"))
            with pytest.raises(ConcurrencyError):
                await uow.commit()
        row = await pool.fetchrow(
            "SELECT state->>'name' AS name, version FROM counters.labels WHERE id = $1", label_id
        )
        assert (row["name"], row["version"]) == ("first", 2)
        assert await events_of(pool, label_id) == [1, 2]

    async def test_several_events_land_in_order_with_the_idempotency_record(self, pool):
        key = uuid.uuid4().hex
        label = Label(uuid.uuid4().hex, "")
        for n in range(3):
            label.rename(f"Many-{n}-{uuid.uuid4().hex[:6]}")
        uow = UnitOfWork(
            pool, Outbox("counters"), Meta(correlation_id="t", idempotency_key=key, fingerprint="f")
        )
        async with uow:
            Labels(uow).add(label)
            outcome = await uow.commit(created_id=label.id)
        assert await events_of(pool, label.id) == [1, 2, 3]
        kept = await pool.fetchrow(
            "SELECT fingerprint, outcome::text AS outcome FROM bus.idempotency_keys WHERE key = $1", key
        )
        assert kept["fingerprint"] == "f"
        assert json.loads(kept["outcome"]) == {"aggregate_id": label.id, "version": 3, "created_id": label.id}
        assert outcome.version == 3

    async def test_a_refused_insert_leaves_no_events_and_no_idempotency_record(self, pool):
        taken = f"Taken-{uuid.uuid4().hex[:6]}"
        await create(pool, taken)
        key = uuid.uuid4().hex
        label = Label(uuid.uuid4().hex, "")
        label.rename(taken)
        uow = UnitOfWork(
            pool, Outbox("counters"), Meta(correlation_id="t", idempotency_key=key, fingerprint="f")
        )
        with pytest.raises(NameTaken):
            async with uow:
                Labels(uow).add(label)
                await uow.commit()
        assert await events_of(pool, label.id) == []
        assert await pool.fetchval("SELECT count(*) FROM bus.idempotency_keys WHERE key = $1", key) == 0

    async def test_a_key_already_kept_refuses_the_second_commit_whole(self, pool):
        key = uuid.uuid4().hex
        labels = []
        for outcome in ("first", "second"):
            label = Label(uuid.uuid4().hex, "")
            label.rename(f"Keyed-{outcome}-{uuid.uuid4().hex[:6]}")
            labels.append(label)
            uow = UnitOfWork(
                pool, Outbox("counters"), Meta(correlation_id="t", idempotency_key=key, fingerprint="f")
            )
            async with uow:
                Labels(uow).add(label)
                if outcome == "first":
                    await uow.commit()
                else:
                    with pytest.raises(IdempotencyKeyInFlight):
                        await uow.commit()
        assert await events_of(pool, labels[0].id) == [1]
        assert await events_of(pool, labels[1].id) == []
        assert await pool.fetchval("SELECT count(*) FROM counters.labels WHERE id = $1", labels[1].id) == 0
