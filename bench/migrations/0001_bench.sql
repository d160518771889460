-- The bench context: an outbox (= event log) and one read model that upserts a row per event.
CREATE SCHEMA bench;
SELECT bus.create_outbox('bench');

-- Kept by the consumer under test.
CREATE TABLE bench.items (
    id            text        PRIMARY KEY,
    version       bigint      NOT NULL,
    total         bigint      NOT NULL,
    events        bigint      NOT NULL,
    label         text        NOT NULL,
    last_event_id uuid        NOT NULL
);

-- The same shape, written by the raw asyncpg baseline.
CREATE TABLE bench.items_baseline (LIKE bench.items INCLUDING ALL);
