-- Catalogue read models. Each projection owns its tables (a rebuild truncates them); the first of each
-- carries the aggregate's `version` and `updated_at`; money is NUMERIC.

-- Read model: the product detail, its variants (in the order added, with tier prices) and images.
CREATE TABLE catalogue.product_details (
    product_id       text        PRIMARY KEY,
    sku              text        NOT NULL,
    seller_id        text,
    title            text        NOT NULL,
    description      text,
    category_id      text,
    brand            text,
    attributes       jsonb       NOT NULL,
    visibility       text        NOT NULL,
    meta_title       text,
    meta_description text,
    slug             text,
    status           text        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);
CREATE TABLE catalogue.product_detail_variants (
    product_id     text    NOT NULL,
    variant_id     text    NOT NULL,
    added          bigint  NOT NULL,
    variant_sku    text    NOT NULL,
    attributes     jsonb   NOT NULL,
    base_price     numeric NOT NULL,
    currency       text    NOT NULL,
    weight_value   numeric,
    weight_unit    text    NOT NULL,
    length         numeric,
    width          numeric,
    height         numeric,
    dimension_unit text    NOT NULL,
    is_active      boolean NOT NULL,
    PRIMARY KEY (product_id, variant_id)
);
CREATE TABLE catalogue.product_detail_tier_prices (
    product_id text    NOT NULL,
    variant_id text    NOT NULL,
    tier       text    NOT NULL,
    price      numeric NOT NULL,
    PRIMARY KEY (product_id, variant_id, tier)
);
CREATE TABLE catalogue.product_detail_images (
    product_id    text    NOT NULL,
    image_id      text    NOT NULL,
    added         bigint  NOT NULL,
    url           text    NOT NULL,
    alt_text      text,
    is_primary    boolean NOT NULL,
    display_order integer NOT NULL,
    PRIMARY KEY (product_id, image_id)
);

-- Read model: product cards for lists, newest first, with an exact price range over the card's own
-- copy of each variant's current price and the image rows that tell the primary one.
CREATE TABLE catalogue.product_cards (
    product_id        text        PRIMARY KEY,
    sku               text        NOT NULL,
    title             text        NOT NULL,
    brand             text,
    category_id       text,
    seller_id         text,
    primary_image_url text,
    min_price         numeric,
    max_price         numeric,
    currency          text,
    status            text        NOT NULL,
    variant_count     integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           bigint      NOT NULL
);
CREATE INDEX product_cards_newest ON catalogue.product_cards (created_at DESC, product_id DESC);
CREATE INDEX product_cards_category_newest
    ON catalogue.product_cards (category_id, created_at DESC, product_id DESC);
CREATE INDEX product_cards_seller_newest
    ON catalogue.product_cards (seller_id, created_at DESC, product_id DESC);
CREATE INDEX product_cards_status_newest
    ON catalogue.product_cards (status, created_at DESC, product_id DESC);
CREATE TABLE catalogue.product_card_variants (
    product_id text    NOT NULL,
    variant_id text    NOT NULL,
    base_price numeric NOT NULL,
    currency   text    NOT NULL,
    is_active  boolean NOT NULL,
    PRIMARY KEY (product_id, variant_id)
);
CREATE TABLE catalogue.product_card_images (
    product_id text    NOT NULL,
    image_id   text    NOT NULL,
    url        text    NOT NULL,
    is_primary boolean NOT NULL,
    PRIMARY KEY (product_id, image_id)
);

-- Read model: price history. One row per product (its version: "known, no change yet") and one per
-- base-price change, ordered by the product's version.
CREATE TABLE catalogue.price_histories (
    product_id text        PRIMARY KEY,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL
);
CREATE TABLE catalogue.price_changes (
    product_id     text        NOT NULL,
    version        bigint      NOT NULL,
    variant_id     text        NOT NULL,
    previous_price numeric     NOT NULL,
    new_price      numeric     NOT NULL,
    currency       text        NOT NULL,
    changed_at     timestamptz NOT NULL,
    PRIMARY KEY (product_id, version)
);

-- Read model: the category tree, plus the products filed in each category. Breadcrumbs and product
-- counts are derived from these rows at read time, never stored.
CREATE TABLE catalogue.category_nodes (
    category_id        text        PRIMARY KEY,
    name               text        NOT NULL,
    parent_category_id text,
    level              integer     NOT NULL,
    attributes         jsonb       NOT NULL,
    is_active          boolean     NOT NULL,
    display_order      integer     NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    version            bigint      NOT NULL
);
CREATE INDEX category_nodes_parent ON catalogue.category_nodes (parent_category_id);
CREATE TABLE catalogue.category_products (
    product_id  text PRIMARY KEY,
    category_id text NOT NULL
);
CREATE INDEX category_products_category ON catalogue.category_products (category_id);
