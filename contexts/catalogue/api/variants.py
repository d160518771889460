"""Variant routes: add a variant, change its base price, set a loyalty-tier price, change its measures,
deactivate and activate it."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, post, put
from litestar.params import JSONBody

from contexts.catalogue.api import NewVariant, PriceChange, TierPriceChange, VariantChange, VariantCreated
from contexts.catalogue.api.parameters import SELLERS, ProductId, VariantId, product_target
from contexts.catalogue.pricing import AddVariant, ChangeVariantPrice, SetTierPrice
from contexts.catalogue.variant_edits import ActivateVariant, DeactivateVariant, UpdateVariant
from contexts.edge.access import BEARER, GUARDED
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, command_dependencies
from contexts.edge.responses import Accepted, created


class VariantController(Controller):
    path = "/products"
    tags = ["catalogue"]
    dependencies = command_dependencies("catalogue")

    @post(
        "/{product_id:str}/variants",
        operation_id="addVariant",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Add a variant",
    )
    async def add_variant(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewVariant],
    ) -> Response[VariantCreated]:  # type: ignore[valid-type]
        """`variant_sku` is unique across all products (409); all variants of a product share one currency (409)."""
        command = command_from(
            AddVariant,
            data,
            variant_id=str(uuid.uuid4()),
            expected_version=expected_version,
            **product_target(commands, product_id),
        )
        outcome = await commands.run(command)
        body = VariantCreated(variant_id=outcome.created_id, version=outcome.version)
        return created(body, f"/products/{command.product_id}", outcome.version)

    @put(
        "/{product_id:str}/variants/{variant_id:str}/price",
        operation_id="changeVariantPrice",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Change a variant's base price",
    )
    async def change_price(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
        data: JSONBody[PriceChange],
    ) -> Response[Accepted]:
        """Tier prices are kept: a base price that would not stay above each of them is refused (409)."""
        return await change(
            commands,
            ChangeVariantPrice,
            product_target(commands, product_id),
            expected_version,
            data,
            variant_id=variant_id,
        )

    @put(
        "/{product_id:str}/variants/{variant_id:str}/tier-price",
        operation_id="setTierPrice",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Set a loyalty-tier price",
    )
    async def set_tier_price(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
        data: JSONBody[TierPriceChange],
    ) -> Response[Accepted]:
        """The price must be above 0 and below the variant's base price (409)."""
        return await change(
            commands,
            SetTierPrice,
            product_target(commands, product_id),
            expected_version,
            data,
            variant_id=variant_id,
        )

    @put(
        "/{product_id:str}/variants/{variant_id:str}",
        operation_id="updateVariant",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Change a variant's attributes and measures",
    )
    async def update_variant(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
        data: JSONBody[VariantChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `null` clears a measure. Checked as when the variant is added (422)."""
        return await change(
            commands,
            UpdateVariant,
            product_target(commands, product_id),
            expected_version,
            data,
            variant_id=variant_id,
        )

    @put(
        "/{product_id:str}/variants/{variant_id:str}/deactivate",
        operation_id="deactivateVariant",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Stop selling a variant",
    )
    async def deactivate_variant(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """An inactive variant leaves the card's prices and variant count, searches and `your_price`. An Active
        product keeps at least one active variant (409); an inactive variant cannot be deactivated (409)."""
        return await change(
            commands,
            DeactivateVariant,
            product_target(commands, product_id),
            expected_version,
            variant_id=variant_id,
        )

    @put(
        "/{product_id:str}/variants/{variant_id:str}/activate",
        operation_id="activateVariant",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Sell a variant again",
    )
    async def activate_variant(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """An inactive variant is sold again; an active one cannot be activated (409)."""
        return await change(
            commands,
            ActivateVariant,
            product_target(commands, product_id),
            expected_version,
            variant_id=variant_id,
        )
