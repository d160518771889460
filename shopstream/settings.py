"""Runtime configuration, read once from the environment into one frozen Struct."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from bus.config import BusConfig
from bus.errors import split_msgspec_path
from bus.sealing import KEY_BYTES
from shopstream.contexts import CONTEXTS, context_name

PostgresUrl = Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?://\S+$")]
ModulePath = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")]
RedisUrl = Annotated[str, msgspec.Meta(pattern=r"^(rediss?|unix)://\S+$")]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# The rest of the OTEL_* variables (sampler, resource, endpoint, headers) are read by the SDK itself.
_EXPORTER = r"(none|console|otlp|otlp_proto_http|otlp_proto_grpc)"
TracesExporter = Annotated[str, msgspec.Meta(pattern=rf"^{_EXPORTER}( *, *{_EXPORTER})*$")]
OtlpProtocol = Literal["http/protobuf", "grpc"]
RateLimit = Annotated[
    str, msgspec.Meta(pattern=r"(?i)^ *(off|[1-9][0-9]{0,8} */ *(second|minute|hour|day)) *$")
]


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of a ShopStream process; field names are the environment variables."""

    database_url: PostgresUrl | None = msgspec.field(default=None, name="DATABASE_URL")
    # The same database reached without a pooler in between, for what needs a session of its own
    # (LISTEN, session advisory locks, migrations); unset, the URL above serves those too.
    database_direct_url: PostgresUrl | None = msgspec.field(default=None, name="DATABASE_DIRECT_URL")
    # The contexts this process serves (module paths), and the database of each that has one of its own:
    # `<NAME>_DATABASE_URL` (and `<NAME>_DATABASE_DIRECT_URL`), read for every context in the list.
    contexts: tuple[ModulePath, ...] = msgspec.field(default=CONTEXTS, name="SHOPSTREAM_CONTEXTS")
    context_database_urls: dict[str, str] = msgspec.field(default_factory=dict, name="-")
    context_database_direct_urls: dict[str, str] = msgspec.field(default_factory=dict, name="-direct")
    redis_url: RedisUrl | None = msgspec.field(default=None, name="REDIS_URL")
    redis_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = msgspec.field(
        default="shopstream", name="SHOPSTREAM_REDIS_PREFIX"
    )
    data_dir: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        default=".shopstream", name="SHOPSTREAM_DATA_DIR"
    )
    host: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(default="127.0.0.1", name="HOST")
    port: Port = msgspec.field(default=8000, name="PORT")
    log_level: LogLevel = msgspec.field(default="INFO", name="LOG_LEVEL")
    log_format: Literal["text", "json"] = msgspec.field(default="text", name="LOG_FORMAT")
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = msgspec.field(
        default=10, name="SHOPSTREAM_DB_POOL_SIZE"
    )
    # Prepared statements asyncpg keeps per pooled connection; 0 behind a pooler in transaction mode
    # (PgBouncer before 1.21, or with max_prepared_statements = 0), where a statement prepared in one
    # transaction is gone in the next.
    db_statement_cache_size: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = msgspec.field(
        default=100, name="SHOPSTREAM_DB_STATEMENT_CACHE_SIZE"
    )
    ready_timeout: Positive = msgspec.field(default=1.0, name="SHOPSTREAM_READY_TIMEOUT")
    partitions: Annotated[int, msgspec.Meta(ge=1, le=256)] = msgspec.field(
        default=4, name="SHOPSTREAM_STREAM_PARTITIONS"
    )
    retry_base: Positive = msgspec.field(default=0.2, name="SHOPSTREAM_RETRY_BASE")
    retry_cap: Positive = msgspec.field(default=30.0, name="SHOPSTREAM_RETRY_CAP")
    retry_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = msgspec.field(
        default=8, name="SHOPSTREAM_RETRY_ATTEMPTS"
    )
    reclaim_idle: Positive = msgspec.field(default=60.0, name="SHOPSTREAM_RECLAIM_IDLE")
    # After a relay claim or consumer read short of a batch, pause this long (seconds; 0: never) so that
    # the next finds more: moderate load is handled in batches as a backlog is.
    linger: Annotated[float, msgspec.Meta(ge=0, le=1)] = msgspec.field(
        default=0.005, name="SHOPSTREAM_LINGER"
    )
    # Projections consumed by a Redis consumer group of their own instead of their context's shared one.
    isolated_projections: tuple[
        Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")], ...
    ] = msgspec.field(default=(), name="SHOPSTREAM_ISOLATED_PROJECTIONS")
    reconcile_grace: Positive = msgspec.field(default=30.0, name="SHOPSTREAM_RECONCILE_GRACE")
    lease_ttl: Positive = msgspec.field(default=10.0, name="SHOPSTREAM_LEASE_TTL")
    command_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = msgspec.field(
        default=3, name="SHOPSTREAM_COMMAND_ATTEMPTS"
    )
    max_mailboxes: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(
        default=10_000, name="SHOPSTREAM_MAX_MAILBOXES"
    )
    mailbox_capacity: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(
        default=100, name="SHOPSTREAM_MAILBOX_CAPACITY"
    )
    # A secret: shown nowhere (errors, logs, `status`); at least 16 characters so it cannot be guessed.
    admin_token: Annotated[str, msgspec.Meta(min_length=16, pattern=r"^\S+$")] | None = msgspec.field(
        default=None, name="SHOPSTREAM_ADMIN_TOKEN"
    )
    # SPEC §8: `none` serves everyone as admin, so `serve`/`api` allow it only on a loopback HOST
    # unless SHOPSTREAM_AUTH_ALLOW_PUBLIC says a gateway in front checks the callers.
    auth: Literal["jwt", "none"] = msgspec.field(default="none", name="SHOPSTREAM_AUTH")
    auth_allow_public: bool = msgspec.field(default=False, name="SHOPSTREAM_AUTH_ALLOW_PUBLIC")
    # A secret like the admin token; 32 characters at least (256 bits for HS256).
    jwt_secret: Annotated[str, msgspec.Meta(min_length=32, pattern=r"^\S+$")] | None = msgspec.field(
        default=None, name="SHOPSTREAM_JWT_SECRET"
    )
    jwt_jwks: Annotated[str, msgspec.Meta(min_length=1)] | None = msgspec.field(
        default=None, name="SHOPSTREAM_JWT_JWKS"
    )
    jwt_issuer: Annotated[str, msgspec.Meta(min_length=1)] | None = msgspec.field(
        default=None, name="SHOPSTREAM_JWT_ISSUER"
    )
    jwt_audience: Annotated[str, msgspec.Meta(min_length=1)] | None = msgspec.field(
        default=None, name="SHOPSTREAM_JWT_AUDIENCE"
    )
    jwt_leeway: Annotated[float, msgspec.Meta(ge=0, le=300)] = msgspec.field(
        default=30.0, name="SHOPSTREAM_JWT_LEEWAY"
    )
    # The longest a token may still be valid for when it is first seen (seconds; default a day).
    jwt_max_lifetime: Annotated[float, msgspec.Meta(ge=60, le=31_536_000)] = msgspec.field(
        default=86_400.0, name="SHOPSTREAM_JWT_MAX_LIFETIME"
    )
    # Requests per caller (token `sub`, else client address), shared by every API process through Redis:
    # `N/second|minute|hour|day` or `off`; reads and writes (POST/PUT/PATCH/DELETE) count separately.
    rate_limit_reads: RateLimit = msgspec.field(default="5000/second", name="SHOPSTREAM_RATE_LIMIT_READS")
    rate_limit_writes: RateLimit = msgspec.field(default="5000/second", name="SHOPSTREAM_RATE_LIMIT_WRITES")
    # Key-encryption keys of personal data (README "Personal data"): base64 keys of 32 bytes, comma-separated,
    # the first wrapping new data keys; unset: the key file in SHOPSTREAM_DATA_DIR (`shopstream.datakeys`).
    data_key: Annotated[str, msgspec.Meta(min_length=1)] | None = msgspec.field(
        default=None, name="SHOPSTREAM_DATA_KEY"
    )
    traces_exporter: TracesExporter = msgspec.field(default="none", name="OTEL_TRACES_EXPORTER")
    otlp_protocol: OtlpProtocol | None = msgspec.field(default=None, name="OTEL_EXPORTER_OTLP_PROTOCOL")
    otlp_traces_protocol: OtlpProtocol | None = msgspec.field(
        default=None, name="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; an empty variable counts as unset."""
        environ = os.environ if environ is None else environ
        names = {f.encode_name for f in msgspec.structs.fields(cls) if not f.encode_name.startswith("-")}
        raw: dict[str, object] = {}
        for name in names:
            value = environ.get(name, "").strip()
            if value:
                raw[name] = (
                    value.upper() if name == "LOG_LEVEL" else value.lower() if name in _LOWERED else value
                )
        for listed in ("SHOPSTREAM_CONTEXTS", "SHOPSTREAM_ISOLATED_PROJECTIONS"):
            if listed in raw:
                raw[listed] = [p.strip() for p in str(raw[listed]).split(",") if p.strip()]
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(_describe(exc, raw)) from None
        if settings.data_key:
            parse_keys(settings.data_key)  # a malformed key stops the start here, with one line
        for path in settings.contexts:
            name = context_name(path)
            for variable, urls in (
                (f"{name.upper()}_DATABASE_URL", settings.context_database_urls),
                (f"{name.upper()}_DATABASE_DIRECT_URL", settings.context_database_direct_urls),
            ):
                if url := environ.get(variable, "").strip():
                    try:
                        urls[name] = msgspec.convert(url, PostgresUrl)
                    except msgspec.ValidationError as exc:
                        raise ConfigurationError(_describe(exc, {variable: url}, variable)) from None
        settings._check_direct_urls()
        return settings

    def _check_direct_urls(self) -> None:
        """A direct URL goes with the pooled URL of its database, and one database has one direct URL."""
        given: list[tuple[str, str | None, str, str | None]] = [
            ("DATABASE_DIRECT_URL", self.database_direct_url, "DATABASE_URL", self.database_url)
        ]
        for name, own in self.context_database_direct_urls.items():
            pooled = self.context_database_urls.get(name)
            given.append((f"{name.upper()}_DATABASE_DIRECT_URL", own, f"{name.upper()}_DATABASE_URL", pooled))
        seen: dict[str, tuple[str, str]] = {}  # pooled URL -> (its direct URL, the variable naming it)
        for variable, direct, pooled_variable, pooled in given:
            if direct is None:
                continue
            if pooled is None:
                raise ConfigurationError(
                    f"configuration error: {variable} is set but {pooled_variable} is not"
                    " (a direct URL reaches the database its pooled URL names)"
                )
            first, named_by = seen.setdefault(pooled, (direct, variable))
            if first != direct:
                raise ConfigurationError(
                    f"configuration error: {variable} and {named_by} give one pooled database two direct URLs"
                )

    def to_env(self) -> dict[str, str]:
        """The environment from which `from_env()` reads these settings back (unset ones absent)."""
        env: dict[str, str] = {}
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            if value is not None and not field.encode_name.startswith("-"):  # "-…": read per context
                env[field.encode_name] = ",".join(value) if isinstance(value, tuple) else str(value)
        return (
            env
            | {f"{name.upper()}_DATABASE_URL": url for name, url in self.context_database_urls.items()}
            | {
                f"{name.upper()}_DATABASE_DIRECT_URL": url
                for name, url in self.context_database_direct_urls.items()
            }
        )

    def __repr__(self) -> str:
        """The fields, with secrets masked: a logged Settings must not leak the admin token, the JWT
        secret or a password in a database or Redis URL."""
        shown = {f.name: getattr(self, f.name) for f in msgspec.structs.fields(self)}
        for secret in ("admin_token", "jwt_secret", "data_key"):
            if shown[secret]:
                shown[secret] = "<hidden>"
        for name in ("database_url", "database_direct_url", "redis_url"):
            shown[name] = without_password(shown[name])
        for name in ("context_database_urls", "context_database_direct_urls"):
            shown[name] = {k: without_password(v) for k, v in getattr(self, name).items()}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def bus_config(self) -> BusConfig:
        return BusConfig(
            redis_prefix=self.redis_prefix,
            partitions=self.partitions,
            retry_base=self.retry_base,
            retry_cap=self.retry_cap,
            retry_attempts=self.retry_attempts,
            reclaim_idle=self.reclaim_idle,
            linger=self.linger,
            isolated=self.isolated_projections,
            reconcile_grace=self.reconcile_grace,
            reconcile_interval=min(10.0, self.reconcile_grace / 3),
            lease_ttl=self.lease_ttl,
            command_attempts=self.command_attempts,
            max_mailboxes=self.max_mailboxes,
            mailbox_capacity=self.mailbox_capacity,
        )

    def database_url_for(self, context: str) -> str | None:
        """The database a context lives in: its own URL when given, else the shared one."""
        return self.context_database_urls.get(context) or self.database_url

    def direct_database_url_for(self, context: str) -> str | None:
        """The context's database reached without a pooler, for LISTEN, session advisory locks and
        migrations: the direct URL given for its pooled URL, else the pooled URL itself."""
        url = self.database_url_for(context)
        return self.direct_urls().get(url, url) if url else None

    def direct_urls(self) -> dict[str, str]:
        """Each pooled database URL that has a direct one given, mapped to it."""
        directs = {
            self.context_database_urls[name]: direct
            for name, direct in self.context_database_direct_urls.items()
            if name in self.context_database_urls
        }
        if self.database_url and self.database_direct_url:
            directs.setdefault(self.database_url, self.database_direct_url)
        return directs

    @property
    def context_names(self) -> tuple[str, ...]:
        return tuple(context_name(path) for path in self.contexts)


def parse_keys(text: str, source: str = "SHOPSTREAM_DATA_KEY") -> list[bytes]:
    """The keys of a comma- or line-separated list of base64 keys; one line naming `source` if bad."""
    keys = []
    for number, item in enumerate(text.replace("\n", ",").split(","), start=1):
        if not item.strip():
            continue
        try:
            key = base64.b64decode(item.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigurationError(
                f"configuration error: {source}: key {number} is not {KEY_BYTES} bytes in base64"
                " (make one with: openssl rand -base64 32)"
            )
        keys.append(key)
    if not keys:
        raise ConfigurationError(f"configuration error: {source} holds no key")
    return keys


def without_password(url: str | None) -> str | None:
    """The URL with any password in it replaced by `<hidden>`."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}<hidden>@{host}"))


_SECRETS = frozenset({"SHOPSTREAM_ADMIN_TOKEN", "SHOPSTREAM_JWT_SECRET", "SHOPSTREAM_DATA_KEY"})
_LOWERED = frozenset({"LOG_FORMAT", "SHOPSTREAM_AUTH"})


def _describe(exc: msgspec.ValidationError, raw: Mapping[str, object], name: str | None = None) -> str:
    message, path = split_msgspec_path(str(exc))
    name = name or (path or "?").split("[")[0]
    shown = raw.get(name, "")
    if "url" in name.lower() or name in _SECRETS:
        shown = "<hidden>"  # URLs may carry passwords
    return f"configuration error: {name}={shown!r} is invalid: {message or exc}"
