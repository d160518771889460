-- Corrections of a product (SPEC §10): a product moves between categories, or out of every one.

-- The category tree keeps a row for every product not archived, filed (category_id) or not (NULL), so
-- that a move into a category finds what the visibility rule reads of the product. The projection's
-- version is bumped, so it is rebuilt from the event log on the next start; until its swap the rows
-- below keep the old table right.
ALTER TABLE catalogue.category_products ALTER COLUMN category_id DROP NOT NULL;
INSERT INTO catalogue.category_products (product_id, category_id, seller_id, status, visibility, restricted_to_tier)
SELECT product_id, NULL, seller_id, status, visibility, restricted_to_tier
FROM catalogue.product_details WHERE category_id IS NULL AND status <> 'Archived'
ON CONFLICT (product_id) DO NOTHING;
