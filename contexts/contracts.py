"""The vocabulary contexts publish to each other: contexts never import one another, only this."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """Loyalty tiers in ascending order (Identity owns them; the catalogue prices by them). Compare
    them by `rank`, never by their alphabetical value."""

    STANDARD = "Standard"
    SILVER = "Silver"
    GOLD = "Gold"
    PLATINUM = "Platinum"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {tier: rank for rank, tier in enumerate(Tier)}
