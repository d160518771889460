"""Image routes: add an image to a product's gallery, remove one, choose the primary, reorder them."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, delete, post, put
from litestar.params import JSONBody

from contexts.catalogue.api import ImageCreated, ImageOrder, NewImage
from contexts.catalogue.api.parameters import SELLERS, ImageId, ProductId, product_target
from contexts.catalogue.gallery import (
    AddProductImage,
    RemoveProductImage,
    ReorderProductImages,
    SetPrimaryImage,
)
from contexts.edge.access import BEARER, GUARDED
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, command_dependencies
from contexts.edge.responses import Accepted, created


class ImageController(Controller):
    path = "/products"
    tags = ["catalogue"]
    dependencies = command_dependencies("catalogue")

    @post(
        "/{product_id:str}/images",
        operation_id="addProductImage",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Add an image",
    )
    async def add_image(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewImage],
    ) -> Response[ImageCreated]:  # type: ignore[valid-type]
        """At most 10 images; the first, or one sent with `is_primary`, becomes the primary image."""
        command = command_from(
            AddProductImage,
            data,
            image_id=str(uuid.uuid4()),
            expected_version=expected_version,
            **product_target(commands, product_id),
        )
        outcome = await commands.run(command)
        body = ImageCreated(image_id=outcome.created_id, version=outcome.version)
        return created(body, f"/products/{command.product_id}", outcome.version)

    @delete(
        "/{product_id:str}/images/{image_id:str}",
        operation_id="removeProductImage",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Remove an image",
        status_code=200,
    )
    async def remove_image(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        image_id: ImageId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Removing the primary image makes the first remaining one primary."""
        return await change(
            commands,
            RemoveProductImage,
            product_target(commands, product_id),
            expected_version,
            image_id=image_id,
        )

    @put(
        "/{product_id:str}/images/{image_id:str}/primary",
        operation_id="setPrimaryImage",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Make an image the primary one",
    )
    async def set_primary(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        image_id: ImageId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """The image that had the flag loses it; the primary image already changes nothing."""
        return await change(
            commands,
            SetPrimaryImage,
            product_target(commands, product_id),
            expected_version,
            image_id=image_id,
        )

    @put(
        "/{product_id:str}/images/order",
        operation_id="reorderProductImages",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Put the images in order",
    )
    async def reorder(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[ImageOrder],
    ) -> Response[Accepted]:
        """`image_ids` names every image of the product exactly once (422), in the new display order (0, 1, …);
        the primary image stays. The current order changes nothing."""
        return await change(
            commands, ReorderProductImages, product_target(commands, product_id), expected_version, data
        )
