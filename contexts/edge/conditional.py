"""Conditional requests: `If-Match` as the versions a command expects, and the version as `ETag`."""

from __future__ import annotations

import re
from typing import Annotated

from litestar.params import HeaderParameter

Versions = int | tuple[int, ...] | None  # what a command's `expected_version` holds

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*')
_VERSION = re.compile(r"0|[1-9][0-9]*")
_TAG = r'(?:W/)?"[!#-~\x80-\xff]*"'
IF_MATCH_PATTERN = rf"^[ \t]*(?:\*|{_TAG}(?:[ \t]*,[ \t]*{_TAG})*)[ \t]*$"


def matching_versions(if_match: str | None) -> Versions:
    """`If-Match` (RFC 9110 §13.1.1) as the versions it accepts, by strong comparison: absent or `*`
    → None (no condition; the aggregate must still exist); `"7"` → 7; a list → the versions of its strong
    tags (`"3", W/"4", "7"` → (3, 7)). A weak tag, a tag that is no version and a malformed field match
    nothing: () → 412."""
    if if_match is None or if_match.strip() == "*":
        return None
    versions: list[int] = []
    for member in _list_members(if_match):
        if member is None:
            return ()
        weak, opaque = member
        if not weak and _VERSION.fullmatch(opaque):
            versions.append(int(opaque))
    return versions[0] if len(versions) == 1 else tuple(versions)


def _list_members(field: str) -> list[tuple[bool, str] | None]:
    """The entity-tags of a comma-separated list (empty members allowed, RFC 9110 §5.6.1); None for a
    member that is not an entity-tag."""
    members: list[tuple[bool, str] | None] = []
    position = 0
    while position <= len(field):
        match = _ENTITY_TAG.match(field, position)
        if match is None:
            rest = field[position:].split(",", 1)
            if rest[0].strip():
                return [None]
            position += len(rest[0]) + 1
            continue
        members.append((match.group(1) is not None, match.group(2)))
        position = match.end()
        if position < len(field) and field[position] != ",":
            return [None]
        position += 1
    return members


def expected_version(
    if_match: Annotated[
        str | None,
        HeaderParameter(
            name="If-Match",
            required=False,
            description='Run only if the aggregate is at one of these versions, named by strong ETags (e.g. "7"'
            ' or "6", "7"); `*` needs it to exist. Else 412: a weak ETag (W/"7") matches nothing.',
            schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
) -> Versions:
    return matching_versions(if_match)


def etag(version: int) -> str:
    return f'"{version}"'
