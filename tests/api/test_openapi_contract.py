"""The OpenAPI document states what the server enforces: strict bodies, problem+json errors, headers,
links from creating routes, `Allow` as documented; and `If-Match` by RFC 9110 strong comparison."""

import re

import pytest
from litestar.testing import AsyncTestClient

from contexts.catalogue.values import URL_PATTERN
from contexts.edge.conditional import matching_versions
from shopstream.app import create_app

pytestmark = pytest.mark.anyio
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document():
    return create_app().openapi_schema.to_schema()


@pytest.fixture
async def client(settings):
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


def operations(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document, schema):
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_request_body_refuses_unknown_fields_and_names_the_required_ones(document):
    bodies = 0
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        schema = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
        assert schema["additionalProperties"] is False, (method, path)
        assert set(schema.get("required", [])) <= set(schema["properties"]), (method, path)
        bodies += 1
    assert bodies >= 15


def test_body_fields_carry_the_domain_rules(document):
    schemas = document["components"]["schemas"]
    registration = schemas["Registration"]["properties"]
    assert registration["external_id"]["maxLength"] == 255
    assert registration["email"]["maxLength"] == 254
    email = re.compile(registration["email"]["pattern"])
    assert email.search("ada@example.com") and email.search("ada@[192.0.2.1]")
    for bad in ("ada@example", "a..b@example.com", ".ada@example.com", "ada@-x.com", "a(b@example.com"):
        assert not email.search(bad), bad
    first_name = re.compile(registration["first_name"]["pattern"])
    assert first_name.search("  Ada ") and not first_name.search("   ")
    assert not first_name.search("x" * 101) and first_name.search(" " + "x" * 100 + " ")
    variant = schemas["NewVariant"]["properties"]
    assert "USD" in variant["currency"]["enum"] and variant["weight_unit"]["enum"] == ["kg", "lb", "g", "oz"]
    assert variant["variant_sku"]["minLength"] == 3 and variant["variant_sku"]["maxLength"] == 50
    assert schemas["Reorder"]["properties"]["new_display_order"]["minimum"] == 0
    assert schemas["TierChange"]["properties"]["new_tier"]["enum"] == [
        "Standard",
        "Silver",
        "Gold",
        "Platinum",
    ]


def test_every_product_operation_documents_its_errors_as_problem_json(document):
    for path, method, operation in operations(document):
        if path in ("/health", "/ready", "/metrics"):  # their own shapes, no request to refuse
            continue
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert errors, (method, path)
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, code)


def test_answers_document_their_headers(document):
    for path, method, operation in operations(document):
        responses = operation["responses"]
        for refused in ("429", "503"):
            if refused in responses:
                assert "Retry-After" in responses[refused]["headers"], (method, path, refused)
        if "201" in responses:
            assert {"Location", "ETag"} <= responses["201"]["headers"].keys(), (method, path)
    assert "ETag" in document["paths"]["/customers/{customer_id}"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in document["paths"]["/products/{product_id}"]["get"]["responses"]["200"]["headers"]
    # Any caller may meet its rate limit, and any body may be sent as something else than JSON.
    assert {"415", "429"} <= document["paths"]["/customers"]["post"]["responses"].keys()
    assert "429" in document["paths"]["/products"]["get"]["responses"]
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=1.0.0; charset=utf-8"]


@pytest.mark.parametrize(
    ("creator", "new_id", "targets"),
    [
        ("registerCustomer", "customer_id", {"getCustomer", "updateProfile", "addAddress", "closeAccount"}),
        ("addAddress", "address_id", {"updateAddress", "removeAddress", "setDefaultAddress"}),
        ("createProduct", "product_id", {"getProduct", "addVariant", "addProductImage", "activateProduct"}),
        ("addVariant", "variant_id", {"changeVariantPrice", "setTierPrice"}),
        ("addProductImage", "image_id", {"removeProductImage"}),
        ("createCategory", "category_id", {"getCategory", "updateCategory", "reorderCategory"}),
    ],
)
def test_creating_routes_link_their_new_id_to_the_routes_taking_it(document, creator, new_id, targets):
    (operation,) = [op for _, _, op in operations(document) if op["operationId"] == creator]
    links = operation["responses"]["201"]["links"]
    assert targets <= links.keys()
    for target in targets:
        assert links[target]["parameters"][new_id] == f"$response.body#/{new_id}"


async def test_every_route_keeps_the_operation_id_clients_are_generated_from(client):
    document = (await client.get("/schema/openapi.json")).json()
    served = {operation["operationId"] for _, _, operation in operations(document)}
    assert {
        "registerCustomer", "updateProfile", "addAddress", "updateAddress", "removeAddress",
        "setDefaultAddress", "suspendAccount", "reactivateAccount", "closeAccount", "upgradeTier",
        "getCustomer", "listAddresses", "findCustomer", "getSegments",
        "createProduct", "updateProductDetails", "addVariant", "changeVariantPrice", "setTierPrice",
        "addProductImage", "removeProductImage", "activateProduct", "discontinueProduct", "archiveProduct",
        "listProducts", "getProduct", "getPriceHistory", "listSellerProducts", "createCategory",
        "updateCategory", "reorderCategory", "deactivateCategory", "getCategoryTree", "getCategory",
    } <= served  # fmt: skip


async def test_options_and_405_allow_exactly_the_documented_methods(client):
    document = (await client.get("/schema/openapi.json")).json()
    for path in ("/categories", "/customers", "/categories/{category_id}", "/products/{product_id}/images"):
        documented = {m.upper() for m in METHODS if m in document["paths"][path]}
        url = path.format(category_id="9a1c4e7b-2d3f-4a5b-8c6d-7e8f9a0b1c2d", product_id="0" * 32)
        options = await client.options(url)
        assert options.status_code == 204
        assert set(options.headers["allow"].split(", ")) == documented | {"OPTIONS"}, path
        if "PATCH" not in documented:
            refused = await client.patch(url, json={})
            assert refused.status_code == 405
            assert set(refused.headers["allow"].split(", ")) == documented | {"OPTIONS"}, path


@pytest.mark.parametrize(
    ("field", "versions"),
    [
        (None, None),
        ("*", None),
        (' "7" ', 7),
        ('W/"7"', ()),
        ("7", ()),
        ('"3", W/"4", "7"', (3, 7)),
        ('W/"3", "7"', 7),
        ('"07"', ()),
        ('"-1"', ()),
        ('""', ()),
        ("garbage", ()),
        ('"7" x', ()),
        ('"7",,  "8"', (7, 8)),
        ('"a,b", "2"', 2),
    ],
)
def test_if_match_compares_strong_entity_tags(field, versions):
    assert matching_versions(field) == versions


def test_the_image_url_pattern_is_the_one_the_domain_checks(document):
    assert document["components"]["schemas"]["NewImage"]["properties"]["url"]["pattern"] == URL_PATTERN


@pytest.mark.parametrize(
    ("order", "status"), [("3", 200), ("3.0", 200), ("3e0", 200), ("2.5", 422), ('"3"', 422)]
)
async def test_an_integer_field_takes_integral_json_numbers_as_json_schema_does(client, order, status):
    created = await client.post("/categories", json={"name": "Reordered"})
    path = f"/categories/{created.json()['category_id']}/reorder"
    response = await client.put(
        path,
        content=b'{"new_display_order": ' + order.encode() + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert [e["field"] for e in response.json()["errors"]] == ["new_display_order"]
