"""Who reads the catalogue, and which products they may see (SPEC §9): the one rule every read applies.

- An admin sees everything.
- Anyone else sees only Active and Discontinued products: Public ones in lists and by id; Unlisted ones
  only by id (or slug); Tier_Restricted ones, in lists and by id, only as a customer whose tier is at
  least the product's `restricted_to_tier`. "Restricted" is not "unlisted": a customer it is meant for
  finds it wherever it finds Public products.
- A seller sees all of its own products, whatever their state, and of the others what a Standard
  customer sees (which is what an anonymous caller sees: no product is restricted to Standard).
- A customer's tier is what the catalogue's `customer_tiers` read model holds for its `external_id`
  (its token's `sub`). A customer the read model does not know (yet), or knows as Closed, is anonymous.
  A suspended customer keeps its tier: suspension stops changes to the account, not browsing.

The rule is an SQL condition over the product columns `status, visibility, restricted_to_tier,
seller_id`, so the database filters lists, pages and counts, and the caller's tier is looked up inside
the read's own statement (one index probe, evaluated once): no extra round trip per request.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import msgspec

from contexts.catalogue.values import ProductStatus, Visibility
from contexts.contracts import Tier


class Kind(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"
    CUSTOMER = "customer"
    ANONYMOUS = "anonymous"


class Viewer(msgspec.Struct, frozen=True):
    """The caller as the catalogue sees it: its kind, and the seller id or customer external id."""

    kind: Kind
    subject: str | None = None


ADMIN = Viewer(Kind.ADMIN)
ANONYMOUS = Viewer(Kind.ANONYMOUS)


def seller(seller_id: str) -> Viewer:
    return Viewer(Kind.SELLER, seller_id)


def customer(external_id: str) -> Viewer:
    return Viewer(Kind.CUSTOMER, external_id)


class Scope(NamedTuple):
    """What a read adds to its statement for a viewer: `where`, the condition on the product's columns;
    `tier`, an expression for a customer's tier, NULL when the catalogue knows no open account for it
    (None for any other caller: no `your_*` prices); `args`, bound from parameter `$param` on, which
    both may use."""

    where: str
    tier: str | None
    args: tuple[object, ...]


EVERYTHING = Scope("true", None, ())  # an admin's

_SHOWN = f"('{ProductStatus.ACTIVE}', '{ProductStatus.DISCONTINUED}')"
_RANKED = "ARRAY[" + ", ".join(f"'{tier}'" for tier in Tier) + "]"  # Standard < Silver < Gold < Platinum


def customer_tier(param: int) -> str:
    """The tier of the customer whose external id is `$param`, NULL if the catalogue knows it as none."""
    return (
        f"(SELECT ct.tier FROM catalogue.customer_tiers ct"
        f" WHERE ct.external_id = ${param} AND ct.status <> 'Closed' LIMIT 1)"
    )


def scope(viewer: Viewer, *, listed: bool, param: int, alias: str = "") -> Scope:
    """The viewer's scope over products whose columns are qualified by `alias`: in lists (`listed`) or
    addressed one by one (by id or slug, where Unlisted ones show too)."""
    c = f"{alias}." if alias else ""
    if viewer.kind is Kind.ADMIN:
        return EVERYTHING
    shown = [f"{c}visibility = '{Visibility.PUBLIC}'"]
    if not listed:
        shown.append(f"{c}visibility = '{Visibility.UNLISTED}'")
    if viewer.kind is Kind.CUSTOMER:
        known = customer_tier(param)
        shown.append(
            f"({c}visibility = '{Visibility.TIER_RESTRICTED}'"
            f" AND array_position({_RANKED}, {c}restricted_to_tier)"
            f" <= coalesce(array_position({_RANKED}, {known}), 1))"
        )
        where = f"({c}status IN {_SHOWN} AND ({' OR '.join(shown)}))"
        return Scope(where, known, (viewer.subject,))
    where = f"{c}status IN {_SHOWN} AND ({' OR '.join(shown)})"
    if viewer.kind is Kind.SELLER:
        return Scope(f"({c}seller_id = ${param} OR ({where}))", None, (viewer.subject,))
    return Scope(f"({where})", None, ())
