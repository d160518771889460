"""Catalogue projections and queries on real PostgreSQL: events in, views out.

The module gets a database of its own, migrated for the bus and the catalogue; each event is applied to
every projection in its own transaction, as a consumer would, after a round trip through the wire format.
Tests work on fresh ids, so they share the database without seeing each other's rows.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import pytest

from bus.errors import Invalid
from bus.messages import Envelope
from contexts.catalogue import events as e
from contexts.catalogue.projections import PROJECTIONS
from contexts.catalogue.queries import (
    get_category,
    get_category_tree,
    get_price_history,
    get_product,
)
from contexts.catalogue.search import list_product_cards
from contexts.catalogue.viewer import ADMIN, ANONYMOUS
from tests.projections import T0, Aggregate, migrated_for, moment
from tests.projections import apply as apply_to

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def database_url(create_database) -> str:
    return await migrated_for(create_database, "catalogue")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


def aggregate(aggregate_type: str) -> Aggregate:
    return Aggregate(aggregate_type, "catalogue")


async def apply(pool: asyncpg.Pool, *envelopes: Envelope) -> None:
    await apply_to(pool, PROJECTIONS, *envelopes)


def created(product: Aggregate, **overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "product_id": product.id,
        "sku": f"SKU-{product.id[:8]}",
        "seller_id": None,
        "title": "Organic cotton tee",
        "description": "Heavyweight.",
        "category_id": None,
        "brand": "Northwind",
        "attributes": {"material": "cotton"},
        "visibility": "Public",
        "meta_title": "Tee",
        "meta_description": "A tee.",
        "slug": "organic-cotton-tee",
        "status": "Draft",
        "created_at": moment(),
    }
    fields.update(overrides)
    return product(e.ProductCreated(**fields), at=fields["created_at"])


def variant(product: Aggregate, price: str, **overrides: Any) -> tuple[str, Envelope]:
    fields: dict[str, Any] = {
        "product_id": product.id,
        "variant_id": str(uuid.uuid4()),
        "variant_sku": f"V-{uuid.uuid4().hex[:10]}",
        "attributes": {"size": "M"},
        "base_price": Decimal(price),
        "currency": "EUR",
        "tier_prices": {},
        "weight_value": None,
        "weight_unit": "kg",
        "length": None,
        "width": None,
        "height": None,
        "dimension_unit": "cm",
        "is_active": True,
    }
    fields.update(overrides)
    return fields["variant_id"], product(e.VariantAdded(**fields))


def price_changed(product: Aggregate, variant_id: str, previous: str, new: str) -> Envelope:
    return product(
        e.VariantPriceChanged(
            product_id=product.id, variant_id=variant_id, previous_price=Decimal(previous),
            new_price=Decimal(new), previous_currency="EUR", currency="EUR",
        )
    )  # fmt: skip


def image(product: Aggregate, url: str, *, primary: bool, order: int, previous: str | None = None):
    image_id = str(uuid.uuid4())
    return image_id, product(
        e.ProductImageAdded(
            product_id=product.id, image_id=image_id, url=url, alt_text=None, is_primary=primary,
            display_order=order, previous_primary_id=previous,
        )
    )  # fmt: skip


def category(cat: Aggregate, name: str, parent: Aggregate | None = None, level: int = 0, order: int = 0):
    return cat(
        e.CategoryCreated(
            category_id=cat.id, name=name, parent_category_id=parent.id if parent else None, level=level,
            attributes={}, is_active=True, display_order=order, created_at=moment(),
        )
    )  # fmt: skip


def renamed(cat: Aggregate, name: str) -> Envelope:
    return cat(e.CategoryDetailsUpdated(category_id=cat.id, name=name, attributes={"renamed": True}))


def test_projections_keep_only_their_own_tables() -> None:
    tables = [table for projection in PROJECTIONS for table in projection.tables]
    assert len(tables) == len(set(tables))
    assert all(table.startswith("catalogue.") for table in tables)
    assert len({projection.name for projection in PROJECTIONS}) == len(PROJECTIONS)


class TestProductDetail:
    async def test_a_currency_change_writes_the_kept_tier_prices_with_the_new_minor_digits(
        self, db: asyncpg.Pool
    ) -> None:
        p = aggregate("Product")
        only, added = variant(p, "100.00", tier_prices={"Gold": Decimal("80.00")})
        changed = p(
            e.VariantPriceChanged(
                product_id=p.id, variant_id=only, previous_price=Decimal("100.00"), new_price=Decimal("15000"),
                previous_currency="EUR", currency="JPY",
            )
        )  # fmt: skip
        await apply(db, created(p), added, changed)
        detail = await get_product(db, p.id, viewer=ADMIN)
        assert detail is not None
        wire = msgspec.json.decode(msgspec.json.encode(detail.variants[0]))
        assert (wire["base_price"], wire["currency"], wire["tier_prices"]) == ("15000", "JPY", {"Gold": "80"})

    async def test_detail_holds_every_field_variants_in_order_added_and_images_by_display_order(
        self, db: asyncpg.Pool
    ) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        product_created = created(p, seller_id=seller, category_id="cat-1")
        first, added_first = variant(
            p, "24.99", tier_prices={"Silver": Decimal("22.50"), "Gold": Decimal("21.00")},
            weight_value=Decimal("0.250"), length=Decimal("30"), width=Decimal("20.5"), height=Decimal("2"),
        )  # fmt: skip
        second, added_second = variant(p, "29.99", attributes={"size": "L"}, weight_unit="g")
        back, added_back = image(p, "https://img.example.com/back.jpg", primary=True, order=1)
        front, added_front = image(
            p, "https://img.example.com/front.jpg", primary=True, order=0, previous=back
        )
        await apply(
            db,
            product_created,
            added_first,
            added_second,
            p(e.TierPriceSet(product_id=p.id, variant_id=first, tier="Platinum", price=Decimal("19.99"), currency="EUR")),
            p(e.TierPriceSet(product_id=p.id, variant_id=first, tier="Silver", price=Decimal("23.00"), currency="EUR")),
            price_changed(p, first, "24.99", "25.00"),
            added_back,
            added_front,
            p(e.ProductDetailsUpdated(
                product_id=p.id, title="Tee, organic", description=None, brand="Southwind",
                attributes={"material": "cotton", "gsm": 220}, meta_title=None, meta_description="New.",
                slug="tee-organic",
            )),
            p(e.ProductActivated(product_id=p.id)),
        )  # fmt: skip

        detail = await get_product(db, p.id, viewer=ADMIN)

        assert detail is not None
        assert (detail.sku, detail.seller_id, detail.category_id, detail.visibility) == (
            f"SKU-{p.id[:8]}", seller, "cat-1", "Public",
        )  # fmt: skip
        assert (detail.title, detail.description, detail.brand, detail.slug) == (
            "Tee, organic", None, "Southwind", "tee-organic",
        )  # fmt: skip
        assert (detail.meta_title, detail.meta_description) == (None, "New.")
        assert detail.attributes == {"material": "cotton", "gsm": 220}
        assert detail.status == "Active"
        assert (detail.created_at, detail.updated_at) == (product_created.occurred_at, p.last_at)
        assert detail.version == p.version == 10
        assert [v.variant_id for v in detail.variants] == [first, second]
        one, two = detail.variants
        assert one.base_price == Decimal("25.00")
        assert one.tier_prices == {
            "Silver": Decimal("23.00"),
            "Gold": Decimal("21.00"),
            "Platinum": Decimal("19.99"),
        }
        assert (one.weight_value, one.length, one.width, one.height) == (
            Decimal("0.250"), Decimal("30"), Decimal("20.5"), Decimal("2"),
        )  # fmt: skip
        assert (two.attributes, two.tier_prices, two.weight_value, two.weight_unit) == (
            {"size": "L"},
            {},
            None,
            "g",
        )
        assert [(i.image_id, i.is_primary, i.display_order) for i in detail.images] == [
            (front, True, 0), (back, False, 1),
        ]  # fmt: skip
        wire = msgspec.json.decode(msgspec.json.encode(detail))
        assert wire["variants"][0]["base_price"] == "25.00"
        assert wire["variants"][0]["tier_prices"]["Platinum"] == "19.99"

    async def test_removing_the_primary_image_hands_the_flag_on(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        await apply(db, created(p))
        first, added_first = image(p, "https://img.example.com/1.jpg", primary=True, order=0)
        second, added_second = image(p, "https://img.example.com/2.jpg", primary=False, order=1)
        await apply(db, added_first, added_second)
        await apply(db, p(e.ProductImageRemoved(product_id=p.id, image_id=first, new_primary_id=second)))

        detail = await get_product(db, p.id, viewer=ADMIN)

        assert detail is not None
        assert [(i.image_id, i.is_primary) for i in detail.images] == [(second, True)]

    async def test_an_unknown_product_or_an_id_postgres_cannot_hold_reads_as_none(
        self, db: asyncpg.Pool
    ) -> None:
        assert await get_product(db, str(uuid.uuid4()), viewer=ADMIN) is None
        assert await get_product(db, "nul\x00id", viewer=ADMIN) is None


class TestProductCards:
    async def test_price_range_stays_exact_after_a_cut_a_raise_and_an_addition(
        self, db: asyncpg.Pool
    ) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        await apply(db, created(p, seller_id=seller))
        cheap, added_cheap = variant(p, "10.10")
        dear, added_dear = variant(p, "20.20")
        await apply(db, added_cheap, added_dear)

        async def price_range() -> tuple[Decimal | None, Decimal | None, int, int]:
            (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
            return card.min_price, card.max_price, card.variant_count, card.version

        assert await price_range() == (Decimal("10.10"), Decimal("20.20"), 2, 3)
        await apply(db, price_changed(p, dear, "20.20", "5.05"))  # a cut below the cheapest
        assert await price_range() == (Decimal("5.05"), Decimal("10.10"), 2, 4)
        await apply(db, price_changed(p, cheap, "10.10", "30.30"))  # a raise above the dearest
        assert await price_range() == (Decimal("5.05"), Decimal("30.30"), 2, 5)
        _, added = variant(p, "0.01")
        await apply(db, added)
        assert await price_range() == (Decimal("0.01"), Decimal("30.30"), 3, 6)
        _, inactive = variant(p, "99.99", is_active=False)
        await apply(db, inactive)
        assert await price_range() == (Decimal("0.01"), Decimal("30.30"), 3, 7)

    async def test_primary_image_follows_additions_and_removals(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())

        async def primary() -> str | None:
            (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
            return card.primary_image_url

        await apply(db, created(p, seller_id=seller))
        assert await primary() is None
        one, added_one = image(p, "https://img.example.com/1.jpg", primary=True, order=0)
        await apply(db, added_one)
        assert await primary() == "https://img.example.com/1.jpg"
        two, added_two = image(p, "https://img.example.com/2.jpg", primary=False, order=1)
        await apply(db, added_two)
        assert await primary() == "https://img.example.com/1.jpg"
        three, added_three = image(p, "https://img.example.com/3.jpg", primary=True, order=2, previous=one)
        await apply(db, added_three)
        assert await primary() == "https://img.example.com/3.jpg"
        await apply(db, p(e.ProductImageRemoved(product_id=p.id, image_id=one)))
        assert await primary() == "https://img.example.com/3.jpg"
        await apply(db, p(e.ProductImageRemoved(product_id=p.id, image_id=three, new_primary_id=two)))
        assert await primary() == "https://img.example.com/2.jpg"
        await apply(db, p(e.ProductImageRemoved(product_id=p.id, image_id=two)))
        assert await primary() is None

    async def test_card_follows_details_status_and_version(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        at = moment()
        await apply(
            db,
            created(p, seller_id=seller, category_id="c-9", created_at=at),
            p(e.ProductDetailsUpdated(
                product_id=p.id, title="Renamed", description=None, brand=None, attributes={},
                meta_title=None, meta_description=None, slug=None,
            )),
            variant(p, "12.00", currency="JPY")[1],
            p(e.ProductActivated(product_id=p.id)),
            p(e.ProductDiscontinued(product_id=p.id)),
        )  # fmt: skip

        (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items

        assert (card.title, card.brand, card.category_id, card.seller_id) == ("Renamed", None, "c-9", seller)
        assert (card.status, card.currency, card.created_at, card.version) == ("Discontinued", "JPY", at, 5)

    async def test_filters_by_category_seller_and_status(self, db: asyncpg.Pool) -> None:
        seller, other_seller = str(uuid.uuid4()), str(uuid.uuid4())
        shirts, shoes = str(uuid.uuid4()), str(uuid.uuid4())
        a, b, c = aggregate("Product"), aggregate("Product"), aggregate("Product")
        await apply(
            db,
            created(a, seller_id=seller, category_id=shirts),
            created(b, seller_id=seller, category_id=shoes),
            created(c, seller_id=other_seller, category_id=shirts),
            variant(b, "1.00")[1],
            b(e.ProductActivated(product_id=b.id)),
        )

        async def ids(**filters: Any) -> list[str]:
            return [card.product_id for card in (await list_product_cards(db, **filters, viewer=ADMIN)).items]

        assert await ids(seller_id=seller) == [b.id, a.id]
        assert await ids(category_id=shirts) == [c.id, a.id]
        assert await ids(seller_id=seller, status="Active") == [b.id]
        assert await ids(seller_id=seller, status="Draft") == [a.id]
        assert await ids(seller_id=other_seller, category_id=shoes) == []
        assert await ids(seller_id="nul\x00seller") == []
        assert await ids(status="Dr\x00aft") == []

    async def test_pages_hold_every_card_exactly_once_while_products_are_added(
        self, db: asyncpg.Pool
    ) -> None:
        seller = str(uuid.uuid4())
        same_moment = moment()
        products = [aggregate("Product") for _ in range(23)]
        await apply(
            db,
            *(
                # the first nine share one created_at: product_id breaks the tie
                created(p, seller_id=seller, created_at=same_moment if n < 9 else moment())
                for n, p in enumerate(products)
            ),
        )
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await list_product_cards(db, seller_id=seller, limit=5, cursor=cursor, viewer=ADMIN)
            seen += [card.product_id for card in page.items]
            pages += 1
            # newer products, one older one, and one at the shared moment, between page reads
            late = [aggregate("Product") for _ in range(3)]
            await apply(
                db,
                created(late[0], seller_id=seller),
                created(late[1], seller_id=seller, created_at=same_moment),
                created(late[2], seller_id=seller, created_at=T0 - timedelta(days=pages)),
            )
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

        assert len(seen) == len(set(seen))
        assert {p.id for p in products} <= set(seen)
        everything = await list_product_cards(db, seller_id=seller, limit=100, viewer=ADMIN)
        keys = [(card.created_at, card.product_id) for card in everything.items]
        assert keys == sorted(keys, reverse=True)

    async def test_the_last_page_has_no_cursor_and_limits_are_clamped(self, db: asyncpg.Pool) -> None:
        seller = str(uuid.uuid4())
        await apply(db, *(created(aggregate("Product"), seller_id=seller) for _ in range(3)))

        assert len((await list_product_cards(db, seller_id=seller, limit=0, viewer=ADMIN)).items) == 1
        full = await list_product_cards(db, seller_id=seller, limit=3, viewer=ADMIN)
        assert (len(full.items), full.next_cursor) == (3, None)
        assert len((await list_product_cards(db, seller_id=seller, limit=10_000, viewer=ADMIN)).items) == 3

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "not a cursor!",
            "eyJ0Ij",
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
            base64.urlsafe_b64encode(b"[1, 2]").decode(),
            base64.urlsafe_b64encode(b'{"t": "2026-03-01T09:00:00", "id": "x"}').decode(),
            base64.urlsafe_b64encode(b'{"t": "2026-03-01T09:00:00Z", "id": "x\\u0000"}').decode(),
            base64.urlsafe_b64encode(b'{"t": "2026-03-01T09:00:00Z", "id": "x", "more": 1}').decode(),
            "\x00",
            "é",
        ],
    )
    async def test_a_cursor_this_service_did_not_issue_is_invalid(
        self, db: asyncpg.Pool, cursor: str
    ) -> None:
        with pytest.raises(Invalid) as refused:
            await list_product_cards(db, cursor=cursor, viewer=ADMIN)
        assert refused.value.field == "cursor"


class TestPriceHistory:
    async def test_changes_come_newest_first_with_the_product_version(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        await apply(db, created(p))
        first, added_first = variant(p, "10.00")
        second, added_second = variant(p, "20.00")
        await apply(db, added_first, added_second)
        cut = price_changed(p, first, "10.00", "9.99")
        raise_ = price_changed(p, second, "20.00", "21.50")
        again = price_changed(p, first, "9.99", "8.75")
        await apply(db, cut, raise_, again, p(e.ProductActivated(product_id=p.id)))

        history = await get_price_history(db, p.id, viewer=ADMIN)

        assert history is not None
        assert history.version == 7
        assert [
            (c.variant_id, c.previous_price, c.new_price, c.currency, c.changed_at) for c in history.items
        ] == [
            (first, Decimal("9.99"), Decimal("8.75"), "EUR", again.occurred_at),
            (second, Decimal("20.00"), Decimal("21.50"), "EUR", raise_.occurred_at),
            (first, Decimal("10.00"), Decimal("9.99"), "EUR", cut.occurred_at),
        ]
        assert msgspec.json.decode(msgspec.json.encode(history))["items"][0]["new_price"] == "8.75"

    async def test_a_known_product_without_changes_has_an_empty_history(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        await apply(db, created(p), variant(p, "1.00")[1])

        history = await get_price_history(db, p.id, viewer=ADMIN)

        assert history is not None
        assert (history.items, history.version) == ([], 2)
        assert await get_price_history(db, str(uuid.uuid4()), viewer=ADMIN) is None
        assert await get_price_history(db, "\x00", viewer=ADMIN) is None


class TestCategories:
    async def test_renaming_a_root_renames_the_breadcrumb_of_a_level_3_category(
        self, db: asyncpg.Pool
    ) -> None:
        chain = [aggregate("Category") for _ in range(4)]
        names = ["Home", "Kitchen", "Knives", "Chef knives"]
        await apply(
            db,
            *(
                category(cat, name, chain[level - 1] if level else None, level)
                for level, (cat, name) in enumerate(zip(chain, names, strict=True))
            ),
        )
        await apply(db, renamed(chain[0], "House"))

        leaf = await get_category(db, chain[3].id, viewer=ADMIN)
        root = await get_category(db, chain[0].id, viewer=ADMIN)

        assert leaf is not None and root is not None
        assert leaf.breadcrumb == ["House", "Kitchen", "Knives", "Chef knives"]
        assert (leaf.level, leaf.parent_category_id, leaf.version) == (3, chain[2].id, 1)
        assert (root.name, root.breadcrumb, root.version) == ("House", ["House"], 2)

    async def test_breadcrumbs_and_counts_hold_whatever_order_aggregates_arrive_in(
        self, db: asyncpg.Pool
    ) -> None:
        rng = random.Random(20260301)
        for run in range(80):
            root, child, leaf = aggregate("Category"), aggregate("Category"), aggregate("Category")
            p1, p2, p3, p4 = (aggregate("Product") for _ in range(4))
            streams = [
                [category(root, "Home"), renamed(root, "House")],
                [category(child, "Kitchen", root, 1)],
                [
                    category(leaf, "Knives", child, 2),
                    leaf(e.CategoryReordered(category_id=leaf.id, previous_display_order=0, display_order=3)),
                ],
                [created(p1, category_id=leaf.id)],
                [
                    created(p2, category_id=child.id),
                    variant(p2, "5.00")[1],
                    p2(e.ProductActivated(product_id=p2.id)),
                ],
                [created(p3, category_id=leaf.id), p3(e.ProductArchived(product_id=p3.id))],
                [created(p4)],
            ]
            if run == 0:  # products first, then every child before its parent
                order = [envelope for stream in [*streams[3:], *reversed(streams[:3])] for envelope in stream]
            else:
                order = interleave(rng, streams)
            await apply(db, *order)

            got = {cat.id: await get_category(db, cat.id, viewer=ADMIN) for cat in (root, child, leaf)}
            assert {
                cat_id: (node.breadcrumb, node.product_count) for cat_id, node in got.items() if node
            } == {
                root.id: (["House"], 0),
                child.id: (["House", "Kitchen"], 1),
                leaf.id: (["House", "Kitchen", "Knives"], 1),
            }, f"run {run}"
            assert (got[root.id].version, got[leaf.id].display_order) == (2, 3)  # type: ignore[union-attr]

    async def test_archived_products_leave_the_count(self, db: asyncpg.Pool) -> None:
        cat = aggregate("Category")
        products = [aggregate("Product") for _ in range(3)]
        await apply(db, category(cat, "Lamps"), *(created(p, category_id=cat.id) for p in products))
        counted = await get_category(db, cat.id, viewer=ADMIN)
        archived = products[0]
        await apply(
            db,
            archived(e.ProductDiscontinued(product_id=archived.id)),
            archived(e.ProductArchived(product_id=archived.id)),
            products[1](e.ProductDiscontinued(product_id=products[1].id)),
        )

        after = await get_category(db, cat.id, viewer=ADMIN)

        assert counted is not None and after is not None
        assert (counted.product_count, after.product_count) == (3, 2)
        assert after.version == 1  # product events are not the category's

    async def test_tree_orders_by_display_order_then_name_and_hides_inactive_subtrees(
        self, db: asyncpg.Pool
    ) -> None:
        root = aggregate("Category")
        pears, apples, figs, dates, grapes = (aggregate("Category") for _ in range(5))
        await apply(
            db,
            category(root, "Fruit"),
            category(pears, "Pears", root, 1, order=1),
            category(apples, "Apples", root, 1, order=1),
            category(figs, "Figs", root, 1, order=0),
            category(dates, "Dates", root, 1, order=2),
            category(grapes, "Grapes", dates, 2),
            dates(e.CategoryDeactivated(category_id=dates.id)),
            figs(e.CategoryReordered(category_id=figs.id, previous_display_order=0, display_order=5)),
        )

        def outline(nodes: list[Any]) -> list[Any]:
            return [(n.name, n.is_active, outline(n.children)) for n in nodes]

        def ours(tree: Any) -> list[Any]:
            return outline([n for n in tree.items if n.category_id == root.id])

        assert ours(await get_category_tree(db)) == [
            ("Fruit", True, [("Apples", True, []), ("Pears", True, []), ("Figs", True, [])])
        ]
        assert ours(await get_category_tree(db, include_inactive=True)) == [
            ("Fruit", True, [
                ("Apples", True, []), ("Pears", True, []), ("Dates", False, [("Grapes", True, [])]),
                ("Figs", True, []),
            ])
        ]  # fmt: skip
        await apply(db, root(e.CategoryDeactivated(category_id=root.id)))
        assert ours(await get_category_tree(db)) == []
        node = await get_category(db, dates.id, viewer=ADMIN)
        assert node is not None and (node.is_active, node.version) == (False, 2)

    async def test_a_category_whose_parent_has_not_arrived_waits_outside_the_tree(
        self, db: asyncpg.Pool
    ) -> None:
        root, child = aggregate("Category"), aggregate("Category")
        await apply(db, category(child, "Early", root, 1))

        tree = await get_category_tree(db, include_inactive=True)
        early = await get_category(db, child.id, viewer=ADMIN)

        assert all(n.category_id != child.id for n in tree.items)
        assert early is not None and early.breadcrumb == ["Early"]
        await apply(db, category(root, "Late"))
        (late,) = [n for n in (await get_category_tree(db)).items if n.category_id == root.id]
        assert [n.category_id for n in late.children] == [child.id]
        assert (await get_category(db, child.id, viewer=ADMIN)).breadcrumb == ["Late", "Early"]  # type: ignore[union-attr]

    async def test_an_unknown_category_reads_as_none(self, db: asyncpg.Pool) -> None:
        assert await get_category(db, str(uuid.uuid4()), viewer=ADMIN) is None
        assert await get_category(db, "\x00", viewer=ADMIN) is None


def interleave(rng: random.Random, streams: list[list[Envelope]]) -> list[Envelope]:
    """A random merge of the streams that keeps each stream's own order."""
    queues = [list(stream) for stream in streams if stream]
    merged: list[Envelope] = []
    while queues:
        (index,) = rng.choices(range(len(queues)), weights=[len(q) for q in queues])
        merged.append(queues[index].pop(0))
        if not queues[index]:
            del queues[index]
    return merged


