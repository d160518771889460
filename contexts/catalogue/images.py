"""A product's gallery: the Image entity and the rules that hold over the whole gallery.

The gallery is an immutable tuple ordered by `display_order`; every operation returns a new one. It
holds at most ten images, and whenever it is not empty exactly one of them is primary.
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from bus.errors import Invalid, Validation
from contexts.catalogue import errors, values

MAX_IMAGES = 10


class Image(msgspec.Struct, frozen=True, kw_only=True):
    image_id: str
    url: str
    alt_text: str | None = None
    is_primary: bool = False
    display_order: int = 0

    @classmethod
    def create(
        cls, image_id: str, *, url: str, alt_text: str | None = None, is_primary: bool = False
    ) -> Image:
        """A checked image, not yet placed in a gallery; each invalid value names its API field."""
        check = Validation()
        if not isinstance(is_primary, bool):
            check.failures.append(Invalid("is_primary", "must be true or false"))
        image = cls(
            image_id=image_id,
            url=check.check(values.url, url),
            alt_text=check.check(values.optional_text, "alt_text", alt_text, 255),
            is_primary=is_primary,
        )
        check.done()
        return image


Gallery = tuple[Image, ...]


def find(gallery: Gallery, image_id: str) -> Image:
    for image in gallery:
        if image.image_id == image_id:
            return image
    raise errors.ImageNotFound(image_id)


def primary_of(gallery: Gallery) -> Image | None:
    return next((image for image in gallery if image.is_primary), None)


def add(gallery: Gallery, image: Image) -> tuple[Gallery, str | None]:
    """The gallery with `image` placed last, and the id of the primary it displaced, if any.
    The first image is always primary."""
    if len(gallery) >= MAX_IMAGES:
        raise errors.ImageLimitReached(MAX_IMAGES)
    if any(i.image_id == image.image_id for i in gallery):
        raise errors.ImageExists(image.image_id)
    order = max((i.display_order for i in gallery), default=-1) + 1
    placed = replace(image, display_order=order, is_primary=image.is_primary or not gallery)
    if not placed.is_primary:
        return (*gallery, placed), None
    displaced = primary_of(gallery)
    unflagged = tuple(replace(i, is_primary=False) if i.is_primary else i for i in gallery)
    return (*unflagged, placed), displaced.image_id if displaced else None


def remove(gallery: Gallery, image_id: str) -> tuple[Gallery, str | None]:
    """The gallery without the image, and the id of the new primary if the removed one was it: the
    remaining image first in display order."""
    removed = find(gallery, image_id)
    remaining = tuple(i for i in gallery if i.image_id != image_id)
    if not removed.is_primary or not remaining:
        return remaining, None
    first = min(remaining, key=lambda i: i.display_order)
    return tuple(replace(i, is_primary=True) if i is first else i for i in remaining), first.image_id


def make_primary(gallery: Gallery, image_id: str) -> tuple[Gallery, str | None]:
    """The gallery with the flag moved to the image, and the id of the image that lost it."""
    find(gallery, image_id)
    displaced = primary_of(gallery)
    flagged = tuple(replace(i, is_primary=i.image_id == image_id) for i in gallery)
    return flagged, displaced.image_id if displaced else None


def reorder(gallery: Gallery, image_ids: list[str]) -> Gallery:
    """The gallery in the order of `image_ids`, which names every image exactly once (else 422); each
    image's `display_order` becomes its place in the list."""
    given = image_ids if isinstance(image_ids, list) and all(isinstance(i, str) for i in image_ids) else None
    if given is None or sorted(given) != sorted(i.image_id for i in gallery):
        raise Invalid("image_ids", "must name every image of the product exactly once")
    by_id = {i.image_id: i for i in gallery}
    return tuple(replace(by_id[image_id], display_order=n) for n, image_id in enumerate(given))
