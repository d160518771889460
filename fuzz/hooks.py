"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS). What a generic fuzzer cannot know about
ShopStream, and nothing more: values for the cursor formats the document names (so later pages are
reached), a fresh Idempotency-Key and a fresh identity per registration (reuse is 409/422 by design),
creating routes as stateful entry points, and reads that wait for the projection after a create."""

from __future__ import annotations

import base64
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import schemathesis
from hypothesis import strategies as st

_NO_NUL = st.characters(exclude_characters="\x00")


def _search_cursor(sort: str, key: str, product_id: str) -> str:
    # The encoding of contexts/catalogue/search_terms.py: the sort, the last card's sort key as text, its id.
    raw = msgspec.json.encode({"s": sort, "k": key, "id": product_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_NEWEST_KEYS = st.tuples(
    st.just("newest"), st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)).map(str)
)
_SORT_KEYS = st.one_of(
    _NEWEST_KEYS,
    st.tuples(st.sampled_from(["price_asc", "price_desc"]), st.decimals(0, 10**12, places=2).map(str)),
    st.tuples(st.just("title"), st.text(_NO_NUL, max_size=40)),
    st.tuples(st.just("relevance"), st.floats(0, 10, width=32).map(repr)),
)
schemathesis.openapi.format(
    "product-search-cursor",
    st.builds(
        lambda sort_key, product_id: _search_cursor(*sort_key, product_id),
        _SORT_KEYS,
        st.one_of(st.uuids().map(str), st.text(_NO_NUL, max_size=40)),
    ),
)

schemathesis.openapi.format(
    "product-newest-cursor",
    st.builds(
        lambda sort_key, product_id: _search_cursor(*sort_key, product_id),
        _NEWEST_KEYS,
        st.one_of(st.uuids().map(str), st.text(_NO_NUL, max_size=40)),
    ),
)

schemathesis.openapi.format(
    "price-history-cursor",  # contexts/catalogue/queries.py: the product version of a page's last change
    st.integers(1, 2**63 - 1).map(
        lambda version: base64.urlsafe_b64encode(msgspec.json.encode({"v": version})).decode().rstrip("=")
    ),
)

schemathesis.openapi.format(
    "dead-letter-cursor",
    st.builds(
        lambda db, last: (
            base64.urlsafe_b64encode(msgspec.json.encode({"db": db, "id": last})).decode().rstrip("=")
        ),
        st.integers(0, 3),
        st.integers(0, 2**63 - 1),
    ),
)


_pruned: set[int] = set()


def _drop_references_nothing_produces(schema: Any) -> None:
    """Schemathesis reads a field named `<word>_id` as a reference to a `<Word>` resource, and starts
    stateful runs only from operations whose references some operation produces. `external_id`
    (another system's key), `seller_id` (a seller is a caller, not a resource here) and
    `parent_category_id` are produced by none, so POST /customers, /products and /categories would
    never start a run and the links they carry would go unused. Runs before the stateful phase builds
    its state machine (the examples, coverage and fuzzing phases call first)."""
    if id(schema) in _pruned:
        return
    _pruned.add(id(schema))
    graph = schema.analysis.dependency_graph
    produced = {output.resource.name for node in graph.operations.values() for output in node.outputs}
    for node in graph.operations.values():
        node.inputs = [s for s in node.inputs if s.resource_field is None or s.resource.name in produced]


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A fresh `Idempotency-Key` on every request that sends one: the same key with another body is
    422 by design (SPEC §3), and a generator cannot know which keys earlier requests used."""
    _drop_references_nothing_produces(case.operation.schema)
    for headers in (kwargs.get("headers"), case.headers):
        for name in list(headers or ()):
            if name.lower() == "idempotency-key":
                headers[name] = str(uuid.uuid4())
    if case.operation.label == "POST /customers":
        _register_someone_new(case)


def _register_someone_new(case: Any) -> None:
    """`external_id` and e-mail are unique (409 the second time): a generator repeats its favourite
    values, so a valid registration gets a tag of its own in both, keeping it valid."""
    meta, body = case.meta, case.body
    if meta is None or meta.generation.mode.is_negative or not isinstance(body, dict):
        return
    tag = uuid.uuid4().hex[:12]
    external_id, email = body.get("external_id"), body.get("email")
    if isinstance(external_id, str) and len(external_id) <= 255 - 13:
        body["external_id"] = f"{external_id}-{tag}"
    if isinstance(email, str) and len(email) <= 254 - 14 and not email.startswith("."):
        body["email"] = f"u{tag}.{email}"


_CATCH_UP = 10.0  # seconds a projection may take to show a new aggregate before the run goes on


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    """Reads come from projections and are eventually consistent (SPEC §3): after a 201, wait until
    its `Location` reads as something other than 404, so that the next read sees what was created, as
    a client reading its own writes would."""
    location = (response.headers.get("location") or [None])[0]
    if response.status_code != 201 or not location:
        return
    url = urllib.parse.urljoin(response.request.url, location)
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {os.environ['SHOPSTREAM_FUZZ_TOKEN']}"}
    )
    deadline = time.monotonic() + _CATCH_UP
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError as answer:
            if answer.code != 404:
                return
        except OSError:
            return
        time.sleep(0.02)
