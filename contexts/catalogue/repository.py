"""Product and Category repositories: whole state as JSON; product and variant SKUs, and the slugs of
products not archived, kept unique (in any case) by the database, so two concurrent writes cannot both
take one; each category's parent in a column of its own, so that a move finds the subtree below it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import msgspec

from bus.errors import ConcurrencyError, Invalid
from bus.repository import Repository, change
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.category import MAX_LEVEL, Category, CategoryState
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.errors import AnotherSellersProduct, SkuTaken, SlugTaken, VariantSkuTaken
from contexts.catalogue.events import VariantAdded
from contexts.catalogue.product import Product, ProductState
from contexts.catalogue.values import ProductStatus

_encoder = msgspec.json.Encoder()
_product_decoder = msgspec.json.Decoder(ProductState)
_category_decoder = msgspec.json.Decoder(CategoryState)
_ADD_VARIANT_SKUS = (
    "INSERT INTO catalogue.variant_skus (variant_sku_key, product_id, variant_id)"
    " SELECT key, $2, variant FROM unnest($1::text[], $3::text[]) AS added(key, variant)"
)


def sku_key(sku: str) -> str:
    return sku.upper()


def slug_key(product: Product) -> str | None:
    """The key that holds the product's slug; an archived product holds none, so its slug is free."""
    slug = product.state.slug
    return None if slug is None or product.state.status == ProductStatus.ARCHIVED else slug.lower()


def _new_variant_skus(product: Product) -> list[str]:
    return [e.variant_sku for e in product.pending_events if isinstance(e, VariantAdded)]


class Products(Repository[Product]):
    table = "catalogue.products"
    what = "product"
    lookups = ("sku_key", "slug_key")
    unique = {
        "products_sku_key_key": lambda product: SkuTaken(product.state.sku),
        "products_slug_key_key": lambda product: SlugTaken(product.state.slug),
        "variant_skus_pkey": lambda product: VariantSkuTaken(", ".join(_new_variant_skus(product))),
    }

    def load(self, state: str, version: int) -> Product:
        return Product(_product_decoder.decode(state), version)

    def dump(self, product: Product) -> str:
        return _encoder.encode(product.state).decode()

    def lookup_values(self, product: Product) -> tuple[object, ...]:
        return sku_key(product.state.sku), slug_key(product)

    async def save_more(self, conn: asyncpg.Connection, product: Product) -> None:
        added = [e for e in product.pending_events if isinstance(e, VariantAdded)]
        if added:
            keys = [sku_key(e.variant_sku) for e in added]
            await conn.execute(_ADD_VARIANT_SKUS, keys, product.id, [e.variant_id for e in added])


_BELOW = """
WITH RECURSIVE below (id) AS (
    SELECT id FROM catalogue.categories WHERE parent_id = $1
    UNION
    SELECT c.id FROM catalogue.categories c JOIN below ON c.parent_id = below.id
)
"""
_SUBTREE = (
    _BELOW + "SELECT c.state::text AS state, c.version FROM catalogue.categories c JOIN below USING (id)"
)
_SUBTREE_IDS = _BELOW + "SELECT coalesce(array_agg(id), '{}') FROM below"


class Subtree:
    """Which categories lie below one, as a command read them: at commit, after the command's writes,
    the same must lie below it (the rows themselves are tracked one by one)."""

    def __init__(self, root_id: str, ids: list[str]) -> None:
        self.root_id = root_id
        self.ids = sorted(ids)

    async def ensure_unchanged(self, conn: asyncpg.Connection) -> None:
        if sorted(await conn.fetchval(_SUBTREE_IDS, self.root_id)) != self.ids:
            raise ConcurrencyError(self.root_id)


class Categories(Repository[Category]):
    table = "catalogue.categories"
    what = "category"
    lookups = ("parent_id",)

    def lookup_values(self, category: Category) -> tuple[object, ...]:
        return (category.state.parent_category_id,)

    def load(self, state: str, version: int) -> Category:
        return Category(_category_decoder.decode(state), version)

    def dump(self, category: Category) -> str:
        return _encoder.encode(category.state).decode()

    async def referenced(self, field: str, category_id: str | None) -> Category | None:
        """The category a body refers to (a product's, a child's parent), tracked so that it must still
        be as read when the command commits; a reference to nothing is invalid (422)."""
        if category_id is None:
            return None
        try:
            key = str(uuid.UUID(category_id))
        except ValueError:
            raise Invalid(field, "names no category") from None
        category = await self.find(key)
        if category is None:
            raise Invalid(field, "names no category")
        return category

    async def lineage(self, field: str, parent_id: str | None) -> list[Category]:
        """The parent a body refers to and its ancestors up to a root, nearest first, each tracked: a move
        elsewhere of any of them changes the level (and the cycles) of whatever is filed below it."""
        parent = await self.referenced(field, parent_id)
        chain = [] if parent is None else [parent]
        while chain and len(chain) <= MAX_LEVEL + 1 and (above := chain[-1].state.parent_category_id):
            ancestor = await self.find(above)
            if ancestor is None:
                break
            chain.append(ancestor)
        return chain

    async def subtree(self, category: Category) -> list[Category]:
        """Every category below `category`, each tracked, and which they are re-checked at commit."""
        rows = await self.uow.conn.fetch(_SUBTREE, category.id)
        below = [self.load(row["state"], row["version"]) for row in rows]
        for descendant in below:
            self.uow.track(self, descendant)
        self.uow.recheck(Subtree(category.id, [d.id for d in below]))
        return below


def _sellers_own(seller_id: str, product_id: str) -> Callable[[Product | None], None]:
    def check(product: Product | None) -> None:
        if product is not None and product.state.seller_id != seller_id:
            raise AnotherSellersProduct(product_id)

    return check


def _owner_check(command: ProductCommand) -> Callable[[Product | None], None] | None:
    seller = command.acting_seller_id
    return None if seller is None else _sellers_own(seller, command.product_id)


async def change_product(
    uow: UnitOfWork,
    command: ProductCommand,
    action: Callable[[Product], object],
    created_id: str | None = None,
) -> Outcome:
    """The shape of every command on an existing product: load, act, commit. The product must exist
    (404), be the acting seller's own if a seller acts (403; seller ids never change, and this is the
    row the command saves), and be at `If-Match` (412)."""
    return await change(
        Products(uow), command.product_id, command.expected_version, action, _owner_check(command), created_id
    )


async def load_product(uow: UnitOfWork, command: ProductCommand) -> Product:
    """The product a command addresses, with the checks of `change_product`, for a handler that reads
    more before it acts; call it inside `async with uow`."""
    return await Products(uow).get(command.product_id, command.expected_version, _owner_check(command))


async def change_category(
    uow: UnitOfWork,
    category_id: str,
    expected_version: int | tuple[int, ...] | None,
    action: Callable[[Category], object],
) -> Outcome:
    return await change(Categories(uow), category_id, expected_version, action)


def now() -> datetime:
    return datetime.now(UTC)
