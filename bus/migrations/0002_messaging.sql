-- The messaging core's tables: consumer tracking, parked events, dead letters, idempotency records,
-- reconciler marks; and bus.create_outbox(schema), which gives a context its outbox (= event log).

CREATE TABLE bus.consumer_positions (
    consumer     text   NOT NULL,
    aggregate_id text   NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (consumer, aggregate_id)
);

CREATE TABLE bus.dead_letters (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer          text        NOT NULL,
    context           text        NOT NULL,
    event_id          uuid        NOT NULL,
    event_type        text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    envelope          jsonb       NOT NULL,
    error             text        NOT NULL,
    attempts          integer     NOT NULL,
    first_failed_at   timestamptz NOT NULL,
    last_failed_at    timestamptz NOT NULL,
    UNIQUE (consumer, event_id)
);
CREATE INDEX dead_letters_aggregate ON bus.dead_letters (consumer, aggregate_id);

-- Later events of an aggregate whose earlier event is a dead letter wait here, in order.
CREATE TABLE bus.parked (
    consumer          text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    envelope          jsonb       NOT NULL,
    parked_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, aggregate_id, aggregate_version)
);

CREATE TABLE bus.idempotency_keys (
    key         text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    outcome     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at ON bus.idempotency_keys (created_at);

-- Events published before this instant were all applied (or dead-lettered) by the consumer.
CREATE TABLE bus.reconciler_marks (
    consumer        text        PRIMARY KEY,
    published_after timestamptz NOT NULL
);

CREATE FUNCTION bus.create_outbox(ctx text) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($ddl$
        CREATE TABLE %1$I.outbox (
            position          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id          uuid        NOT NULL UNIQUE,
            type              text        NOT NULL,
            schema_version    integer     NOT NULL,
            aggregate_type    text        NOT NULL,
            aggregate_id      text        NOT NULL,
            aggregate_version bigint      NOT NULL,
            occurred_at       timestamptz NOT NULL,
            payload           jsonb       NOT NULL,
            headers           jsonb       NOT NULL,
            published_at      timestamptz,
            UNIQUE (aggregate_id, aggregate_version)
        );
        CREATE INDEX outbox_unpublished ON %1$I.outbox (position) WHERE published_at IS NULL;
        CREATE INDEX outbox_published_at ON %1$I.outbox (published_at);
        CREATE FUNCTION %1$I.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN PERFORM pg_notify('shopstream_outbox', %2$L); RETURN NULL; END
        $body$;
        -- One notification per inserting statement, sent on commit: the relay wakes on commit.
        CREATE TRIGGER outbox_notify AFTER INSERT ON %1$I.outbox
            FOR EACH STATEMENT EXECUTE FUNCTION %1$I.outbox_notify();
    $ddl$, ctx, ctx);
END
$fn$;
