"""The catalogue bounded context: products with variants, prices, images and a lifecycle; the category tree."""

from importlib.resources import files

from bus.module import ContextModule
from contexts.catalogue import (
    categories,
    details,
    filing,
    gallery,
    lifecycle,
    listing,
    pricing,
    variant_edits,
    visibility,
)
from contexts.catalogue.api.categories import CategoryController
from contexts.catalogue.api.images import ImageController
from contexts.catalogue.api.products import ProductController, SellerController
from contexts.catalogue.api.variants import VariantController
from contexts.catalogue.projections import PROJECTIONS

module = ContextModule(
    name="catalogue",
    migrations=files(__name__) / "migrations",
    handlers={
        listing.CreateProduct: listing.create_product,
        details.UpdateProductDetails: details.update_product_details,
        pricing.AddVariant: pricing.add_variant,
        pricing.ChangeVariantPrice: pricing.change_variant_price,
        pricing.SetTierPrice: pricing.set_tier_price,
        gallery.AddProductImage: gallery.add_product_image,
        gallery.RemoveProductImage: gallery.remove_product_image,
        gallery.SetPrimaryImage: gallery.set_primary_image,
        gallery.ReorderProductImages: gallery.reorder_product_images,
        filing.ChangeProductCategory: filing.change_product_category,
        visibility.ChangeProductVisibility: visibility.change_product_visibility,
        variant_edits.UpdateVariant: variant_edits.update_variant,
        variant_edits.DeactivateVariant: variant_edits.deactivate_variant,
        variant_edits.ActivateVariant: variant_edits.activate_variant,
        lifecycle.ActivateProduct: lifecycle.activate_product,
        lifecycle.DiscontinueProduct: lifecycle.discontinue_product,
        lifecycle.ArchiveProduct: lifecycle.archive_product,
        categories.CreateCategory: categories.create_category,
        categories.UpdateCategory: categories.update_category,
        categories.ReorderCategory: categories.reorder_category,
        categories.DeactivateCategory: categories.deactivate_category,
        categories.MoveCategory: categories.move_category,
        categories.ActivateCategory: categories.activate_category,
    },
    projections=PROJECTIONS,
    route_handlers=[
        ProductController,
        VariantController,
        ImageController,
        SellerController,
        CategoryController,
    ],
)
