-- Personal data (SPEC §11). Each customer's data key, wrapped by a key-encryption key (KEK), and the id
-- of that KEK; NULL once the customer's personal data is erased (or for a customer an earlier release
-- registered, until the next start seals its events).
ALTER TABLE identity.customers ADD COLUMN data_kek text, ADD COLUMN data_key bytea;
-- An erased customer holds neither its external id nor its e-mail address: both are free again.
ALTER TABLE identity.customers ALTER COLUMN external_id DROP NOT NULL, ALTER COLUMN email_key DROP NOT NULL;
-- The lookup read model applies the events of two customers in any order, so an external id an erased
-- customer gave up may be held by its new holder's row before the erasure removes the old one: not unique
-- here (the write model keeps it unique), and a lookup answers with the newest holder meanwhile.
ALTER TABLE identity.customer_lookup DROP CONSTRAINT customer_lookup_external_id_key;
CREATE INDEX customer_lookup_external_id ON identity.customer_lookup (external_id, email_since DESC);
