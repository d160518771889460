"""`shopstream serve` with `SHOPSTREAM_AUTH=jwt` end to end for the storefront: a customer's tier upgrade,
an identity event, reaches the catalogue's own read model, and a Gold-only product appears to the
customer, in its detail and in the list, with its Gold price as `your_price`."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest

from tests.e2e.test_identity_serve import (
    CLEAN_EXIT_SECONDS,
    eventually,
    free_port,
    serve_env,
    serving,
    wait_ready,
)
from tests.tokens import AUDIENCE, ISSUER, SECRET, bearer, hs256

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return dict(response.json())


class TestServeStorefront:
    async def test_a_tier_upgrade_shows_a_restricted_product_and_the_tiers_price(
        self, create_database, redis_url, redis_prefix, tmp_path
    ):
        port = free_port()
        env = serve_env(
            create_database("e2e_storefront"),
            redis_url,
            f"{redis_prefix}-e2e-storefront-{uuid.uuid4().hex[:6]}",
            tmp_path,
            port,
        ) | {
            "SHOPSTREAM_AUTH": "jwt",
            "SHOPSTREAM_JWT_SECRET": SECRET,
            "SHOPSTREAM_JWT_ISSUER": ISSUER,
            "SHOPSTREAM_JWT_AUDIENCE": AUDIENCE,
        }
        seller = bearer(hs256("seller", str(uuid.uuid4())))
        admin = bearer(hs256("admin", "ops-1"))
        external_id = f"crm-{uuid.uuid4().hex[:8]}"
        me = bearer(hs256("customer", external_id))
        async with (
            serving(env, tmp_path / "serve.log") as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)

            sku = f"GOLD-{uuid.uuid4().hex[:8]}"
            body = {
                "sku": sku,
                "title": "Gold mug",
                "visibility": "Tier_Restricted",
                "restricted_to_tier": "Gold",
            }
            product_id = (await _ok(await http.post("/products", json=body, headers=seller), 201))[
                "product_id"
            ]
            product = f"/products/{product_id}"
            variant = {"variant_sku": f"{sku}-1", "base_price": "40.00", "currency": "EUR"}
            variant_id = (
                await _ok(await http.post(f"{product}/variants", json=variant, headers=seller), 201)
            )["variant_id"]
            await _ok(
                await http.put(
                    f"{product}/variants/{variant_id}/tier-price",
                    json={"tier": "Gold", "price": "31"},
                    headers=seller,
                )
            )
            await _ok(await http.put(f"{product}/activate", headers=seller))
            registered = await http.post(
                "/customers",
                json={
                    "external_id": external_id,
                    "email": f"{external_id}@example.com",
                    "first_name": "A",
                    "last_name": "B",
                },
                headers=me,
            )
            customer_id = (await _ok(registered, 201))["customer_id"]

            # As Standard: the product stays hidden, as an unknown id would be, and out of the list.
            await eventually(lambda: http.get(product, headers=seller), lambda b: b["status"] == "Active")
            hidden = await http.get(product, headers=me)
            assert hidden.status_code == 404, hidden.text
            cards = await _ok(await http.get("/products?limit=100", headers=me))
            assert product_id not in {c["product_id"] for c in cards["items"]}

            await _ok(
                await http.put(f"/customers/{customer_id}/tier", json={"new_tier": "Gold"}, headers=admin)
            )
            shown = await eventually(lambda: http.get(product, headers=me), lambda b: True)
            assert [v["your_price"] for v in shown["variants"]] == ["31.00"]
            cards = await _ok(await http.get("/products?limit=100", headers=me))
            (card,) = [c for c in cards["items"] if c["product_id"] == product_id]
            assert (card["min_price"], card["your_min_price"], card["your_max_price"]) == (
                "40.00",
                "31.00",
                "31.00",
            )
            anonymous = await http.get(product)
            assert anonymous.status_code == 404

            served.proc.send_signal(signal.SIGINT)
            try:
                code = await asyncio.wait_for(served.proc.wait(), CLEAN_EXIT_SECONDS)
            except TimeoutError:
                pytest.fail(f"serve still running {CLEAN_EXIT_SECONDS}s after SIGINT:\n{served.output()}")
            assert code == 0, served.output()
