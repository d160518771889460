"""`GET /customers/{id}/export` and `DELETE /customers/{id}/personal-data` over HTTP (SPEC §11): the export
holds the write model, every identity read model and the event history with its personal fields opened;
the erasure answers 409 unless the account is Closed, blanks the reads and frees the e-mail address and
the external id, and the export afterwards shows the history's personal fields as erased."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps import eventually, until
from tests.identity.test_api import add_address, person, register
from tests.problems import assert_accepted, assert_problem

pytestmark = pytest.mark.anyio


async def exported(client: Any, customer_id: str, version: int) -> dict[str, Any]:
    """The export once every read model reflects `version`."""
    response = await until(
        client,
        f"/customers/{customer_id}/export",
        lambda body: (
            all((body[part] or {}).get("version", 0) >= version for part in ("customer_card", "address_book"))
            and body["lookup"] is not None
            and body["segment"] is not None
        ),
    )
    assert response.headers["etag"] == f'"{version}"'
    body: dict[str, Any] = response.json()
    return body


class TestExport:
    async def test_holds_the_write_model_the_read_models_and_the_opened_history(self, client):
        body = person()
        customer_id = await register(client, **body)
        await add_address(client, customer_id, street="221B Baker Street")
        document = await exported(client, customer_id, 2)
        assert document["customer_id"] == customer_id and document["personal_data_erased"] is False
        assert document["account"]["email"] == body["email"]
        assert document["account"]["addresses"][0]["street"] == "221B Baker Street"
        assert document["customer_card"]["phone"] == body["phone"]
        assert document["address_book"]["items"][0]["street"] == "221B Baker Street"
        assert document["lookup"]["external_id"] == body["external_id"]
        assert document["segment"] == {"tier": "Standard", "status": "Active"}
        registered, added = document["events"]
        assert registered["type"] == "identity.CustomerRegistered" and registered["aggregate_version"] == 1
        assert registered["payload"]["first_name"] == body["first_name"]
        assert registered["payload"]["date_of_birth"] == body["date_of_birth"]
        assert added["payload"]["street"] == "221B Baker Street"

    async def test_of_nobody_is_404(self, client):
        assert_problem(await client.get("/customers/7d1c2e5a-0000-4000-8000-000000000000/export"), 404)


class TestErasure:
    async def test_an_account_that_is_not_closed_is_409(self, client):
        customer_id = await register(client)
        assert_problem(await client.delete(f"/customers/{customer_id}/personal-data"), 409)
        await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"})
        assert_problem(await client.delete(f"/customers/{customer_id}/personal-data"), 409)

    async def test_blanks_every_read_and_frees_the_email_and_external_id(self, client):
        body = person()
        customer_id = await register(client, **body)
        await add_address(client, customer_id)
        assert_accepted(await client.put(f"/customers/{customer_id}/close"), 3)
        assert_accepted(await client.delete(f"/customers/{customer_id}/personal-data"), 4)
        assert_accepted(await client.delete(f"/customers/{customer_id}/personal-data"), 4)  # no change

        card = (await eventually(client, f"/customers/{customer_id}", 4)).json()
        assert (card["email"], card["first_name"], card["phone"], card["date_of_birth"]) == (
            "[erased]", "[erased]", None, None,
        )  # fmt: skip
        assert (card["status"], card["tier"]) == ("Closed", "Standard")
        assert (await eventually(client, f"/customers/{customer_id}/addresses", 4)).json()["items"] == []
        assert_problem(await client.get("/customers", params={"email": body["email"]}), 404)

        document = (await client.get(f"/customers/{customer_id}/export")).json()
        assert document["personal_data_erased"] is True and document["lookup"] is None
        assert document["account"]["email"] == "[erased]" and document["account"]["addresses"] == []
        payloads = [e["payload"] for e in document["events"]]
        assert payloads[0]["email"] == "[erased]" and payloads[0]["phone"] is None
        assert payloads[1]["street"] == "[erased]" and payloads[1]["geo_lat"] is None
        assert document["events"][-1]["type"] == "identity.PersonalDataErased"
        assert str(body["email"]) not in str(document) and str(body["phone"]) not in str(document)

        again = await client.post("/customers", json=body)
        assert again.status_code == 201, again.text
        newcomer = again.json()["customer_id"]
        by_external = await until(
            client, f"/customers?external_id={body['external_id']}", lambda b: b["customer_id"] == newcomer
        )
        assert by_external.json()["email"] == body["email"]
