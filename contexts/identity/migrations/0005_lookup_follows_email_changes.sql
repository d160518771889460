-- The lookup by e-mail follows e-mail changes. Events of two customers may apply in another order than
-- they happened, so for a moment an address may be held by the row of a customer that gave it up as
-- well as by its new holder's: the key is no longer unique here (the write model keeps it unique, so
-- once every event is applied one row holds it), and each row notes when it took its address, so that
-- a lookup answers with the newest holder meanwhile.
ALTER TABLE identity.customer_lookup DROP CONSTRAINT customer_lookup_email_key_key;
ALTER TABLE identity.customer_lookup ADD COLUMN email_since timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX customer_lookup_email_key ON identity.customer_lookup (email_key, email_since DESC);
