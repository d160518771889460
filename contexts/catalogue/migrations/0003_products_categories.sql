-- The Category aggregate: its whole state as JSON.
CREATE TABLE catalogue.categories (
    id      text   PRIMARY KEY,
    state   jsonb  NOT NULL,
    version bigint NOT NULL
);

-- The Product aggregate: its whole state as JSON, plus the column that keeps SKUs unique (any case).
CREATE TABLE catalogue.products (
    id      text   PRIMARY KEY,
    state   jsonb  NOT NULL,
    version bigint NOT NULL,
    sku_key text   NOT NULL,
    CONSTRAINT products_sku_key_key UNIQUE (sku_key)
);

-- Variant SKUs are unique across every product (any case): one row per variant, written with it.
CREATE TABLE catalogue.variant_skus (
    variant_sku_key text PRIMARY KEY,
    product_id      text NOT NULL REFERENCES catalogue.products (id),
    variant_id      text NOT NULL
);
