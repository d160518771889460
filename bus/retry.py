"""Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2**(attempt-1))]."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rand or random).uniform(0, ceiling)
