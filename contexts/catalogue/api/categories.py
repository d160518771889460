"""Category routes: create, rename, reorder, move, deactivate and activate a category; the tree and one
node."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post, put
from litestar.params import JSONBody, QueryParameter

from contexts.catalogue import queries
from contexts.catalogue.api import CategoryChange, CategoryCreated, NewCategory, NewParent, Reorder
from contexts.catalogue.api.parameters import (
    ADMINS,
    DEPENDENCIES,
    CategoryId,
    Viewer,
    category_target,
    parse_category_id,
)
from contexts.catalogue.categories import (
    ActivateCategory,
    CreateCategory,
    DeactivateCategory,
    MoveCategory,
    ReorderCategory,
    UpdateCategory,
)
from contexts.edge import wire
from contexts.edge.access import BEARER, BEARER_OPTIONAL, GUARDED
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool
from contexts.edge.problems import PROBLEMS
from contexts.edge.responses import Accepted, created, found


class CategoryController(Controller):
    path = "/categories"
    tags = ["catalogue"]
    dependencies = DEPENDENCIES

    @post(
        "/",
        operation_id="createCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Create a category",
    )
    async def create(self, commands: CommandRunner, data: JSONBody[NewCategory]) -> Response[CategoryCreated]:  # type: ignore[valid-type]
        """A root, or a child of an existing (422) and active (409) parent, at most at level 4 (409)."""
        outcome = await commands.run(command_from(CreateCategory, data, category_id=str(uuid.uuid4())))
        body = CategoryCreated(category_id=outcome.aggregate_id, version=outcome.version)
        return created(body, f"/categories/{outcome.aggregate_id}", outcome.version)

    @put(
        "/{category_id:str}",
        operation_id="updateCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Rename or change attributes",
    )
    async def update(
        self,
        commands: CommandRunner,
        category_id: CategoryId,
        expected_version: ExpectedVersion,
        data: JSONBody[CategoryChange],
    ) -> Response[Accepted]:
        """A new name shows in the breadcrumb of every descendant."""
        return await change(commands, UpdateCategory, category_target(category_id), expected_version, data)

    @put(
        "/{category_id:str}/reorder",
        operation_id="reorderCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Move among siblings",
    )
    async def reorder(
        self,
        commands: CommandRunner,
        category_id: CategoryId,
        expected_version: ExpectedVersion,
        data: JSONBody[Reorder],
    ) -> Response[Accepted]:
        """Siblings are listed by `display_order`, then by name."""
        return await change(
            commands,
            ReorderCategory,
            category_target(category_id),
            expected_version,
            new_display_order=wire.whole_number(data.new_display_order),
        )

    @put(
        "/{category_id:str}/deactivate",
        operation_id="deactivateCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Deactivate",
    )
    async def deactivate(
        self, commands: CommandRunner, category_id: CategoryId, expected_version: ExpectedVersion
    ) -> Response[Accepted]:
        """Nothing new can be filed in an inactive category; deactivating one twice is 409."""
        return await change(commands, DeactivateCategory, category_target(category_id), expected_version)

    @put(
        "/{category_id:str}/parent",
        operation_id="moveCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Move with its subtree",
    )
    async def move(
        self,
        commands: CommandRunner,
        category_id: CategoryId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewParent],  # type: ignore[valid-type]
    ) -> Response[Accepted]:
        """Under an existing (422), active (409) parent that is neither the category nor below it (409), with
        room for the deepest node of the subtree at level 4 at most (409); `null` makes it a root. The same
        parent changes nothing (the version stays)."""
        return await change(commands, MoveCategory, category_target(category_id), expected_version, data)

    @put(
        "/{category_id:str}/activate",
        operation_id="activateCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Activate",
    )
    async def activate(
        self, commands: CommandRunner, category_id: CategoryId, expected_version: ExpectedVersion
    ) -> Response[Accepted]:
        """Only under an active parent (409); activating an active category is 409."""
        return await change(commands, ActivateCategory, category_target(category_id), expected_version)

    @get("/", operation_id="getCategoryTree", responses=PROBLEMS, summary="The category tree")
    async def tree(
        self,
        pool: ReadPool,
        include_inactive: Annotated[bool, QueryParameter(description="also inactive categories")] = False,
    ) -> queries.CategoryTree:
        """Children nested, ordered by `display_order` then `name`; an inactive category hides its subtree."""
        return await queries.get_category_tree(pool, include_inactive=include_inactive)

    @get(
        "/{category_id:str}",
        operation_id="getCategory",
        responses=PROBLEMS,
        security=BEARER_OPTIONAL,
        summary="A category with breadcrumb",
    )
    async def node(
        self, pool: ReadPool, viewer: Viewer, category_id: CategoryId
    ) -> Response[queries.CategoryNode]:
        """`breadcrumb` holds the names from the root down to this category; `product_count` the products
        filed here that the caller may list."""
        return found(
            await queries.get_category(pool, parse_category_id(category_id), viewer=viewer),
            "category",
            category_id,
        )
