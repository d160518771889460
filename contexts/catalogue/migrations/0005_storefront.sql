-- Storefront (SPEC §9): what each caller may see and pay.

-- Read model: identity's customers as the catalogue knows them, fed by identity's events; looked up
-- by external id (a customer's token `sub`) inside each catalogue read.
CREATE TABLE catalogue.customer_tiers (
    customer_id text   PRIMARY KEY,
    external_id text   NOT NULL,
    tier        text   NOT NULL,
    status      text   NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX customer_tiers_external_id ON catalogue.customer_tiers (external_id);

-- Every read model a caller reads products through keeps the columns the visibility rule reads
-- (status, visibility, restricted_to_tier, seller_id). Products created before restricted_to_tier
-- existed were all Silver. The projections' versions are bumped, so each is rebuilt from the event
-- log on the next start; until its swap the copies below keep the old tables right.
ALTER TABLE catalogue.product_details ADD COLUMN restricted_to_tier text NOT NULL DEFAULT 'Silver';

ALTER TABLE catalogue.product_cards
    ADD COLUMN visibility         text NOT NULL DEFAULT 'Public',
    ADD COLUMN restricted_to_tier text NOT NULL DEFAULT 'Silver';
UPDATE catalogue.product_cards c SET visibility = d.visibility
FROM catalogue.product_details d WHERE d.product_id = c.product_id;

-- The cards' own copy of tier prices, for `your_min_price`/`your_max_price`.
CREATE TABLE catalogue.product_card_tier_prices (
    product_id text    NOT NULL,
    variant_id text    NOT NULL,
    tier       text    NOT NULL,
    price      numeric NOT NULL,
    PRIMARY KEY (product_id, variant_id, tier)
);
INSERT INTO catalogue.product_card_tier_prices (product_id, variant_id, tier, price)
SELECT product_id, variant_id, tier, price FROM catalogue.product_detail_tier_prices;

ALTER TABLE catalogue.price_histories
    ADD COLUMN seller_id          text,
    ADD COLUMN status             text NOT NULL DEFAULT 'Draft',
    ADD COLUMN visibility         text NOT NULL DEFAULT 'Public',
    ADD COLUMN restricted_to_tier text NOT NULL DEFAULT 'Silver';
UPDATE catalogue.price_histories h SET seller_id = d.seller_id, status = d.status, visibility = d.visibility
FROM catalogue.product_details d WHERE d.product_id = h.product_id;

ALTER TABLE catalogue.category_products
    ADD COLUMN seller_id          text,
    ADD COLUMN status             text NOT NULL DEFAULT 'Draft',
    ADD COLUMN visibility         text NOT NULL DEFAULT 'Public',
    ADD COLUMN restricted_to_tier text NOT NULL DEFAULT 'Silver';
UPDATE catalogue.category_products p SET seller_id = d.seller_id, status = d.status, visibility = d.visibility
FROM catalogue.product_details d WHERE d.product_id = p.product_id;
