CREATE SCHEMA board;
SELECT bus.create_outbox('board');

CREATE TABLE board.notes (
    id      text    PRIMARY KEY,
    state   jsonb   NOT NULL,
    version bigint  NOT NULL
);

CREATE TABLE board.pinned_notes (
    note_id text    PRIMARY KEY,
    text    text    NOT NULL,
    version bigint  NOT NULL
);

-- The counters context's counters, as this context sees them through their events.
CREATE TABLE board.counter_totals (
    counter_id text    PRIMARY KEY,
    name       text    NOT NULL,
    total      bigint  NOT NULL,
    version    bigint  NOT NULL
);
