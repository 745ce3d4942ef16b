-- A free-text note per item (the column a destructive migration would drop).
ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT '';
