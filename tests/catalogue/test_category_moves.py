"""Moving categories on real PostgreSQL, through the bus: the subtree goes along, the refusals, and the
race — concurrent moves, creates, deactivations and activations from two processes never commit a cycle,
a level above 4 or a stored level that is not the depth, and the read models settle on the write side.

`SHOPSTREAM_MOVE_ROUNDS` sets the rounds of the race (default 20; the full run is 200).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from bus.errors import ConcurrencyError, Conflict, Invalid, NotFound, VersionMismatch
from bus.messages import Command
from bus.module import ContextModule
from bus.repository import Repository
from bus.uow import Meta, UnitOfWork
from contexts import catalogue, identity
from contexts.catalogue.categories import (
    ActivateCategory,
    CreateCategory,
    DeactivateCategory,
    MoveCategory,
)
from contexts.catalogue.category import Category
from contexts.catalogue.errors import (
    CategoryAlreadyActive,
    CategoryCycle,
    CategoryInactive,
    CategoryTooDeep,
)
from contexts.catalogue.listing import CreateProduct
from contexts.catalogue.queries import get_category
from contexts.catalogue.repository import Categories, Subtree, now
from contexts.catalogue.search import list_product_cards
from contexts.catalogue.viewer import ADMIN
from shopstream.bootstrap import Messaging
from tests.messaging.helpers import running, wait_until

pytestmark = pytest.mark.anyio

ROUNDS = int(os.environ.get("SHOPSTREAM_MOVE_ROUNDS", "20"))
TREE_SIZE = 300
MAX_LEVEL = 4


@pytest.fixture(scope="module")
def contexts() -> list[ContextModule]:
    return [identity.module, catalogue.module]


@pytest.fixture
def pool(messaging: Messaging) -> asyncpg.Pool:
    return messaging.pool_of("catalogue")


async def new(messaging: Messaging, parent: str | None = None, name: str = "Node") -> str:
    command = CreateCategory(category_id=str(uuid.uuid4()), name=name, parent_category_id=parent)
    await messaging.bus.execute(command)
    return command.category_id


async def chain(messaging: Messaging, length: int) -> list[str]:
    """A root and `length - 1` categories, each below the previous one."""
    ids: list[str] = []
    for n in range(length):
        ids.append(await new(messaging, ids[-1] if ids else None, name=f"L{n}"))
    return ids


async def stored(pool: asyncpg.Pool, category_id: str) -> tuple[str | None, int, int]:
    row = await pool.fetchrow(
        "SELECT state->>'parent_category_id' AS parent, (state->>'level')::int AS level, version"
        " FROM catalogue.categories WHERE id = $1",
        category_id,
    )
    return row["parent"], row["level"], row["version"]


class TestMoveCategory:
    async def test_the_subtree_moves_along_and_every_level_follows(self, messaging, pool):
        a, a1, a2 = await chain(messaging, 3)
        _b, b1 = await chain(messaging, 2)
        await messaging.bus.execute(MoveCategory(category_id=a1, parent_category_id=b1))
        assert await stored(pool, a1) == (b1, 2, 2)
        assert await stored(pool, a2) == (a1, 3, 2)
        outcome = await messaging.bus.execute(MoveCategory(category_id=a1, parent_category_id=None))
        assert outcome.version == 3
        assert await stored(pool, a1) == (None, 0, 3)
        assert await stored(pool, a2) == (a1, 1, 3)
        assert (await stored(pool, a))[2] == 1  # the old parent is not touched

    async def test_a_move_to_the_same_level_leaves_the_subtree_as_it_is(self, messaging, pool):
        _a, a1, a2 = await chain(messaging, 3)
        b = await new(messaging)
        await messaging.bus.execute(MoveCategory(category_id=a1, parent_category_id=b))
        assert await stored(pool, a1) == (b, 1, 2)
        assert await stored(pool, a2) == (a1, 2, 1)

    async def test_the_same_parent_is_no_change(self, messaging, pool):
        a, a1 = await chain(messaging, 2)
        outcome = await messaging.bus.execute(MoveCategory(category_id=a1, parent_category_id=a))
        assert outcome.version == 1
        root = await messaging.bus.execute(MoveCategory(category_id=a, parent_category_id=None))
        assert root.version == 1
        assert await pool.fetchval("SELECT count(*) FROM catalogue.outbox WHERE aggregate_id = $1", a1) == 1

    async def test_under_itself_or_below_itself_is_a_cycle(self, messaging, pool):
        a, a1, a2 = await chain(messaging, 3)
        for parent in (a, a1, a2):
            with pytest.raises(CategoryCycle) as raised:
                await messaging.bus.execute(MoveCategory(category_id=a, parent_category_id=parent))
            assert raised.value.status == 409
        assert await stored(pool, a) == (None, 0, 1)

    async def test_no_node_of_the_subtree_may_end_below_level_4(self, messaging, pool):
        deep = await chain(messaging, 4)  # levels 0..3
        other = await chain(messaging, 3)  # levels 0..2
        with pytest.raises(CategoryTooDeep):  # other[1] at level 4 would put other[2] at 5
            await messaging.bus.execute(MoveCategory(category_id=other[1], parent_category_id=deep[3]))
        await messaging.bus.execute(MoveCategory(category_id=other[2], parent_category_id=deep[3]))
        assert await stored(pool, other[2]) == (deep[3], 4, 2)

    async def test_an_inactive_parent_is_a_conflict_and_a_missing_one_invalid(self, messaging, pool):
        a = await new(messaging)
        b = await new(messaging)
        await messaging.bus.execute(DeactivateCategory(category_id=b))
        with pytest.raises(CategoryInactive):
            await messaging.bus.execute(MoveCategory(category_id=a, parent_category_id=b))
        for missing in (str(uuid.uuid4()), "not-a-uuid"):
            with pytest.raises(Invalid) as raised:
                await messaging.bus.execute(MoveCategory(category_id=a, parent_category_id=missing))
            assert raised.value.errors[0]["field"] == "parent_category_id"
        with pytest.raises(NotFound):
            await messaging.bus.execute(MoveCategory(category_id=str(uuid.uuid4()), parent_category_id=a))
        with pytest.raises(VersionMismatch):
            await messaging.bus.execute(
                MoveCategory(category_id=a, parent_category_id=None, expected_version=7)
            )
        assert await stored(pool, a) == (None, 0, 1)

    async def test_a_move_that_read_a_subtree_before_a_child_was_added_cannot_commit(self, messaging, pool):
        """The phantom: the new child changes no row the move read; the subtree re-check sees it."""
        deep = await chain(messaging, 3)  # levels 0..2
        a, a1 = await chain(messaging, 2)
        uow = UnitOfWork(pool, messaging.outboxes["catalogue"], Meta(correlation_id="t"))
        async with uow:
            categories = Categories(uow)
            category: Category = await categories.get(a)
            lineage = await categories.lineage("parent_category_id", deep[2])
            category.move(lineage, await categories.subtree(category), now=now())  # a1 would be at 4
            await new(messaging, a1)  # ... and its new child at 5
            with pytest.raises(ConcurrencyError):
                await uow.commit()
        assert await stored(pool, a) == (None, 0, 1)


class TestActivateCategory:
    async def test_an_inactive_category_under_an_active_parent_is_activated(self, messaging, pool):
        _a, a1 = await chain(messaging, 2)
        await messaging.bus.execute(DeactivateCategory(category_id=a1))
        outcome = await messaging.bus.execute(ActivateCategory(category_id=a1))
        assert outcome.version == 3
        assert await pool.fetchval(
            "SELECT (state->>'is_active')::bool FROM catalogue.categories WHERE id = $1", a1
        )

    async def test_an_active_category_or_an_inactive_parent_is_a_conflict(self, messaging):
        a, a1 = await chain(messaging, 2)
        with pytest.raises(CategoryAlreadyActive):
            await messaging.bus.execute(ActivateCategory(category_id=a1))
        await messaging.bus.execute(DeactivateCategory(category_id=a1))
        await messaging.bus.execute(DeactivateCategory(category_id=a))
        with pytest.raises(CategoryInactive):
            await messaging.bus.execute(ActivateCategory(category_id=a1))
        await messaging.bus.execute(ActivateCategory(category_id=a))
        await messaging.bus.execute(ActivateCategory(category_id=a1))


# --- the race --------------------------------------------------------------------------------------


@dataclass
class Tree:
    """The write side as it stands: each category's parent, stored level, state and version."""

    parent: dict[str, str | None]
    level: dict[str, int]
    active: dict[str, bool]
    name: dict[str, str]
    version: dict[str, int]
    products: dict[str, str] = field(default_factory=dict)  # product → category

    @classmethod
    async def read(cls, pool: asyncpg.Pool) -> Tree:
        rows = await pool.fetch("SELECT id, state, version FROM catalogue.categories")
        states = {r["id"]: (json.loads(r["state"]), r["version"]) for r in rows}
        products = await pool.fetch(
            "SELECT id, state->>'category_id' AS category FROM catalogue.products"
            " WHERE state->>'category_id' IS NOT NULL AND state->>'status' <> 'Archived'"
        )
        return cls(
            parent={i: s["parent_category_id"] for i, (s, _) in states.items()},
            level={i: s["level"] for i, (s, _) in states.items()},
            active={i: s["is_active"] for i, (s, _) in states.items()},
            name={i: s["name"] for i, (s, _) in states.items()},
            version={i: v for i, (_, v) in states.items()},
            products={r["id"]: r["category"] for r in products},
        )

    def path(self, category_id: str) -> list[str] | None:
        """The category and its ancestors up to the root, or None on a cycle."""
        found = [category_id]
        while (up := self.parent[found[-1]]) is not None:
            if up in found:
                return None
            found.append(up)
        return found

    def violations(self) -> list[str]:
        broken = []
        for category_id in self.parent:
            path = self.path(category_id)
            if path is None:
                broken.append(f"{category_id} lies on a cycle")
            elif len(path) - 1 > MAX_LEVEL:
                broken.append(f"{category_id} is at level {len(path) - 1}")
            elif len(path) - 1 != self.level[category_id]:
                broken.append(f"{category_id} stores level {self.level[category_id]}, is at {len(path) - 1}")
        return broken

    def below(self, category_id: str) -> set[str]:
        return {c for c in self.parent if c != category_id and category_id in (self.path(c) or ())}


