-- Finding products (SPEC §9): what a search looks in, kept on the product cards by their projection
-- (whose version bump rebuilds existing cards), and the indexes of every filter and sort.

-- One text-search configuration on both sides: the query is normalised exactly as the document, so
-- phrases and `-word` stay exact. A SKU typed whole matches as the phrase of its compound token and its
-- parts (`TEE-BLK-M` is `tee-blk-m`, `tee`, `blk`, `m`), so `TEE-BLK` does not find `TEE-BLK-M`.
-- Weights rank title and SKUs (A) above brand (B) above description (C).
ALTER TABLE catalogue.product_cards
    ADD COLUMN description  text,
    ADD COLUMN attributes   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN variant_skus text  NOT NULL DEFAULT '',
    ADD COLUMN search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, sku || ' ' || variant_skus), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(brand, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
    ) STORED;
ALTER TABLE catalogue.product_card_variants ADD COLUMN variant_sku text NOT NULL DEFAULT '';

CREATE INDEX product_cards_search ON catalogue.product_cards USING gin (search);
CREATE INDEX product_cards_attributes ON catalogue.product_cards USING gin (attributes jsonb_path_ops);
CREATE INDEX product_cards_brand_newest
    ON catalogue.product_cards (brand, created_at DESC, product_id DESC);
-- Cards without a price come last in both price orders.
CREATE INDEX product_cards_price_asc
    ON catalogue.product_cards ((coalesce(min_price, 'Infinity'::numeric)), product_id);
CREATE INDEX product_cards_price_desc
    ON catalogue.product_cards ((coalesce(min_price, '-Infinity'::numeric)) DESC, product_id DESC);
CREATE INDEX product_cards_title ON catalogue.product_cards (title, product_id);
CREATE INDEX product_card_variants_price
    ON catalogue.product_card_variants (currency, base_price, product_id) WHERE is_active;

-- By slug: the detail of the product that holds it (archived ones hold none).
CREATE INDEX product_details_slug ON catalogue.product_details (slug) WHERE status <> 'Archived';

-- Slugs are unique regardless of case among products not archived: the write side keeps the key of a
-- product's slug while it is not archived, and the database refuses a second holder.
ALTER TABLE catalogue.products ADD COLUMN slug_key text;
UPDATE catalogue.products SET slug_key = lower(state ->> 'slug')
WHERE state ->> 'slug' IS NOT NULL AND state ->> 'status' IS DISTINCT FROM 'Archived';

DO $$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(format('slug %L: products %s', slug_key, ids), '; ' ORDER BY slug_key) INTO clashes
    FROM (
        SELECT slug_key, string_agg(id, ', ' ORDER BY id) AS ids
        FROM catalogue.products WHERE slug_key IS NOT NULL
        GROUP BY slug_key HAVING count(*) > 1
    ) AS shared;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'products that are not archived share a slug (in any case): %', clashes
            USING HINT = 'give all but one of each a new slug (PUT /products/{id}/details), then migrate again';
    END IF;
END
$$;

CREATE UNIQUE INDEX products_slug_key_key ON catalogue.products (slug_key) WHERE slug_key IS NOT NULL;
