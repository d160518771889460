"""The keys of personal data: `SHOPSTREAM_DATA_KEY`, else a key file readable by its owner only in the data
directory; a missing or wrong key stops the start with one line naming `SHOPSTREAM_DATA_KEY`;
`shopstream keys rotate` re-wraps every data key under the first key while the others still open them;
events an earlier release wrote in plain text are sealed at the next start."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from bus.sealing import kek_id
from contexts.identity.account import CloseAccount
from contexts.identity.erasure import ErasePersonalData
from shopstream.bootstrap import Messaging, prepare
from shopstream.datakeys import keyring_of
from shopstream.settings import ConfigurationError, Settings
from tests.identity.test_handlers import new_address, opened_payloads, registration

pytestmark = pytest.mark.anyio

KEY_A, KEY_B = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def cli(settings: Settings, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env = {k: v for k, v in env.items() if k != "SHOPSTREAM_DATA_KEY"} | settings.to_env() | environ
    env = {k: v for k, v in env.items() if v}
    return subprocess.run(
        [sys.executable, "-m", "shopstream.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def registered(settings: Settings, count: int = 2) -> list[str]:
    messaging = await Messaging.open(settings)
    try:
        ids = []
        for _ in range(count):
            command = registration()
            await messaging.bus.execute(command)
            await messaging.bus.execute(new_address(command.customer_id))
            ids.append(command.customer_id)
        return ids
    finally:
        await messaging.close()


async def keks(settings: Settings) -> set[str]:
    messaging = await Messaging.open(settings)
    try:
        rows = await messaging.pool_of("identity").fetch("SELECT DISTINCT data_kek FROM identity.customers")
        return {r["data_kek"] for r in rows}
    finally:
        await messaging.close()


async def readable(settings: Settings, customer_id: str) -> dict[str, object]:
    messaging = await Messaging.open(settings)
    try:
        first: dict[str, object] = msgspec.json.decode((await opened_payloads(messaging, customer_id))[0])
        return first
    finally:
        await messaging.close()


class TestConfiguration:
    @pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"x" * 16).decode(), f"{KEY_A},short"])
    def test_a_malformed_key_is_refused_naming_the_variable_and_never_shown(self, bad):
        with pytest.raises(ConfigurationError) as refused:
            Settings.from_env({"SHOPSTREAM_DATA_KEY": bad})
        assert "SHOPSTREAM_DATA_KEY" in str(refused.value) and bad not in str(refused.value)
        assert len(str(refused.value).splitlines()) == 1

    def test_the_key_is_hidden_in_the_settings(self):
        settings = Settings.from_env({"SHOPSTREAM_DATA_KEY": f"{KEY_A},{KEY_B}"})
        assert KEY_A not in repr(settings) and "data_key='<hidden>'" in repr(settings)
        assert keyring_of(settings).ids == (kek_id(base64.b64decode(KEY_A)), kek_id(base64.b64decode(KEY_B)))

    def test_without_it_a_key_file_is_made_for_its_owner_only_and_kept(self, tmp_path: Path):
        settings = Settings(data_dir=str(tmp_path / "data"))
        made = keyring_of(settings)
        path = tmp_path / "data" / "data.key"
        assert path.stat().st_mode & 0o777 == 0o600
        assert keyring_of(settings).current == made.current
        path.chmod(0o644)
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_DATA_KEY"):
            keyring_of(settings)


class TestStart:
    async def test_a_wrong_or_missing_key_stops_the_start_with_one_line(self, context_settings, tmp_path):
        settings = await context_settings("keys_wrong", data_key=KEY_A)
        await registered(settings, 1)
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_DATA_KEY"):
            await prepare(msgspec.structs.replace(settings, data_key=KEY_B))
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_DATA_KEY"):  # a fresh key file is no key
            await prepare(msgspec.structs.replace(settings, data_key=None, data_dir=str(tmp_path)))
        done = cli(settings, "migrate", SHOPSTREAM_DATA_KEY=KEY_B)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "SHOPSTREAM_DATA_KEY" in lines[0], done.stderr
        assert KEY_B not in done.stderr and KEY_A not in done.stderr
        await prepare(settings)  # the right key starts


class TestRotation:
    async def test_rewraps_every_data_key_under_the_first_key_then_the_old_one_can_go(self, context_settings):
        settings = await context_settings("keys_rotate", data_key=KEY_A)
        first, second = await registered(settings)
        before = await readable(settings, first)
        both = msgspec.structs.replace(settings, data_key=f"{KEY_B},{KEY_A}")
        assert await readable(both, first) == before  # during a rotation both keys open everything
        await registered(both, 1)  # a process already on the new key wraps with it

        done = cli(settings, "keys", "rotate", SHOPSTREAM_DATA_KEY=f"{KEY_B},{KEY_A}")
        assert done.returncode == 0, done.stderr
        assert await keks(settings) == {kek_id(base64.b64decode(KEY_B))}

        only_new = msgspec.structs.replace(settings, data_key=KEY_B)
        await prepare(only_new)
        assert await readable(only_new, first) == before
        assert (await readable(only_new, second))["customer_id"] == second
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_DATA_KEY"):
            await prepare(settings)  # the old key alone opens nothing any more

    async def test_with_the_key_file_a_new_key_goes_first_in_it(self, context_settings):
        settings = await context_settings("keys_rotate_file")
        (customer_id,) = await registered(settings, 1)
        old = keyring_of(settings).current
        done = cli(settings, "keys", "rotate")
        assert done.returncode == 0, done.stderr
        keyring = keyring_of(settings)
        assert keyring.ids[1:] == (old,) and keyring.current != old
        assert await keks(settings) == {keyring.current}
        assert (await readable(settings, customer_id))["first_name"] == "Ada"


class TestEarlierRelease:
    async def test_its_plain_text_events_are_sealed_at_start_and_read_as_before(self, context_settings):
        settings = await context_settings("keys_legacy", data_key=KEY_A)
        customer_id, closed_id = await registered(settings)
        messaging = await Messaging.open(settings)
        pool = messaging.pool_of("identity")
        try:
            await messaging.bus.execute(CloseAccount(customer_id=closed_id))
            # What the previous release left: plain payloads, and customers without a data key.
            plain = {cid: await opened_payloads(messaging, cid) for cid in (customer_id, closed_id)}
            for cid, payloads in plain.items():
                for version, payload in enumerate(payloads, start=1):
                    await pool.execute(
                        "UPDATE identity.outbox SET payload = $3::jsonb WHERE aggregate_id = $1"
                        " AND aggregate_version = $2",
                        cid, version, payload.decode(),
                    )  # fmt: skip
            await pool.execute(
                "UPDATE identity.customers SET data_kek = NULL, data_key = NULL WHERE id = ANY($1::text[])",
                [customer_id, closed_id],
            )
            assert await pool.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE payload::text LIKE '%Lovelace%'"
            )
            # Read as they are until sealed: a consumer meets them before the next start does.
            as_read = [msgspec.json.decode(p) for p in await opened_payloads(messaging, customer_id)]
            assert as_read == [msgspec.json.decode(p) for p in plain[customer_id]]
            # An erasure meanwhile blanks its customer's plain events.
            await messaging.bus.execute(ErasePersonalData(customer_id=closed_id))
            assert not await pool.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE aggregate_id = $1 AND payload::text LIKE '%Lovelace%'",
                closed_id,
            )
        finally:
            await messaging.close()

        await prepare(settings)
        messaging = await Messaging.open(settings)
        pool = messaging.pool_of("identity")
        try:
            assert not await pool.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE payload::text LIKE '%Lovelace%'"
            )
            keyless = await pool.fetch("SELECT id FROM identity.customers WHERE data_key IS NULL")
            assert [r["id"] for r in keyless] == [closed_id]  # the erased one stays without
            opened = [msgspec.json.decode(p) for p in await opened_payloads(messaging, customer_id)]
            assert opened == [msgspec.json.decode(p) for p in plain[customer_id]]
            first, added, *_ = [msgspec.json.decode(p) for p in await opened_payloads(messaging, closed_id)]
            assert (first["last_name"], first["phone"], added["street"]) == (
                "[erased]",
                None,
                "[erased]",
            )
        finally:
            await messaging.close()
