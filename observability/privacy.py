"""Personal data kept out of what operators read: traces and access logs record URLs, and a customer is
found by e-mail address with `GET /customers?email=…`; the value of such a parameter is replaced."""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

# Query parameters whose values are personal data, on whatever route they are sent.
PERSONAL_QUERY_PARAMETERS = frozenset({"email"})
REDACTED = "REDACTED"


def scrub_query(query: str) -> str:
    """`email=ada%40example.com&limit=5` → `email=REDACTED&limit=5`; everything else kept as sent."""
    if "=" not in query:
        return query
    pairs = query.split("&")
    for index, pair in enumerate(pairs):
        name, equals, _ = pair.partition("=")
        if equals and unquote_plus(name).strip().lower() in PERSONAL_QUERY_PARAMETERS:
            pairs[index] = f"{name}={REDACTED}"
    return "&".join(pairs)


def scrub_target(target: str) -> str:
    """A request target (`/customers?email=…`) with `scrub_query` applied to its query."""
    path, question, query = target.partition("?")
    return f"{path}?{scrub_query(query)}" if question else target


class ScrubbedAccessLog(logging.Filter):
    """On uvicorn's access logger: its records carry the request target as the third argument
    (`%s - "%s %s HTTP/%s" %d`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], scrub_target(args[2]), *args[3:])
        return True
