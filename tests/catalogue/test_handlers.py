"""Catalogue handlers on real PostgreSQL through the bus: the outbox they write, SKUs kept unique by the
database, category references checked at commit, and the If-Match version check.

The module gets a database of its own, migrated for the catalogue context and identity (whose events its
customer tiers read model follows, so a messaging core serves both); every test opens its own
`Messaging` (bus, pools) and works on products and categories with fresh ids and SKUs. Where a test needs
two processes racing, it opens a second `Messaging`: two buses, two pools, no shared mailboxes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from bus.errors import ConcurrencyError, Conflict, Invalid, NotFound, VersionMismatch
from bus.messages import Command, registry
from bus.module import ContextModule
from bus.uow import Meta, Outcome, UnitOfWork
from contexts import catalogue, identity
from contexts.catalogue import categories, filing, listing
from contexts.catalogue.categories import (
    CreateCategory,
    DeactivateCategory,
    ReorderCategory,
    UpdateCategory,
    deactivate_category,
)
from contexts.catalogue.category import Category
from contexts.catalogue.details import UpdateProductDetails
from contexts.catalogue.errors import (
    CategoryAlreadyInactive,
    CategoryInactive,
    CategoryTooDeep,
    SkuTaken,
    VariantSkuTaken,
)
from contexts.catalogue.filing import ChangeProductCategory
from contexts.catalogue.gallery import (
    AddProductImage,
    RemoveProductImage,
    ReorderProductImages,
    SetPrimaryImage,
)
from contexts.catalogue.lifecycle import ActivateProduct, ArchiveProduct, DiscontinueProduct
from contexts.catalogue.listing import CreateProduct
from contexts.catalogue.pricing import AddVariant, ChangeVariantPrice, SetTierPrice
from contexts.catalogue.product import Product
from contexts.catalogue.repository import Categories, Products, now
from contexts.catalogue.variant_edits import ActivateVariant, DeactivateVariant, UpdateVariant
from contexts.catalogue.visibility import ChangeProductVisibility
from shopstream.bootstrap import Messaging

pytestmark = pytest.mark.anyio

RACE_ROUNDS = 30


@pytest.fixture(scope="module")
def contexts() -> list[ContextModule]:
    return [identity.module, catalogue.module]


@pytest.fixture
def pool(messaging: Messaging) -> asyncpg.Pool:
    return messaging.pool_of("catalogue")


def fresh_sku(stem: str = "SKU") -> str:
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def new_product(**overrides: Any) -> CreateProduct:
    fields: dict[str, Any] = {
        "product_id": str(uuid.uuid4()),
        "sku": fresh_sku("TEE"),
        "title": "Classic tee",
    }
    return CreateProduct(**(fields | overrides))


def new_category(**overrides: Any) -> CreateCategory:
    return CreateCategory(**({"category_id": str(uuid.uuid4()), "name": "Clothing"} | overrides))


def new_variant(product_id: str, **overrides: Any) -> AddVariant:
    fields: dict[str, Any] = {
        "product_id": product_id,
        "variant_id": str(uuid.uuid4()),
        "variant_sku": fresh_sku("VAR"),
        "base_price": Decimal("24.90"),
    }
    return AddVariant(**(fields | overrides))


async def created(messaging: Messaging, command: Command) -> str:
    outcome = await messaging.bus.execute(command)
    return outcome.created_id


async def outbox_rows(pool: asyncpg.Pool, aggregate_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT position, type, schema_version, aggregate_type, aggregate_version, payload::text AS payload"
        " FROM catalogue.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version",
        aggregate_id,
    )


async def stored_version(pool: asyncpg.Pool, table: str, aggregate_id: str) -> int | None:
    return await pool.fetchval(f"SELECT version FROM catalogue.{table} WHERE id = $1", aggregate_id)


async def position_of(pool: asyncpg.Pool, aggregate_id: str, event_type: str) -> int | None:
    return await pool.fetchval(
        "SELECT position FROM catalogue.outbox WHERE aggregate_id = $1 AND type = $2",
        aggregate_id,
        event_type,
    )


def failures(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


class TestOutbox:
    async def test_product_commands_write_their_events_at_versions_1_to_n(self, messaging, pool):
        product_id = await created(messaging, new_product())
        variant = new_variant(product_id)
        first_image, second_image = str(uuid.uuid4()), str(uuid.uuid4())
        script: list[Command] = [
            UpdateProductDetails(product_id=product_id, brand="Northwind"),
            variant,
            SetTierPrice(product_id=product_id, variant_id=variant.variant_id, tier="Gold", price=Decimal("19.90")),
            ChangeVariantPrice(product_id=product_id, variant_id=variant.variant_id, base_price=Decimal("22.5")),
            AddProductImage(product_id=product_id, image_id=first_image, url="https://img.example.com/1.jpg"),
            AddProductImage(product_id=product_id, image_id=second_image, url="https://img.example.com/2.jpg"),
            RemoveProductImage(product_id=product_id, image_id=first_image),
            ActivateProduct(product_id=product_id),
            DiscontinueProduct(product_id=product_id),
            ArchiveProduct(product_id=product_id),
        ]  # fmt: skip
        versions = [(await messaging.bus.execute(step)).version for step in script]
        assert versions == list(range(2, len(script) + 2))

        rows = await outbox_rows(pool, product_id)
        assert [r["type"] for r in rows] == [
            "catalogue.ProductCreated",
            "catalogue.ProductDetailsUpdated",
            "catalogue.VariantAdded",
            "catalogue.TierPriceSet",
            "catalogue.VariantPriceChanged",
            "catalogue.ProductImageAdded",
            "catalogue.ProductImageAdded",
            "catalogue.ProductImageRemoved",
            "catalogue.ProductActivated",
            "catalogue.ProductDiscontinued",
            "catalogue.ProductArchived",
        ]
        assert [r["aggregate_version"] for r in rows] == list(range(1, len(script) + 2))
        assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)
        assert {(r["aggregate_type"], r["schema_version"]) for r in rows} == {("Product", 1)}
        for row in rows:
            payload = registry.decode(row["type"], row["payload"].encode())
            assert type(payload).tag() == row["type"]
            assert payload.product_id == product_id
        removed = registry.decode(rows[7]["type"], rows[7]["payload"].encode())
        assert removed.new_primary_id == second_image
        assert await stored_version(pool, "products", product_id) == len(script) + 1

    async def test_money_in_event_payloads_is_a_decimal_string(self, messaging, pool):
        product_id = await created(messaging, new_product())
        variant = new_variant(product_id, base_price=Decimal("24.9"), weight_value=Decimal("0.25"))
        await messaging.bus.execute(variant)
        await messaging.bus.execute(
            SetTierPrice(
                product_id=product_id, variant_id=variant.variant_id, tier="Silver", price=Decimal("19.9")
            )
        )
        await messaging.bus.execute(
            ChangeVariantPrice(product_id=product_id, variant_id=variant.variant_id, base_price=Decimal("22"))
        )
        money = await pool.fetch(
            "SELECT type, jsonb_typeof(payload->'base_price') AS base_kind, payload->>'base_price' AS base,"
            " jsonb_typeof(payload->'tier_prices') AS tiers_kind, payload->>'weight_value' AS weight,"
            " jsonb_typeof(payload->'price') AS price_kind, payload->>'price' AS price,"
            " jsonb_typeof(payload->'previous_price') AS previous_kind, payload->>'previous_price' AS previous,"
            " jsonb_typeof(payload->'new_price') AS new_kind, payload->>'new_price' AS new"
            " FROM catalogue.outbox WHERE aggregate_id = $1 AND aggregate_version > 1 ORDER BY aggregate_version",
            product_id,
        )
        added, tier, changed = (dict(m) for m in money)
        assert (added["base_kind"], added["base"], added["tiers_kind"]) == ("string", "24.90", "object")
        assert added["weight"] == "0.25"
        assert (tier["price_kind"], tier["price"]) == ("string", "19.90")
        assert (changed["previous_kind"], changed["previous"]) == ("string", "24.90")
        assert (changed["new_kind"], changed["new"]) == ("string", "22.00")

    async def test_a_yen_price_has_no_minor_digits(self, messaging, pool):
        product_id = await created(messaging, new_product())
        await messaging.bus.execute(new_variant(product_id, base_price=Decimal("1500"), currency="JPY"))
        base = await pool.fetchval(
            "SELECT payload->'base_price' #>> '{}' FROM catalogue.outbox WHERE aggregate_id = $1"
            " AND type = 'catalogue.VariantAdded'",
            product_id,
        )
        assert base == "1500"

    async def test_category_commands_write_their_events_at_versions_1_to_n(self, messaging, pool):
        root = new_category()
        await messaging.bus.execute(root)
        child = new_category(name="Tops", parent_category_id=root.category_id)
        await messaging.bus.execute(child)
        for step in [
            UpdateCategory(category_id=child.category_id, name="Shirts"),
            ReorderCategory(category_id=child.category_id, new_display_order=3),
            DeactivateCategory(category_id=child.category_id),
        ]:
            await messaging.bus.execute(step)
        rows = await outbox_rows(pool, child.category_id)
        assert [(r["aggregate_version"], r["type"]) for r in rows] == [
            (1, "catalogue.CategoryCreated"),
            (2, "catalogue.CategoryDetailsUpdated"),
            (3, "catalogue.CategoryReordered"),
            (4, "catalogue.CategoryDeactivated"),
        ]
        assert {r["aggregate_type"] for r in rows} == {"Category"}
        created_event = registry.decode(rows[0]["type"], rows[0]["payload"].encode())
        assert (created_event.parent_category_id, created_event.level) == (root.category_id, 1)
        assert [r["aggregate_version"] for r in await outbox_rows(pool, root.category_id)] == [1]


class TestSkuUniqueness:
    @pytest.mark.parametrize("spelling", [str.upper, str.lower, lambda s: s], ids=["upper", "lower", "same"])
    async def test_a_second_product_with_the_same_sku_in_any_case_is_taken(self, messaging, pool, spelling):
        sku = fresh_sku("Tee")
        await messaging.bus.execute(new_product(sku=sku))
        clash = new_product(sku=spelling(sku))
        with pytest.raises(SkuTaken) as raised:
            await messaging.bus.execute(clash)
        assert isinstance(raised.value, Conflict) and raised.value.status == 409
        assert await stored_version(pool, "products", clash.product_id) is None
        assert await outbox_rows(pool, clash.product_id) == []

    async def test_a_variant_sku_is_unique_across_products(self, messaging, pool):
        first, second = await created(messaging, new_product()), await created(messaging, new_product())
        sku = fresh_sku("Var")
        await messaging.bus.execute(new_variant(first, variant_sku=sku))
        with pytest.raises(VariantSkuTaken) as raised:
            await messaging.bus.execute(new_variant(second, variant_sku=sku.lower()))
        assert isinstance(raised.value, Conflict)
        assert await stored_version(pool, "products", second) == 1
        assert len(await outbox_rows(pool, second)) == 1
        owners = await pool.fetch(
            "SELECT product_id FROM catalogue.variant_skus WHERE variant_sku_key = $1", sku.upper()
        )
        assert [o["product_id"] for o in owners] == [first]

    async def test_a_variant_sku_is_unique_within_a_product(self, messaging, pool):
        product_id = await created(messaging, new_product())
        sku = fresh_sku("Var")
        await messaging.bus.execute(new_variant(product_id, variant_sku=sku))
        with pytest.raises(VariantSkuTaken):
            await messaging.bus.execute(new_variant(product_id, variant_sku=sku.upper()))
        assert await stored_version(pool, "products", product_id) == 2

    async def test_concurrent_creations_of_one_sku_let_exactly_one_through(self, messaging, other, pool):
        sku = fresh_sku("Race")
        spellings = [sku, sku.upper(), sku.lower()]
        commands = [new_product(sku=spellings[n % 3]) for n in range(10)]
        results = await asyncio.gather(
            *(bus.execute(c) for bus, c in zip([messaging.bus, other.bus] * 5, commands, strict=True)),
            return_exceptions=True,
        )
        assert len(failures(results)) == 9
        assert all(isinstance(f, SkuTaken) for f in failures(results)), failures(results)
        winners = [c.product_id for c, r in zip(commands, results, strict=True) if isinstance(r, Outcome)]
        stored = await pool.fetch("SELECT id FROM catalogue.products WHERE sku_key = $1", sku.upper())
        assert [s["id"] for s in stored] == winners
        written = await pool.fetchval(
            "SELECT count(*) FROM catalogue.outbox WHERE aggregate_id = ANY($1)",
            [c.product_id for c in commands],
        )
        assert written == 1

    async def test_concurrent_variants_with_one_sku_on_different_products_let_exactly_one_through(
        self, messaging, other, pool
    ):
        products = [await created(messaging, new_product()) for _ in range(6)]
        sku = fresh_sku("Race")
        commands = [new_variant(p, variant_sku=[sku, sku.lower()][n % 2]) for n, p in enumerate(products)]
        results = await asyncio.gather(
            *(bus.execute(c) for bus, c in zip([messaging.bus, other.bus] * 3, commands, strict=True)),
            return_exceptions=True,
        )
        assert len(failures(results)) == 5
        assert all(isinstance(f, VariantSkuTaken) for f in failures(results)), failures(results)
        (winner,) = [c.product_id for c, r in zip(commands, results, strict=True) if isinstance(r, Outcome)]
        owners = await pool.fetch(
            "SELECT product_id FROM catalogue.variant_skus WHERE variant_sku_key = $1", sku.upper()
        )
        assert [o["product_id"] for o in owners] == [winner]
        versions = {p: await stored_version(pool, "products", p) for p in products}
        assert versions == {p: 2 if p == winner else 1 for p in products}


class TestCategoryReferences:
    async def test_a_product_is_filed_in_an_active_category_without_changing_it(self, messaging, pool):
        category_id = await created(messaging, new_category())
        command = new_product(category_id=category_id)
        await messaging.bus.execute(command)
        filed = await pool.fetchval(
            "SELECT state->>'category_id' FROM catalogue.products WHERE id = $1", command.product_id
        )
        assert filed == category_id
        assert await stored_version(pool, "categories", category_id) == 1
        assert len(await outbox_rows(pool, category_id)) == 1

    @pytest.mark.parametrize("reference", ["unknown", "malformed"])
    async def test_a_product_in_a_missing_category_is_invalid(self, messaging, pool, reference):
        category_id = str(uuid.uuid4()) if reference == "unknown" else "not-a-category"
        command = new_product(category_id=category_id)
        with pytest.raises(Invalid) as raised:
            await messaging.bus.execute(command)
        assert raised.value.status == 422
        assert [e["field"] for e in raised.value.errors] == ["category_id"]
        assert await stored_version(pool, "products", command.product_id) is None

    async def test_a_child_of_a_missing_parent_is_invalid(self, messaging, pool):
        command = new_category(parent_category_id=str(uuid.uuid4()))
        with pytest.raises(Invalid) as raised:
            await messaging.bus.execute(command)
        assert [e["field"] for e in raised.value.errors] == ["parent_category_id"]
        assert await stored_version(pool, "categories", command.category_id) is None

    async def test_nothing_is_filed_in_an_inactive_category(self, messaging, pool):
        category_id = await created(messaging, new_category())
        await messaging.bus.execute(DeactivateCategory(category_id=category_id))
        product, child = new_product(category_id=category_id), new_category(parent_category_id=category_id)
        with pytest.raises(CategoryInactive) as product_refused:
            await messaging.bus.execute(product)
        with pytest.raises(CategoryInactive) as child_refused:
            await messaging.bus.execute(child)
        assert product_refused.value.status == child_refused.value.status == 409
        assert await stored_version(pool, "products", product.product_id) is None
        assert await stored_version(pool, "categories", child.category_id) is None

    async def test_deactivating_an_inactive_category_is_a_conflict(self, messaging, pool):
        category_id = await created(messaging, new_category())
        await messaging.bus.execute(DeactivateCategory(category_id=category_id))
        with pytest.raises(CategoryAlreadyInactive):
            await messaging.bus.execute(DeactivateCategory(category_id=category_id))
        assert await stored_version(pool, "categories", category_id) == 2

    async def test_categories_nest_at_most_four_levels_below_a_root(self, messaging, pool):
        parent = None
        for level in range(5):
            command = new_category(name=f"Level {level}", parent_category_id=parent)
            await messaging.bus.execute(command)
            stored = await pool.fetchval(
                "SELECT (state->>'level')::int FROM catalogue.categories WHERE id = $1", command.category_id
            )
            assert stored == level
            parent = command.category_id
        too_deep = new_category(name="Level 5", parent_category_id=parent)
        with pytest.raises(CategoryTooDeep) as raised:
            await messaging.bus.execute(too_deep)
        assert raised.value.status == 409
        assert await stored_version(pool, "categories", too_deep.category_id) is None
        assert await messaging.bus.execute(
            new_product(category_id=parent)
        )  # the deepest level holds products


class Interleaved:
    """Repositories whose first `referenced` read is followed by a deactivation of that category from
    another process, before the command commits: the reader's commit must then fail and re-run."""

    def __init__(self, deactivate: Callable[[str], Any]) -> None:
        self.reads = 0
        outer = self

        class Racing(Categories):
            async def referenced(self, field: str, category_id: str | None) -> Category | None:
                category = await super().referenced(field, category_id)
                outer.reads += 1
                if outer.reads == 1 and category_id is not None:
                    await deactivate(category_id)
                return category

        self.repository = Racing