class TestProductCorrections:
    async def test_a_move_follows_in_detail_cards_and_both_categories_counts(self, db: asyncpg.Pool) -> None:
        old, new, p = aggregate("Category"), aggregate("Category"), aggregate("Product")
        seller = str(uuid.uuid4())
        await apply(db, category(old, "Old"), category(new, "New"))
        await apply(db, created(p, seller_id=seller, category_id=old.id))

        async def filed() -> tuple[str | None, str | None, int, int]:
            detail = await get_product(db, p.id, viewer=ADMIN)
            (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
            counts = [await get_category(db, c.id, viewer=ADMIN) for c in (old, new)]
            assert detail is not None and counts[0] is not None and counts[1] is not None
            assert detail.version == card.version == p.version
            return detail.category_id, card.category_id, counts[0].product_count, counts[1].product_count

        assert await filed() == (old.id, old.id, 1, 0)
        await apply(
            db, p(e.ProductCategoryChanged(product_id=p.id, category_id=new.id, previous_category_id=old.id))
        )
        assert await filed() == (new.id, new.id, 0, 1)
        found = await list_product_cards(db, category_id=new.id, viewer=ADMIN)
        assert [c.product_id for c in found.items] == [p.id]
        await apply(
            db, p(e.ProductCategoryChanged(product_id=p.id, category_id=None, previous_category_id=new.id))
        )
        assert await filed() == (None, None, 0, 0)
        await apply(
            db, p(e.ProductCategoryChanged(product_id=p.id, category_id=old.id, previous_category_id=None))
        )
        assert await filed() == (old.id, old.id, 1, 0)

    async def test_a_product_created_in_no_category_counts_once_moved_with_what_callers_may_see(
        self, db: asyncpg.Pool
    ) -> None:
        cat, p = aggregate("Category"), aggregate("Product")
        await apply(db, category(cat, "Lamps"), created(p, seller_id=str(uuid.uuid4())))
        await apply(db, variant(p, "5.00")[1], p(e.ProductActivated(product_id=p.id)))
        await apply(
            db, p(e.ProductCategoryChanged(product_id=p.id, category_id=cat.id, previous_category_id=None))
        )
        node = await get_category(db, cat.id, viewer=ANONYMOUS)
        assert node is not None and node.product_count == 1
        await apply(
            db,
            p(
                e.ProductVisibilityChanged(
                    product_id=p.id, visibility="Unlisted", restricted_to_tier="Silver"
                )
            ),
        )
        node = await get_category(db, cat.id, viewer=ANONYMOUS)
        assert node is not None and node.product_count == 0

    async def test_visibility_follows_in_every_read_model_the_storefront_reads(
        self, db: asyncpg.Pool
    ) -> None:
        p = aggregate("Product")
        await apply(db, created(p, seller_id=str(uuid.uuid4())), variant(p, "5.00")[1])
        await apply(db, p(e.ProductActivated(product_id=p.id)))
        assert await get_product(db, p.id, viewer=ANONYMOUS) is not None
        assert await get_price_history(db, p.id, viewer=ANONYMOUS) is not None
        await apply(
            db,
            p(
                e.ProductVisibilityChanged(
                    product_id=p.id, visibility="Tier_Restricted", restricted_to_tier="Gold"
                )
            ),
        )
        detail = await get_product(db, p.id, viewer=ADMIN)
        assert detail is not None
        assert (detail.visibility, detail.restricted_to_tier, detail.version) == (
            "Tier_Restricted",
            "Gold",
            4,
        )
        assert await get_product(db, p.id, viewer=ANONYMOUS) is None
        assert await get_price_history(db, p.id, viewer=ANONYMOUS) is None
        assert p.id not in [
            c.product_id for c in (await list_product_cards(db, viewer=ANONYMOUS, limit=100)).items
        ]
        assert (
            await db.fetchval(
                "SELECT visibility || '/' || restricted_to_tier FROM catalogue.product_cards WHERE product_id = $1",
                p.id,
            )
            == "Tier_Restricted/Gold"
        )

    async def test_a_variant_update_rewrites_its_attributes_and_measures(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        await apply(db, created(p))
        variant_id, added = variant(p, "5.00", weight_value=Decimal("1.5"))
        await apply(db, added)
        await apply(
            db,
            p(
                e.VariantUpdated(
                    product_id=p.id, variant_id=variant_id, attributes={"size": "L"}, weight_value=None,
                    weight_unit="lb", length=Decimal("30"), width=Decimal("20.5"), height=Decimal("0"),
                    dimension_unit="in",
                )
            ),
        )  # fmt: skip
        detail = await get_product(db, p.id, viewer=ADMIN)
        assert detail is not None
        (v,) = detail.variants
        assert (v.attributes, v.weight_value, v.weight_unit) == ({"size": "L"}, None, "lb")
        assert (v.length, v.width, v.height, v.dimension_unit) == (30, Decimal("20.5"), 0, "in")
        assert (v.base_price, v.is_active, detail.version) == (Decimal("5.00"), True, 3)

    async def test_an_inactive_variant_leaves_the_cards_prices_and_comes_back(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        await apply(db, created(p, seller_id=seller))
        cheap, added_cheap = variant(p, "10.00")
        _, added_dear = variant(p, "20.00")
        await apply(db, added_cheap, added_dear)

        async def card() -> tuple[Decimal | None, Decimal | None, int, bool]:
            (found,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
            detail = await get_product(db, p.id, viewer=ADMIN)
            assert detail is not None and detail.version == found.version == p.version
            active = next(v.is_active for v in detail.variants if v.variant_id == cheap)
            return found.min_price, found.max_price, found.variant_count, active

        assert await card() == (Decimal("10.00"), Decimal("20.00"), 2, True)
        await apply(db, p(e.VariantDeactivated(product_id=p.id, variant_id=cheap)))
        assert await card() == (Decimal("20.00"), Decimal("20.00"), 1, False)
        in_range = await list_product_cards(
            db, seller_id=seller, currency="EUR", price_min="5", price_max="15", viewer=ADMIN
        )
        assert in_range.items == []
        await apply(db, p(e.VariantActivated(product_id=p.id, variant_id=cheap)))
        assert await card() == (Decimal("10.00"), Decimal("20.00"), 2, True)

    async def test_the_primary_flag_moves_in_detail_and_card(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        await apply(db, created(p, seller_id=seller))
        one, added_one = image(p, "https://img.example.com/1.jpg", primary=True, order=0)
        two, added_two = image(p, "https://img.example.com/2.jpg", primary=False, order=1)
        await apply(db, added_one, added_two)
        await apply(db, p(e.PrimaryImageChanged(product_id=p.id, image_id=two, previous_primary_id=one)))
        detail = await get_product(db, p.id, viewer=ADMIN)
        (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
        assert detail is not None
        assert [(i.image_id, i.is_primary) for i in detail.images] == [(one, False), (two, True)]
        assert (card.primary_image_url, card.version) == ("https://img.example.com/2.jpg", 4)

    async def test_a_new_order_orders_the_detail_and_keeps_the_cards_primary(self, db: asyncpg.Pool) -> None:
        p = aggregate("Product")
        seller = str(uuid.uuid4())
        await apply(db, created(p, seller_id=seller))
        ids = []
        for n in range(3):
            image_id, added = image(p, f"https://img.example.com/{n}.jpg", primary=n == 0, order=n)
            ids.append(image_id)
            await apply(db, added)
        await apply(db, p(e.ProductImagesReordered(product_id=p.id, image_ids=[ids[2], ids[0], ids[1]])))
        detail = await get_product(db, p.id, viewer=ADMIN)
        (card,) = (await list_product_cards(db, seller_id=seller, viewer=ADMIN)).items
        assert detail is not None
        assert [(i.image_id, i.display_order) for i in detail.images] == [
            (ids[2], 0),
            (ids[0], 1),
            (ids[1], 2),
        ]
        assert [i.is_primary for i in detail.images] == [False, True, False]
        assert (card.primary_image_url, card.version) == ("https://img.example.com/0.jpg", 5)
