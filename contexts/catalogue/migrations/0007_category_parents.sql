-- Each category's parent beside its state, so a move finds the whole subtree it takes along.
ALTER TABLE catalogue.categories ADD COLUMN parent_id text;
UPDATE catalogue.categories SET parent_id = state->>'parent_category_id';
CREATE INDEX categories_parent ON catalogue.categories (parent_id);
