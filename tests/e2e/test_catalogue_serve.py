"""`shopstream serve` end to end for the catalogue: a category tree and a priced, pictured, active product
written over HTTP reach every catalogue read model, and Ctrl-C stops the process cleanly."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

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

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

READ_TIMEOUT = 15.0


async def create(http: httpx.AsyncClient, path: str, body: dict[str, Any], key: str) -> str:
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()[key]


async def change(http: httpx.AsyncClient, method: str, path: str, version: int, **kwargs: Any) -> None:
    response = await http.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "version": version}
    assert response.headers["etag"] == f'"{version}"'


class TestServeCatalogue:
    async def test_writes_reach_the_read_models_and_ctrl_c_exits_cleanly(
        self, create_database, redis_url, redis_prefix, tmp_path
    ):
        port = free_port()
        env = serve_env(
            create_database("e2e_catalogue"),
            redis_url,
            f"{redis_prefix}-e2e-catalogue-{uuid.uuid4().hex[:6]}",
            tmp_path,
            port,
        )
        async with (
            serving(env, tmp_path / "serve.log") as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)

            root = await create(http, "/categories", {"name": "Clothing"}, "category_id")
            middle = await create(
                http, "/categories", {"name": "Tops", "parent_category_id": root}, "category_id"
            )
            leaf = await create(
                http, "/categories", {"name": "T-shirts", "parent_category_id": middle}, "category_id"
            )

            sku = f"TEE-{uuid.uuid4().hex[:8]}"
            listed = await http.post(
                "/products",
                json={"sku": sku, "title": "Organic tee", "brand": "Northwind", "category_id": leaf},
            )
            assert listed.status_code == 201, listed.text
            product_id = listed.json()["product_id"]
            assert listed.headers["location"] == f"/products/{product_id}"
            assert listed.json()["version"] == 1
            product = f"/products/{product_id}"

            small = await create(
                http, f"{product}/variants",
                {"variant_sku": f"{sku}-S", "base_price": "24.90", "currency": "EUR", "attributes": {"size": "S"}},
                "variant_id",
            )  # fmt: skip
            large = await create(
                http, f"{product}/variants", {"variant_sku": f"{sku}-L", "base_price": 29.9, "currency": "EUR"},
                "variant_id",
            )  # fmt: skip
            await change(
                http,
                "PUT",
                f"{product}/variants/{small}/tier-price",
                4,
                json={"tier": "Gold", "price": "19.90"},
            )
            image = await create(
                http, f"{product}/images", {"url": "https://img.example.com/tee.jpg"}, "image_id"
            )
            await change(
                http, "PUT", f"{product}/variants/{large}/price", 6,
                json={"base_price": "21.50"}, headers={"If-Match": '"5"'},
            )  # fmt: skip
            await change(http, "PUT", f"{product}/activate", 7)
            await change(http, "PUT", f"/categories/{root}", 2, json={"name": "Apparel"})

            detail = await eventually(lambda: http.get(product), lambda b: b["version"] == 7, READ_TIMEOUT)
            assert (detail["sku"], detail["status"], detail["category_id"]) == (sku, "Active", leaf)
            assert [(v["variant_id"], v["base_price"], v["tier_prices"]) for v in detail["variants"]] == [
                (small, "24.90", {"Gold": "19.90"}),
                (large, "21.50", {}),
            ]
            assert {v["currency"] for v in detail["variants"]} == {"EUR"}
            assert [(i["image_id"], i["is_primary"]) for i in detail["images"]] == [(image, True)]
            assert (await http.get(product)).headers["etag"] == '"7"'

            cards = await eventually(
                lambda: http.get("/products", params={"category_id": leaf}),
                lambda b: [c["version"] for c in b["items"]] == [7],
                READ_TIMEOUT,
            )
            (card,) = cards["items"]
            assert card["product_id"] == product_id
            assert (card["min_price"], card["max_price"], card["currency"]) == ("21.50", "24.90", "EUR")
            assert (card["variant_count"], card["status"]) == (2, "Active")
            assert card["primary_image_url"] == "https://img.example.com/tee.jpg"
            assert cards["next_cursor"] is None

            history = await eventually(
                lambda: http.get(f"{product}/price-history"), lambda b: b["version"] == 7, READ_TIMEOUT
            )
            assert [
                (c["variant_id"], c["previous_price"], c["new_price"], c["currency"])
                for c in history["items"]
            ] == [(large, "29.90", "21.50", "EUR")]

            node = await eventually(
                lambda: http.get(f"/categories/{leaf}"),
                lambda b: b["breadcrumb"][0] == "Apparel" and b["product_count"] == 1,
                READ_TIMEOUT,
            )
            assert node["breadcrumb"] == ["Apparel", "Tops", "T-shirts"]
            assert (node["level"], node["parent_category_id"], node["is_active"], node["version"]) == (
                2,
                middle,
                True,
                1,
            )

            served.proc.send_signal(signal.SIGINT)
            try:
                code = await asyncio.wait_for(served.proc.wait(), CLEAN_EXIT_SECONDS)
            except TimeoutError:
                pytest.fail(f"serve still running {CLEAN_EXIT_SECONDS}s after SIGINT:\n{served.output()}")
            assert code == 0, served.output()
            assert f"127.0.0.1:{port}" in served.output()
