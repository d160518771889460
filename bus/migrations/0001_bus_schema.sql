-- The messaging core's own tables live in this schema, in every database that holds a context.
CREATE SCHEMA IF NOT EXISTS bus;
