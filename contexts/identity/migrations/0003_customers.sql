-- The Customer aggregate: its whole state as JSON, plus the columns that enforce uniqueness.
CREATE TABLE identity.customers (
    id          text   PRIMARY KEY,
    external_id text   NOT NULL,
    email_key   text   NOT NULL,
    state       jsonb  NOT NULL,
    version     bigint NOT NULL,
    CONSTRAINT customers_external_id_key UNIQUE (external_id),
    CONSTRAINT customers_email_key_key UNIQUE (email_key)
);

-- Read model: the customer card.
CREATE TABLE identity.customer_cards (
    customer_id   text        PRIMARY KEY,
    external_id   text        NOT NULL,
    email         text        NOT NULL,
    first_name    text        NOT NULL,
    last_name     text        NOT NULL,
    phone         text,
    date_of_birth date,
    status        text        NOT NULL,
    tier          text        NOT NULL,
    registered_at timestamptz NOT NULL,
    version       bigint      NOT NULL
);

-- Read model: the address book (default first, then in the order added).
CREATE TABLE identity.address_books (
    customer_id text   PRIMARY KEY,
    version     bigint NOT NULL
);
CREATE TABLE identity.addresses (
    customer_id text             NOT NULL,
    address_id  text             NOT NULL,
    added       bigint           NOT NULL,
    label       text             NOT NULL,
    street      text             NOT NULL,
    city        text             NOT NULL,
    state       text,
    postal_code text             NOT NULL,
    country     text             NOT NULL,
    is_default  boolean          NOT NULL,
    geo_lat     double precision,
    geo_lng     double precision,
    PRIMARY KEY (customer_id, address_id)
);

-- Read model: lookup by e-mail (case-insensitive) and by external id.
CREATE TABLE identity.customer_lookup (
    customer_id text PRIMARY KEY,
    email_key   text NOT NULL UNIQUE,
    external_id text NOT NULL UNIQUE
);

-- Read model: segments. Each member's current tier and status, and exact counts kept beside them
-- (a value nobody has yet has no row: it reads as 0).
CREATE TABLE identity.segment_members (
    customer_id text PRIMARY KEY,
    tier        text NOT NULL,
    status      text NOT NULL
);
CREATE TABLE identity.segment_counts (
    dimension text   NOT NULL,
    value     text   NOT NULL,
    members   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, value)
);
