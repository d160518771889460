CREATE SCHEMA counters;
SELECT bus.create_outbox('counters');

CREATE TABLE counters.counters (
    id      text    PRIMARY KEY,
    state   jsonb   NOT NULL,
    version bigint  NOT NULL
);

-- The read model: every applied version is appended, so order and duplicates are visible.
CREATE TABLE counters.totals (
    counter_id     text     PRIMARY KEY,
    total          bigint   NOT NULL,
    versions       bigint[] NOT NULL,
    correlation_id text,
    traceparent    text
);

-- Test switches: an aggregate listed here makes the projection fail; `delay` slows every apply.
CREATE TABLE counters.poison (counter_id text PRIMARY KEY);
CREATE TABLE counters.knobs (name text PRIMARY KEY, value double precision NOT NULL);
