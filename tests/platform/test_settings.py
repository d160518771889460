"""Settings come from the environment; a bad value fails with one line naming the variable."""

import os
import socket
import subprocess
import sys

import pytest

from shopstream.settings import ConfigurationError, Settings


def test_defaults_need_no_environment():
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8000, ".shopstream")
    assert settings.database_url is None and settings.redis_url is None


def test_values_are_read_and_converted():
    settings = Settings.from_env(
        {"PORT": "9001", "LOG_LEVEL": "debug", "REDIS_URL": "redis://localhost:6379/2", "UNRELATED": "x"}
    )
    assert settings.port == 9001
    assert settings.log_level == "DEBUG"
    assert settings.redis_url == "redis://localhost:6379/2"


def test_empty_variable_counts_as_unset():
    assert Settings.from_env({"DATABASE_URL": "  "}).database_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://localhost/shop"),
        ("IDENTITY_DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://localhost:6379"),
        ("SHOPSTREAM_REDIS_PREFIX", "has spaces"),
        ("SHOPSTREAM_DB_POOL_SIZE", "0"),
        ("SHOPSTREAM_DB_STATEMENT_CACHE_SIZE", "-1"),
        ("SHOPSTREAM_DB_STATEMENT_CACHE_SIZE", "off"),
        ("DATABASE_DIRECT_URL", "pgbouncer:6432"),
        ("CATALOGUE_DATABASE_DIRECT_URL", "not a url"),
    ],
)
def test_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert name in message
    assert "\n" not in message


def test_url_values_are_not_echoed():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"DATABASE_URL": "mysql://user:secret@host/db"})
    assert "secret" not in str(raised.value)


def test_context_database_falls_back_to_the_shared_one():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://h/shared", "CATALOGUE_DATABASE_URL": "postgresql://h/catalogue"}
    )
    assert settings.database_url_for("identity") == "postgresql://h/shared"
    assert settings.database_url_for("catalogue") == "postgresql://h/catalogue"


def test_direct_urls_fall_back_to_the_pooled_ones():
    pooled = {
        "DATABASE_URL": "postgresql://bouncer/shared",
        "CATALOGUE_DATABASE_URL": "postgresql://bouncer/cat",
    }
    settings = Settings.from_env(pooled)
    assert settings.direct_database_url_for("identity") == "postgresql://bouncer/shared"
    assert settings.direct_database_url_for("catalogue") == "postgresql://bouncer/cat"
    settings = Settings.from_env(
        pooled
        | {
            "DATABASE_DIRECT_URL": "postgresql://db/shared",
            "CATALOGUE_DATABASE_DIRECT_URL": "postgresql://db/cat",
        }
    )
    assert settings.database_url_for("identity") == "postgresql://bouncer/shared"
    assert settings.direct_database_url_for("identity") == "postgresql://db/shared"
    assert settings.direct_database_url_for("catalogue") == "postgresql://db/cat"
    assert Settings.from_env(settings.to_env()) == settings


def test_a_context_in_the_shared_database_uses_its_direct_url():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://bouncer/shared",
            "DATABASE_DIRECT_URL": "postgresql://db/shared",
            "IDENTITY_DATABASE_URL": "postgresql://bouncer/shared",
        }
    )
    assert settings.direct_database_url_for("identity") == "postgresql://db/shared"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DATABASE_DIRECT_URL": "postgresql://db/shop"}, "DATABASE_DIRECT_URL"),
        (
            {
                "DATABASE_URL": "postgresql://bouncer/shop",
                "IDENTITY_DATABASE_DIRECT_URL": "postgresql://db/id",
            },
            "IDENTITY_DATABASE_DIRECT_URL",
        ),
        (
            {
                "DATABASE_URL": "postgresql://bouncer/shop",
                "DATABASE_DIRECT_URL": "postgresql://db/shop",
                "IDENTITY_DATABASE_URL": "postgresql://bouncer/shop",
                "IDENTITY_DATABASE_DIRECT_URL": "postgresql://db/elsewhere",
            },
            "IDENTITY_DATABASE_DIRECT_URL",
        ),
    ],
)
def test_a_direct_url_without_its_pooled_one_or_at_odds_with_another_is_refused(environ, named):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)
    message = str(raised.value)
    assert message.startswith("configuration error: ") and named in message and "\n" not in message


def test_the_statement_cache_is_on_unless_turned_off():
    assert Settings.from_env({}).db_statement_cache_size == 100
    assert Settings.from_env({"SHOPSTREAM_DB_STATEMENT_CACHE_SIZE": "0"}).db_statement_cache_size == 0


def test_cli_refuses_bad_configuration_with_one_line(monkeypatch, capsys):
    from shopstream.cli import main

    monkeypatch.setenv("PORT", "-1")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("configuration error: PORT")
    assert len(err.splitlines()) == 1


def test_the_admin_token_is_never_echoed():
    short = "s3cr3t-short"
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"SHOPSTREAM_ADMIN_TOKEN": short})
    assert "SHOPSTREAM_ADMIN_TOKEN" in str(refused.value) and short not in str(refused.value)
    token = "a-long-enough-admin-token"
    settings = Settings.from_env({"SHOPSTREAM_ADMIN_TOKEN": token})
    assert settings.admin_token == token
    assert token not in repr(settings) and "admin_token='<hidden>'" in repr(settings)


def test_passwords_in_urls_are_never_shown():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://shop:pg-secret@db:5432/shop",
            "IDENTITY_DATABASE_URL": "postgresql://id:id-secret@db/identity",
            "DATABASE_DIRECT_URL": "postgresql://shop:direct-secret@db-primary:5432/shop",
            "IDENTITY_DATABASE_DIRECT_URL": "postgresql://id:id-direct-secret@db-primary/identity",
            "REDIS_URL": "redis://:redis-secret@cache:6379/0",
        }
    )
    shown = repr(settings)
    assert "pg-secret" not in shown and "id-secret" not in shown and "redis-secret" not in shown
    assert "direct-secret" not in shown
    assert "postgresql://shop:<hidden>@db:5432/shop" in shown and "redis://:<hidden>@cache:6379/0" in shown
    assert settings.database_url == "postgresql://shop:pg-secret@db:5432/shop"  # only the repr hides it


def test_a_worker_on_a_taken_metrics_port_stops_with_one_line_naming_it(settings):
    with socket.socket() as taken:
        taken.bind((settings.host, 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")} | settings.to_env()
        done = subprocess.run(
            [sys.executable, "-m", "shopstream.cli", "worker", "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"shopstream: --metrics-port {port} on {settings.host} cannot be served")
    assert "Traceback" not in done.stderr
