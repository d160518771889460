-- Everything of the identity context lives in its own schema.
CREATE SCHEMA IF NOT EXISTS identity;
