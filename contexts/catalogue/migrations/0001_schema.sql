-- Everything of the catalogue context lives in its own schema.
CREATE SCHEMA IF NOT EXISTS catalogue;