def stagger(rounds: int) -> list[float]:
    """Every other round the filing gets a head start of about one command's time, so that rounds end
    both ways: refused after the deactivation, or filed before it."""
    return [0.001 * (n % 2) for n in range(rounds)]


async def later(delay: float, work: Awaitable[Any]) -> Any:
    await asyncio.sleep(delay)
    return await work


async def waiting_for_a_lock(pool: asyncpg.Pool, backend_pid: int) -> None:
    for _ in range(200):
        waiting = await pool.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", backend_pid
        )
        if waiting == "Lock":
            return
        await asyncio.sleep(0.01)
    pytest.fail("the first unit of work never waited for the second one's lock")


class TestDeactivationRace:
    """Deactivating a category and filing something in it never both succeed unless the filing came first."""

    def uow(self, messaging: Messaging, pool: asyncpg.Pool) -> UnitOfWork:
        return UnitOfWork(pool, messaging.outboxes["catalogue"], Meta(correlation_id="t"))

    async def product_reading(self, uow: UnitOfWork, category_id: str) -> Product:
        category = await Categories(uow).referenced("category_id", category_id)
        product = Product.create(
            str(uuid.uuid4()), sku=fresh_sku(), title="Tee", category=category, now=now()
        )
        Products(uow).add(product)
        return product

    async def test_a_create_that_read_the_category_before_it_was_deactivated_cannot_commit(
        self, messaging, pool
    ):
        category_id = await created(messaging, new_category())
        a = self.uow(messaging, pool)
        async with a:
            product = await self.product_reading(a, category_id)
            await deactivate_category(DeactivateCategory(category_id=category_id), self.uow(messaging, pool))
            with pytest.raises(ConcurrencyError):
                await a.commit(created_id=product.id)
        assert await stored_version(pool, "products", product.id) is None
        assert await outbox_rows(pool, product.id) == []
        assert await stored_version(pool, "categories", category_id) == 2

    async def test_a_create_waits_for_an_uncommitted_deactivation_and_then_fails(self, messaging, pool):
        category_id = await created(messaging, new_category())
        a, b = self.uow(messaging, pool), self.uow(messaging, pool)
        async with a:
            product = await self.product_reading(a, category_id)
            async with b:
                category = await Categories(b).get(category_id)
                category.deactivate(now=now())
                async with b.conn.transaction():  # the deactivation, saved and not yet committed
                    await Categories(b).save(b.conn, category)
                    pending = asyncio.ensure_future(a.commit(created_id=product.id))
                    await waiting_for_a_lock(pool, a.conn.get_server_pid())
                    assert not pending.done()
            with pytest.raises(ConcurrencyError):
                await pending
        assert await stored_version(pool, "products", product.id) is None
        assert await outbox_rows(pool, product.id) == []

    async def test_a_create_that_committed_first_precedes_the_deactivation(self, messaging, pool):
        category_id = await created(messaging, new_category())
        a, b = self.uow(messaging, pool), self.uow(messaging, pool)
        async with b:
            category = await Categories(b).get(category_id)
            async with a:
                product = await self.product_reading(a, category_id)
                await a.commit(created_id=product.id)
            category.deactivate(now=now())
            await b.commit()
        created_at = await position_of(pool, product.id, "catalogue.ProductCreated")
        deactivated_at = await position_of(pool, category_id, "catalogue.CategoryDeactivated")
        assert created_at < deactivated_at

    async def test_the_bus_reruns_a_create_that_lost_the_race_and_refuses_it(
        self, messaging, other, pool, monkeypatch
    ):
        category_id = await created(messaging, new_category())
        racing = Interleaved(lambda c: other.bus.execute(DeactivateCategory(category_id=c)))
        monkeypatch.setattr(listing, "Categories", racing.repository)
        command = new_product(category_id=category_id)
        with pytest.raises(CategoryInactive):
            await messaging.bus.execute(command)
        assert racing.reads == 2
        assert await stored_version(pool, "products", command.product_id) is None
        assert await outbox_rows(pool, command.product_id) == []

    async def test_the_bus_reruns_a_child_that_lost_the_race_and_refuses_it(
        self, messaging, other, pool, monkeypatch
    ):
        parent_id = await created(messaging, new_category())
        racing = Interleaved(lambda c: other.bus.execute(DeactivateCategory(category_id=c)))
        monkeypatch.setattr(categories, "Categories", racing.repository)
        command = new_category(parent_category_id=parent_id)
        with pytest.raises(CategoryInactive):
            await messaging.bus.execute(command)
        assert racing.reads == 2
        assert await stored_version(pool, "categories", command.category_id) is None

    @pytest.mark.parametrize("filing", ["product", "child"])
    async def test_concurrent_deactivation_and_filing_never_both_win_out_of_order(
        self, messaging, other, pool, filing
    ):
        for delay in stagger(RACE_ROUNDS):
            category_id = await created(messaging, new_category())
            if filing == "product":
                command: Command = new_product(category_id=category_id)
            else:
                command = new_category(parent_category_id=category_id)
            deactivated, filed = await asyncio.gather(
                later(delay, messaging.bus.execute(DeactivateCategory(category_id=category_id))),
                other.bus.execute(command),
                return_exceptions=True,
            )
            assert isinstance(deactivated, Outcome), deactivated
            if isinstance(filed, BaseException):
                assert isinstance(filed, Conflict), filed
                assert await outbox_rows(pool, command.aggregate_id) == []
                continue
            event = "catalogue.ProductCreated" if filing == "product" else "catalogue.CategoryCreated"
            filed_at = await position_of(pool, command.aggregate_id, event)
            deactivated_at = await position_of(pool, category_id, "catalogue.CategoryDeactivated")
            assert filed_at < deactivated_at
        assert await self.filed_after_deactivation(pool) == []

    async def test_the_bus_reruns_a_move_that_lost_the_race_and_refuses_it(
        self, messaging, other, pool, monkeypatch
    ):
        product_id = await created(messaging, new_product())
        category_id = await created(messaging, new_category())
        racing = Interleaved(lambda c: other.bus.execute(DeactivateCategory(category_id=c)))
        monkeypatch.setattr(filing, "Categories", racing.repository)
        with pytest.raises(CategoryInactive):
            await messaging.bus.execute(ChangeProductCategory(product_id=product_id, category_id=category_id))
        assert racing.reads == 2
        assert await stored_version(pool, "products", product_id) == 1
        assert len(await outbox_rows(pool, product_id)) == 1

    async def test_a_move_that_read_the_category_before_it_was_deactivated_cannot_commit(
        self, messaging, pool
    ):
        product_id = await created(messaging, new_product())
        category_id = await created(messaging, new_category())
        a = self.uow(messaging, pool)
        async with a:
            product = await Products(a).get(product_id)
            product.file_under(await Categories(a).referenced("category_id", category_id), now=now())
            await deactivate_category(DeactivateCategory(category_id=category_id), self.uow(messaging, pool))
            with pytest.raises(ConcurrencyError):
                await a.commit()
        assert await stored_version(pool, "products", product_id) == 1

    async def test_concurrent_deactivation_and_moves_never_both_win_out_of_order(
        self, messaging, other, pool
    ):
        for delay in stagger(RACE_ROUNDS):
            product_id = await created(messaging, new_product())
            category_id = await created(messaging, new_category())
            deactivated, moved = await asyncio.gather(
                later(delay, messaging.bus.execute(DeactivateCategory(category_id=category_id))),
                other.bus.execute(ChangeProductCategory(product_id=product_id, category_id=category_id)),
                return_exceptions=True,
            )
            assert isinstance(deactivated, Outcome), deactivated
            if isinstance(moved, BaseException):
                assert isinstance(moved, CategoryInactive), moved
                assert len(await outbox_rows(pool, product_id)) == 1
                continue
            moved_at = await position_of(pool, product_id, "catalogue.ProductCategoryChanged")
            deactivated_at = await position_of(pool, category_id, "catalogue.CategoryDeactivated")
            assert moved_at < deactivated_at

    async def filed_after_deactivation(self, pool: asyncpg.Pool) -> list[str]:
        rows = await pool.fetch(
            "SELECT filed.aggregate_id FROM catalogue.outbox filed JOIN catalogue.outbox deactivated"
            " ON deactivated.type = 'catalogue.CategoryDeactivated'"
            " AND deactivated.aggregate_id = COALESCE(filed.payload->>'category_id',"
            " filed.payload->>'parent_category_id')"
            " WHERE filed.type IN ('catalogue.ProductCreated', 'catalogue.CategoryCreated')"
            " AND filed.position > deactivated.position"
        )
        return [r["aggregate_id"] for r in rows]


