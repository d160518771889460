"""The catalogue's customer tiers, fed by identity's events through its own consumer group on identity's
streams: registrations, upgrades and closures arrive; other identity events change nothing; a rebuild
from identity's event log yields the same rows; `projections status` reports it as reading identity."""

from __future__ import annotations

from functools import partial

import asyncpg
import pytest

from bus.conformance import NonConformingContext
from bus.module import ContextModule
from bus.rebuild import Rebuild
from bus.versions import status
from contexts import catalogue, identity
from contexts.identity.account import CloseAccount, SuspendAccount
from contexts.identity.email_change import ChangeEmail
from contexts.identity.tier import UpgradeTier
from shopstream.bootstrap import Messaging, Resources
from tests.identity.test_handlers import new_address, registration
from tests.messaging.helpers import running, wait_until

pytestmark = pytest.mark.anyio

TIERS = "catalogue.customer_tiers"


@pytest.fixture(scope="module")
def contexts() -> list[ContextModule]:
    return [identity.module, catalogue.module]


async def _rows(pool: asyncpg.Pool, customer_ids: list[str]) -> dict[str, tuple[str, str, str, int]]:
    rows = await pool.fetch(
        "SELECT customer_id, external_id, tier, status, version FROM catalogue.customer_tiers"
        " WHERE customer_id = ANY($1::text[])",
        customer_ids,
    )
    return {r["customer_id"]: (r["external_id"], r["tier"], r["status"], r["version"]) for r in rows}


async def _applied(pool: asyncpg.Pool, customer_ids: list[str]) -> bool:
    """Every event of these customers in identity's log is applied by the tiers' consumer."""
    pending = await pool.fetchval(
        "SELECT count(*) FROM identity.outbox o LEFT JOIN bus.consumer_positions p"
        " ON p.consumer = $1 AND p.aggregate_id = o.aggregate_id"
        " WHERE o.aggregate_id = ANY($2::text[]) AND o.aggregate_version > coalesce(p.version, 0)",
        TIERS,
        customer_ids,
    )
    return bool(pending == 0)


class TestCustomerTiers:
    async def test_registrations_upgrades_and_closures_arrive_and_a_rebuild_yields_the_same(self, messaging):
        pool = messaging.pool_of("catalogue")
        standard, gold, closed, suspended = (registration() for _ in range(4))
        for command in (standard, gold, closed, suspended):
            await messaging.bus.execute(command)
        await messaging.bus.execute(UpgradeTier(customer_id=gold.customer_id, new_tier="Silver"))
        await messaging.bus.execute(new_address(gold.customer_id))  # nothing the catalogue keeps
        await messaging.bus.execute(UpgradeTier(customer_id=gold.customer_id, new_tier="Gold"))
        await messaging.bus.execute(UpgradeTier(customer_id=closed.customer_id, new_tier="Platinum"))
        await messaging.bus.execute(CloseAccount(customer_id=closed.customer_id))
        await messaging.bus.execute(SuspendAccount(customer_id=suspended.customer_id, reason="chargeback"))
        await messaging.bus.execute(
            ChangeEmail(customer_id=standard.customer_id, email=f"new.{standard.email}")
        )
        ids = [c.customer_id for c in (standard, gold, closed, suspended)]

        async with running(messaging.supervisor()):
            await wait_until(partial(_applied, pool, ids))
        expected = {
            standard.customer_id: (standard.external_id, "Standard", "Active", 1),  # nor the e-mail change
            gold.customer_id: (gold.external_id, "Gold", "Active", 4),  # the address left no trace
            closed.customer_id: (closed.external_id, "Platinum", "Closed", 3),
            suspended.customer_id: (suspended.external_id, "Standard", "Active", 1),  # keeps its tier
        }
        assert await _rows(pool, ids) == expected

        inbox = messaging.inboxes[TIERS]
        assert inbox.outbox.context == "identity"
        assert (await Rebuild(pool, inbox, batch=2).run()).swapped
        assert await _rows(pool, ids) == expected

    async def test_projections_status_lists_it_as_reading_identity(self, messaging):
        reported = await status(messaging.pool_of("catalogue"), messaging.inboxes[TIERS])
        assert (reported.name, reported.context) == (TIERS, "identity")
        assert messaging.owners[TIERS] == "catalogue"

    async def test_a_core_serving_the_catalogue_without_identity_refuses(self, messaging):
        only = Resources(messaging.resources.settings, {"catalogue": messaging.pool_of("catalogue")})
        with pytest.raises(NonConformingContext, match="reads identity's events, but identity is not among"):
            Messaging(only, [catalogue.module], messaging.config)