def operations(tree: Tree, rng: random.Random) -> list[Command]:
    """One round: two moves that would close a loop, a move and a create that would together go too deep,
    and random moves, creates, deactivations and activations."""
    ids = sorted(tree.parent)
    pick = rng.choice
    a, b = rng.sample(ids, 2)
    x = pick(ids)
    deepest = max([x, *tree.below(x)], key=lambda c: tree.level[c])
    commands: list[Command] = [
        MoveCategory(category_id=a, parent_category_id=b),
        MoveCategory(category_id=b, parent_category_id=a),
        MoveCategory(category_id=x, parent_category_id=pick(ids)),
        CreateCategory(category_id=str(uuid.uuid4()), name="New", parent_category_id=deepest),
        MoveCategory(category_id=pick(ids), parent_category_id=pick([None, *ids])),
        CreateCategory(category_id=str(uuid.uuid4()), name="New", parent_category_id=pick(ids)),
        DeactivateCategory(category_id=pick(ids)),
        ActivateCategory(category_id=pick([c for c in ids if not tree.active[c]] or ids)),
    ]
    rng.shuffle(commands)
    return commands


async def race(
    messaging: Messaging, other: Messaging, rounds: int, seed: int
) -> tuple[list[str], dict[str, int]]:
    """Rounds of concurrent commands from two processes; the violations seen after each, and outcomes."""
    pool = messaging.pool_of("catalogue")
    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    for _ in range(rounds):
        tree = await Tree.read(pool)
        if broken := tree.violations():
            return broken, outcomes
        commands = operations(tree, rng)
        buses = [messaging.bus, other.bus] * len(commands)
        results = await asyncio.gather(
            *(bus.execute(c) for bus, c in zip(buses, commands, strict=False)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Conflict):
                raise result
            name = type(result).__name__
            outcomes[name] = outcomes.get(name, 0) + 1
    return (await Tree.read(pool)).violations(), outcomes


async def grown(messaging: Messaging, size: int, seed: int) -> Tree:
    """A tree of `size` categories over a few roots, every level filled, and products filed in some."""
    rng = random.Random(seed)
    levels: dict[str, int] = {}
    for n in range(size):
        fitting = [c for c, level in levels.items() if level < MAX_LEVEL]
        parent = None if n < 6 else rng.choice(fitting)
        category_id = await new(messaging, parent, name=f"C{n}")
        levels[category_id] = 0 if parent is None else levels[parent] + 1
    for n in range(size // 5):
        command = CreateProduct(
            product_id=str(uuid.uuid4()), sku=f"MOVE-{uuid.uuid4().hex[:12]}", title=f"P{n}",
            category_id=rng.choice(sorted(levels)),
        )  # fmt: skip
        await messaging.bus.execute(command)
    return await Tree.read(messaging.pool_of("catalogue"))


async def read_models_settled(pool: asyncpg.Pool, tree: Tree) -> bool:
    rows = await pool.fetch(
        "SELECT category_id, version FROM catalogue.category_nodes WHERE category_id = ANY($1)",
        list(tree.parent),
    )
    cards = await pool.fetchval("SELECT count(*) FROM catalogue.product_cards WHERE product_id = ANY($1)",
                                list(tree.products))  # fmt: skip
    return {r["category_id"]: r["version"] for r in rows} == tree.version and cards == len(tree.products)


async def assert_read_models_follow(messaging: Messaging, tree: Tree) -> None:
    pool = messaging.pool_of("catalogue")
    async with running(messaging.supervisor()):
        await wait_until(lambda: read_models_settled(pool, tree), timeout=120)
    for category_id in tree.parent:
        node = await get_category(pool, category_id, viewer=ADMIN)
        assert node is not None
        path = tree.path(category_id)
        assert path is not None
        expected = (
            tree.parent[category_id], len(path) - 1, tree.active[category_id],
            [tree.name[c] for c in reversed(path)],
            sum(1 for c in tree.products.values() if c == category_id), tree.version[category_id],
        )  # fmt: skip
        assert (
            node.parent_category_id,
            node.level,
            node.is_active,
            node.breadcrumb,
            node.product_count,
            node.version,
        ) == expected, category_id
    for category_id in random.Random(1).sample(sorted(tree.parent), 40):
        subtree = {category_id, *tree.below(category_id)}
        page = await list_product_cards(pool, viewer=ADMIN, category_id=category_id, limit=100)
        assert {card.product_id for card in page.items} == {
            p for p, c in tree.products.items() if c in subtree
        }, category_id


class TestConcurrentMoves:
    async def test_concurrent_moves_creates_and_activations_keep_the_tree_and_the_read_models(
        self, messaging, other
    ):
        await grown(messaging, TREE_SIZE, seed=7)
        started = time.monotonic()
        broken, outcomes = await race(messaging, other, ROUNDS, seed=11)
        took = time.monotonic() - started
        print(f"\n{ROUNDS} rounds in {took:.1f}s; outcomes {sorted(outcomes.items())}")
        assert broken == []
        assert outcomes.get("Outcome", 0) > ROUNDS  # the rounds did change the tree
        await assert_read_models_follow(messaging, await Tree.read(messaging.pool_of("catalogue")))

    async def test_without_the_checks_at_commit_the_same_race_breaks_the_tree(
        self, messaging, other, monkeypatch
    ):
        """What the checks prevent: with them switched off, the race commits a cycle or a level the
        tree cannot hold."""

        async def unchecked(*args: Any) -> None:
            return None

        monkeypatch.setattr(Repository, "ensure_unchanged", unchecked)
        monkeypatch.setattr(Subtree, "ensure_unchanged", unchecked)
        await grown(messaging, TREE_SIZE, seed=8)
        broken, _ = await race(messaging, other, 200, seed=12)
        print("\nwithout the checks:", broken[:5])
        assert broken