def every_command(product_id: str, variant_id: str, image_id: str) -> list[Command]:
    return [
        UpdateProductDetails(product_id=product_id, title="Renamed", expected_version=1),
        new_variant(product_id, expected_version=1),
        ChangeVariantPrice(product_id=product_id, variant_id=variant_id, base_price=Decimal("9"), expected_version=1),
        SetTierPrice(product_id=product_id, variant_id=variant_id, tier="Gold", price=Decimal("1"), expected_version=1),
        AddProductImage(product_id=product_id, image_id=str(uuid.uuid4()), url="https://x.example/a.png",
                        expected_version=1),
        RemoveProductImage(product_id=product_id, image_id=image_id, expected_version=1),
        ActivateProduct(product_id=product_id, expected_version=1),
        DiscontinueProduct(product_id=product_id, expected_version=1),
        ArchiveProduct(product_id=product_id, expected_version=1),
        ChangeProductCategory(product_id=product_id, category_id=str(uuid.uuid4()), expected_version=1),
        ChangeProductVisibility(product_id=product_id, visibility="Unlisted", expected_version=1),
        UpdateVariant(product_id=product_id, variant_id=variant_id, length=Decimal("3"), expected_version=1),
        DeactivateVariant(product_id=product_id, variant_id=variant_id, expected_version=1),
        ActivateVariant(product_id=product_id, variant_id=variant_id, expected_version=1),
        SetPrimaryImage(product_id=product_id, image_id=image_id, expected_version=1),
        ReorderProductImages(product_id=product_id, image_ids=[image_id], expected_version=1),
    ]  # fmt: skip


EVERY_COMMAND = range(len(every_command("p", "v", "i")))


class TestVersionChecks:
    async def seeded(self, messaging: Messaging) -> tuple[str, str, str]:
        product_id = await created(messaging, new_product())
        variant_id = await created(messaging, new_variant(product_id))
        image_id = await created(
            messaging,
            AddProductImage(product_id=product_id, image_id=str(uuid.uuid4()), url="https://x.example/p.png"),
        )
        return product_id, variant_id, image_id

    @pytest.mark.parametrize("index", EVERY_COMMAND)
    async def test_a_stale_expected_version_on_a_product_is_a_mismatch_and_writes_nothing(
        self, messaging, pool, index
    ):
        product_id, variant_id, image_id = await self.seeded(messaging)
        with pytest.raises(VersionMismatch) as raised:
            await messaging.bus.execute(every_command(product_id, variant_id, image_id)[index])
        assert (raised.value.expected, raised.value.actual, raised.value.status) == (1, 3, 412)
        assert await stored_version(pool, "products", product_id) == 3
        assert len(await outbox_rows(pool, product_id)) == 3

    @pytest.mark.parametrize(
        "command",
        [
            lambda c: UpdateCategory(category_id=c, name="Renamed", expected_version=1),
            lambda c: ReorderCategory(category_id=c, new_display_order=5, expected_version=1),
            lambda c: DeactivateCategory(category_id=c, expected_version=1),
        ],
        ids=["update", "reorder", "deactivate"],
    )
    async def test_a_stale_expected_version_on_a_category_is_a_mismatch_and_writes_nothing(
        self, messaging, pool, command
    ):
        category_id = await created(messaging, new_category())
        await messaging.bus.execute(UpdateCategory(category_id=category_id, name="Apparel"))
        with pytest.raises(VersionMismatch):
            await messaging.bus.execute(command(category_id))
        assert await stored_version(pool, "categories", category_id) == 2
        assert len(await outbox_rows(pool, category_id)) == 2

    async def test_a_matching_expected_version_applies(self, messaging, pool):
        product_id, _, _ = await self.seeded(messaging)
        outcome = await messaging.bus.execute(
            UpdateProductDetails(product_id=product_id, title="Renamed", expected_version=3)
        )
        assert outcome == Outcome(aggregate_id=product_id, version=4)

    @pytest.mark.parametrize("index", EVERY_COMMAND)
    async def test_a_command_on_an_unknown_product_is_not_found(self, messaging, pool, index):
        product_id = str(uuid.uuid4())
        with pytest.raises(NotFound):
            await messaging.bus.execute(
                every_command(product_id, str(uuid.uuid4()), str(uuid.uuid4()))[index]
            )
        assert await outbox_rows(pool, product_id) == []
